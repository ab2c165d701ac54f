"""The profile directory: where one user's keys, certificates and settings live.

Theory of operation
-------------------
A profile is a directory, created with mode 0700. Which directory is decided once, in
:func:`resolve_profile_dir`, in this order: an explicit path (the CLI's ``--profile``),
the ``SEALMAIL_PROFILE`` environment variable, then platformdirs' user data directory
for "sealmail". Nothing else in the keystore guesses paths.

Files the keystore writes itself go through :func:`atomic_write`: a temporary file in
the same directory (so the rename cannot cross file systems), written, fsync'd, given
mode 0600, renamed over the target, and the directory fsync'd. A crash leaves either
the old file or the new one, never half of either. On any error the temporary file is
removed, and an ``OSError`` (disk full, read-only) becomes
:class:`~keystore.errors.StorageError` (see :mod:`keystore.storage`).

Two processes may use one profile at once (a CLI call while the app runs). SQLite
serialises its own writes; multi-step changes (creating the master key, an import
that touches several rows and secrets) take :class:`ProfileLock`, an exclusive
``fcntl.flock`` on ``profile.lock``. Waiting is bounded: after ``timeout`` seconds the
caller gets :class:`~keystore.errors.ProfileLocked`. ``flock`` locks belong to an
open file description, so two locks in one process would block each other: the lock
is reentrant within one :class:`ProfileLock` object, and each :class:`Profile` owns
exactly one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from keystore.errors import ProfileLocked, UsageError
from keystore.storage import storage_error

__all__ = [
    "ENV_PROFILE",
    "LOCK_TIMEOUT",
    "Profile",
    "ProfileLock",
    "atomic_write",
    "default_profile_dir",
    "open_profile",
    "resolve_profile_dir",
]

ENV_PROFILE = "SEALMAIL_PROFILE"
#: Seconds a caller waits for another process to release the profile.
LOCK_TIMEOUT = 10.0
_LOCK_POLL = 0.02
_LOCK_FILE = "profile.lock"


def default_profile_dir() -> Path:
    """platformdirs' per-user data directory for Sealmail."""
    return Path(platformdirs.user_data_dir("sealmail", appauthor=False))


def resolve_profile_dir(
    explicit: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Explicit path, else ``$SEALMAIL_PROFILE``, else the platformdirs default."""
    environ = os.environ if env is None else env
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser().absolute()
    from_env = environ.get(ENV_PROFILE, "")
    if from_env:
        return Path(from_env).expanduser().absolute()
    return default_profile_dir()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes | Iterable[bytes | memoryview],
    *,
    mode: int = 0o600,
) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, chmod, rename).

    ``data`` may be an iterable of pieces, written one after the other: a large message
    need not be joined into one more copy first (a 25 MB join holds the GIL), and a
    stream can be written as it is made. If the iterable raises, nothing is replaced.

    Raises :class:`StorageError` when the disk is full or the directory is read-only;
    ``path`` is then unchanged and no temporary file is left.
    """
    target = Path(path)
    try:
        _atomic_write(target, data, mode)
    except OSError as exc:
        raise storage_error(exc, target) from exc


def _atomic_write(target: Path, data: bytes | Iterable[bytes | memoryview], mode: int) -> None:
    pieces = [data] if isinstance(data, bytes | bytearray | memoryview) else data
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            for piece in pieces:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


class ProfileLock:
    """An exclusive inter-process lock on a profile, reentrant within this object."""

    def __init__(self, lock_path: Path, *, timeout: float = LOCK_TIMEOUT) -> None:
        self._path = lock_path
        self._timeout = timeout
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._depth > 0

    def acquire(self, timeout: float | None = None) -> None:
        wait = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        if not self._thread_lock.acquire(timeout=max(wait, 0.0)):
            raise ProfileLocked(f"profile {self._path.parent} is busy in another thread")
        try:
            if self._depth == 0:
                self._fd = self._lock_file(deadline)
            self._depth += 1
        except BaseException:
            self._thread_lock.release()
            raise

    def _lock_file(self, deadline: float) -> int:
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise storage_error(exc, self._path) from exc
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ProfileLocked(
                            f"profile {self._path.parent} is locked by another process"
                        ) from None
                    time.sleep(_LOCK_POLL)
        except BaseException:
            os.close(fd)
            raise

    def release(self) -> None:
        if self._depth <= 0:
            raise UsageError("ProfileLock.release() without acquire()")
        self._depth -= 1
        if self._depth == 0 and self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None
        self._thread_lock.release()

    @contextlib.contextmanager
    def __call__(self, timeout: float | None = None) -> Iterator[None]:
        self.acquire(timeout)
        try:
            yield
        finally:
            self.release()


@dataclass(frozen=True)
class Profile:
    """An opened profile directory (exists, mode 0700) and its lock."""

    path: Path
    lock: ProfileLock = field(compare=False, repr=False)

    def file(self, name: str) -> Path:
        """Path of a file directly inside the profile (no sub-paths, no escapes)."""
        if not name or "/" in name or name in {".", ".."}:
            raise UsageError(f"bad profile file name {name!r}")
        return self.path / name


def open_profile(
    explicit: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
) -> Profile:
    """Resolve, create (mode 0700) and return the profile directory."""
    path = resolve_profile_dir(explicit, env=env)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.is_dir():
            raise UsageError(f"profile path {path} is not a directory")
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o700)
    except OSError as exc:
        raise UsageError(
            f"cannot create profile directory {path}: {exc.strerror}",
            hint="Choose a writable directory with --profile or SEALMAIL_PROFILE.",
        ) from exc
    return Profile(path=path, lock=ProfileLock(path / _LOCK_FILE, timeout=lock_timeout))
