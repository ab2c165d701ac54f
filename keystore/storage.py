"""Local storage failures (disk full, read-only profile) as one typed error.

Theory of operation
-------------------
Writing can fail below Sealmail: the disk or quota is full (``ENOSPC``, ``EDQUOT``, or
``EFBIG`` at a file size limit), or the profile is read-only (``EROFS``, ``EACCES``).
These are the user's to fix, not bugs, so they become
:class:`~keystore.errors.StorageError` (with a hint) where the write happens:
:func:`storage_error` for an ``OSError``; for SQLite, :class:`GuardedConnection` (pass it
as ``factory=`` to :func:`sqlite3.connect`) turns SQLite's FULL / IOERR / READONLY /
CANTOPEN results into the same error and lets every other ``sqlite3.Error`` (a real bug)
through unchanged. SQLite rolls the failed statement or transaction back itself, so a
failed write leaves the database as it was.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Literal

from keystore.errors import StorageError

__all__ = ["GuardedConnection", "sqlite_storage_error", "storage_error"]

_FULL = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_READ_ONLY = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_FULL_TEXT = "the disk is full (or a file size limit was reached)"
_READ_ONLY_TEXT = "it is read-only (no write permission)"

#: SQLite primary result codes that mean "the storage below me failed", not "bad SQL".
_SQLITE_STORAGE = {
    sqlite3.SQLITE_FULL: _FULL_TEXT,
    sqlite3.SQLITE_IOERR: "a disk write failed (disk full or failing)",
    sqlite3.SQLITE_READONLY: _READ_ONLY_TEXT,
    sqlite3.SQLITE_CANTOPEN: "it cannot be opened for writing",
}


def storage_error(exc: OSError, what: str | os.PathLike[str]) -> StorageError:
    """The typed error for a failed local write of ``what`` (raise it ``from exc``)."""
    if exc.errno in _FULL:
        why = _FULL_TEXT
    elif exc.errno in _READ_ONLY:
        why = _READ_ONLY_TEXT
    else:
        why = exc.strerror or type(exc).__name__
    return StorageError(f"cannot write {what}: {why}")


def sqlite_storage_error(exc: sqlite3.Error, what: str | os.PathLike[str]) -> StorageError | None:
    """A :class:`StorageError` when ``exc`` is a storage failure, else None (a real bug)."""
    code = getattr(exc, "sqlite_errorcode", None)
    why = _SQLITE_STORAGE.get(code & 0xFF) if isinstance(code, int) else None
    return StorageError(f"cannot write {what}: {why}") if why else None


class GuardedConnection(sqlite3.Connection):
    """A connection whose storage failures raise :class:`StorageError` (see the module)."""

    def __init__(self, database: str | os.PathLike[str], *args: Any, **kwargs: Any) -> None:
        self._what = os.fspath(database)
        try:
            super().__init__(database, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.Error) -> Exception:
        return sqlite_storage_error(exc, self._what) or exc

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def executescript(self, sql_script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(sql_script)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def commit(self) -> None:
        try:
            super().commit()
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> Literal[False]:
        try:
            return super().__exit__(exc_type, exc, tb)
        except sqlite3.Error as err:
            raise self._translate(err) from err
