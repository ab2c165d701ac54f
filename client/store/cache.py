"""The local cache: folders and message headers in SQLite, so big folders list offline.

Theory of operation
-------------------
One database per profile (``cache.sqlite``, mode 0600). Per account and folder it keeps
the server's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ and, per message, the UID, flags,
MODSEQ, size, dates, the header fields the list needs and the top-level MIME type. When a
folder's UIDVALIDITY changes, everything cached for it is dropped first
(:meth:`Cache.reset_folder`), never merged.

The journal is WAL with ``synchronous=NORMAL``: a power loss may drop the last committed
transactions (WAL recovery keeps a prefix of them, and the folder state is written after
its headers, so the next sync fetches what was lost) but cannot corrupt the database.

Bodies are cached only exactly as received from the server (:meth:`Cache.put_body`):
for a protected message that is the ciphertext. Nothing decrypted is ever written here —
the API has no way to store a decrypted body, and ``put_body`` refuses bytes that do not
match the size the server reported.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path
from typing import TYPE_CHECKING

from client.errors import UsageError
from keystore.storage import GuardedConnection

if TYPE_CHECKING:
    from client.transport.imap import HeaderRecord

__all__ = ["BATCH", "Cache", "CachedFolder", "CachedMessage", "header_fields", "list_fields"]

#: header rows per transaction in :meth:`Cache.put_headers`
BATCH = 1000
#: values per row of ``messages`` bound per row by :meth:`Cache.put_headers` (all columns
#: but account and folder, which are bound once per statement as ?1 and ?2)
_ROW = 13
#: rows per multi-row INSERT: ~100 is as fast as any (SQLite compiles ``?NNN`` placeholders
#: in quadratic time, so 1000-row statements cost more than they save)
_ROWS_PER_INSERT = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS folders (
    account TEXT NOT NULL, name TEXT NOT NULL, delimiter TEXT, flags TEXT,
    uidvalidity INTEGER, uidnext INTEGER, highestmodseq INTEGER, exists_ INTEGER,
    PRIMARY KEY (account, name));
CREATE TABLE IF NOT EXISTS messages (
    account TEXT NOT NULL, folder TEXT NOT NULL, uid INTEGER NOT NULL,
    flags TEXT, modseq INTEGER, size INTEGER, internaldate TEXT,
    sender TEXT, recipients TEXT, subject TEXT, date TEXT, message_id TEXT,
    in_reply_to TEXT, content_type TEXT, headers BLOB,
    PRIMARY KEY (account, folder, uid));
CREATE INDEX IF NOT EXISTS messages_mid ON messages (account, message_id);
CREATE TABLE IF NOT EXISTS bodies (
    account TEXT NOT NULL, folder TEXT NOT NULL, uid INTEGER NOT NULL, raw BLOB,
    PRIMARY KEY (account, folder, uid));
"""


@dataclass(frozen=True)
class CachedFolder:
    account: str
    name: str
    delimiter: str
    flags: tuple[str, ...]
    uidvalidity: int | None
    uidnext: int | None
    highestmodseq: int | None
    exists: int


@dataclass(frozen=True)
class CachedMessage:
    uid: int
    flags: tuple[str, ...]
    modseq: int | None
    size: int
    sender: str
    recipients: str
    subject: str
    date: str
    message_id: str
    in_reply_to: str
    content_type: str

    @property
    def seen(self) -> bool:
        return "\\Seen" in self.flags

    @property
    def protected(self) -> bool:
        return self.content_type in (
            "multipart/encrypted",
            "application/pkcs7-mime",
            "application/x-pkcs7-mime",
        )

    def to_json(self) -> dict[str, object]:
        return {
            "uid": self.uid,
            "flags": list(self.flags),
            "from": self.sender,
            "to": self.recipients,
            "subject": self.subject,
            "date": self.date,
            "message_id": self.message_id,
            "size": self.size,
            "protected": self.protected,
        }


_FOLD = re.compile(r"\r?\n(?=[ \t])")


def header_fields(raw: bytes) -> dict[str, list[str]]:
    """Header fields of a header block: lower-case name -> unfolded values, in order.

    Bytes that are not UTF-8 are read as Latin-1 (never rejected, never lost). Lines
    that are not ``name: value`` are skipped.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "\n " in text or "\n\t" in text:
        text = _FOLD.sub("", text)
    out: dict[str, list[str]] = {}
    for line in text.split("\n"):
        name, sep, value = line.partition(":")
        name = name.rstrip(" \t")
        if not sep or not name or " " in name or "\t" in name:
            continue
        key = name.lower()
        values = out.get(key)
        if values is None:
            out[key] = [value.strip()]
        else:
            values.append(value.strip())
    return out


_FIELD = re.compile(r"^([^:\n \t]+)[ \t]*:([^\n]*)", re.M)
ListFields = tuple[str, str, str, str, str, str]


def list_fields(raw: bytes) -> ListFields:
    """(from, to + cc, subject, date, message-id, in-reply-to) as the list shows them.

    The same result as reading :func:`header_fields` (first value of each field; all To
    then all Cc values, joined by ", ") and decoding From, recipients and Subject with
    RFC 2047 (:func:`_decode`), with less work per message: one regex pass finds the
    ``name: value`` lines (exactly the lines :func:`header_fields` accepts), only the
    values shown are stripped, and RFC 2047 is decoded only where ``=?`` occurs.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "\n " in text or "\n\t" in text:
        text = _FOLD.sub("", text)
    first: dict[str, str] = {}
    to: list[str] = []
    cc: list[str] = []
    for name, value in _FIELD.findall(text):
        key = name.lower()
        if key == "to":
            to.append(value.strip())
        elif key == "cc":
            cc.append(value.strip())
        elif key not in first:
            first[key] = value
    get = first.get
    return (
        _decode(get("from", "").strip()),
        _decode(", ".join(to + cc) if cc else ", ".join(to)),
        _decode(get("subject", "").strip()),
        get("date", "").strip(),
        get("message-id", "").strip(),
        get("in-reply-to", "").strip(),
    )


def _decode(value: str | None) -> str:
    if not value:
        return ""
    if "=?" not in value:
        return value.replace("\r", "").replace("\n", " ")
    try:
        return str(make_header(decode_header(value))).replace("\r", "").replace("\n", " ")
    except (ValueError, LookupError, UnicodeError, HeaderParseError):  # bad base64: keep it
        return value


@functools.lru_cache(maxsize=4)
def _insert_sql(rows: int) -> str:
    """``INSERT OR REPLACE`` of ``rows`` rows: ?1 account, ?2 folder, then _ROW per row."""
    tuples = (
        "(?1,?2," + ",".join(f"?{3 + r * _ROW + c}" for c in range(_ROW)) + ")" for r in range(rows)
    )
    # only numbered placeholders go into the text: the values are all bound
    return "INSERT OR REPLACE INTO messages VALUES " + ",".join(tuples)  # noqa: S608


class Cache:
    def __init__(self, path: Path) -> None:
        new = not path.exists()
        # disk full / read-only become StorageError (keystore.storage); SQLite rolls back
        self.db = sqlite3.connect(
            str(path), timeout=30, isolation_level=None, factory=GuardedConnection
        )
        if new:
            path.chmod(0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    @functools.cached_property
    def _rows_per_insert(self) -> int:
        """Rows per INSERT statement, within SQLite's host-parameter limit."""
        limit = self.db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return max(1, min(_ROWS_PER_INSERT, (limit - 2) // _ROW))

    # ------------------------------------------------------------ folders
    def folders(self, account: str) -> list[CachedFolder]:
        rows = self.db.execute(
            "SELECT account, name, delimiter, flags, uidvalidity, uidnext, highestmodseq, exists_"
            " FROM folders WHERE account=? ORDER BY name",
            (account,),
        ).fetchall()
        return [
            CachedFolder(
                r[0], r[1], r[2] or "/", tuple((r[3] or "").split()), r[4], r[5], r[6], r[7] or 0
            )
            for r in rows
        ]

    def folder(self, account: str, name: str) -> CachedFolder | None:
        for f in self.folders(account):
            if f.name == name:
                return f
        return None

    def set_folders(self, account: str, folders: Iterable[tuple[str, str, Sequence[str]]]) -> None:
        names = []
        with self.db:
            self.db.execute("BEGIN")
            for name, delim, flags in folders:
                names.append(name)
                self.db.execute(
                    "INSERT INTO folders (account, name, delimiter, flags) VALUES (?,?,?,?)"
                    " ON CONFLICT(account, name) DO UPDATE SET delimiter=excluded.delimiter,"
                    " flags=excluded.flags",
                    (account, name, delim, " ".join(flags)),
                )
            gone = [
                r[0]
                for r in self.db.execute("SELECT name FROM folders WHERE account=?", (account,))
                if r[0] not in names
            ]
            for name in gone:
                self._drop(account, name)
                self.db.execute("DELETE FROM folders WHERE account=? AND name=?", (account, name))

    def set_folder_state(
        self,
        account: str,
        name: str,
        *,
        uidvalidity: int,
        uidnext: int,
        highestmodseq: int | None,
        exists: int,
    ) -> None:
        self.db.execute(
            "INSERT INTO folders (account, name, uidvalidity, uidnext, highestmodseq, exists_)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(account, name) DO UPDATE SET"
            " uidvalidity=excluded.uidvalidity, uidnext=excluded.uidnext,"
            " highestmodseq=excluded.highestmodseq, exists_=excluded.exists_",
            (account, name, uidvalidity, uidnext, highestmodseq, exists),
        )

    def _drop(self, account: str, folder: str) -> None:
        self.db.execute("DELETE FROM messages WHERE account=? AND folder=?", (account, folder))
        self.db.execute("DELETE FROM bodies WHERE account=? AND folder=?", (account, folder))

    def reset_folder(self, account: str, folder: str) -> None:
        """UIDVALIDITY changed: forget every message of the folder."""
        with self.db:
            self.db.execute("BEGIN")
            self._drop(account, folder)
            self.db.execute(
                "UPDATE folders SET uidvalidity=NULL, uidnext=NULL, highestmodseq=NULL"
                " WHERE account=? AND name=?",
                (account, folder),
            )

    # ------------------------------------------------------------ messages
    def put_headers(self, account: str, folder: str, records: Iterable[HeaderRecord]) -> int:
        """Insert or replace header records (:class:`client.transport.imap.HeaderRecord`).

        Rows are written in batches of :data:`BATCH`, one transaction each, as the records
        arrive: with :meth:`ImapSession.fetch_headers` (which has the next chunk already
        requested) the server prepares the next chunk while this one is stored.

        Per record only what the list shows is decoded (:func:`list_fields`); a batch goes
        to SQLite as multi-row INSERTs of up to :data:`_ROWS_PER_INSERT` rows
        (:meth:`_insert`), each stored in one call without the GIL while the fetch worker
        reads the next chunk, instead of dropping and retaking the GIL once per row as
        ``executemany`` does (each retake can wait for the worker's switch interval).
        """
        values: list[object] = []
        extend = values.extend
        count = rows = 0
        for uid, flags, size, idate, modseq, headers, content_type in records:
            extend(
                (
                    uid,
                    " ".join(flags),
                    modseq,
                    size,
                    idate,
                    *list_fields(headers),
                    content_type,
                    headers,
                )
            )
            rows += 1
            if rows >= BATCH:
                count += self._insert(account, folder, values, rows)
                values = []
                extend = values.extend
                rows = 0
        return count + self._insert(account, folder, values, rows)

    def _insert(self, account: str, folder: str, values: list[object], rows: int) -> int:
        """One transaction: ``rows`` rows of :data:`_ROW` values each (account, folder apart)."""
        if rows:
            per = self._rows_per_insert
            with self.db:
                self.db.execute("BEGIN")
                for i in range(0, rows, per):
                    n = min(per, rows - i)
                    self.db.execute(
                        _insert_sql(n), [account, folder, *values[i * _ROW : (i + n) * _ROW]]
                    )
        return rows

    def set_flags(
        self, account: str, folder: str, changes: dict[int, tuple[tuple[str, ...], int | None]]
    ) -> None:
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "UPDATE messages SET flags=?, modseq=COALESCE(?, modseq)"
                " WHERE account=? AND folder=? AND uid=?",
                [(" ".join(f), m, account, folder, uid) for uid, (f, m) in changes.items()],
            )

    def uids(self, account: str, folder: str) -> list[int]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT uid FROM messages WHERE account=? AND folder=? ORDER BY uid",
                (account, folder),
            )
        ]

    def remove(self, account: str, folder: str, uids: Iterable[int]) -> None:
        with self.db:
            self.db.execute("BEGIN")
            for table in ("messages", "bodies"):
                self.db.executemany(
                    f"DELETE FROM {table} WHERE account=? AND folder=? AND uid=?",  # noqa: S608
                    [(account, folder, u) for u in uids],
                )

    def list(self, account: str, folder: str, *, limit: int | None = None) -> list[CachedMessage]:
        # NULLs become '' / 0 in SQL: less work per row in Python (10,000 rows <= 300 ms)
        sql = (
            "SELECT uid, IFNULL(flags, ''), modseq, IFNULL(size, 0), IFNULL(sender, ''),"
            " IFNULL(recipients, ''), IFNULL(subject, ''), IFNULL(date, ''),"
            " IFNULL(message_id, ''), IFNULL(in_reply_to, ''), IFNULL(content_type, '')"
            " FROM messages WHERE account=? AND folder=? ORDER BY uid DESC"
        )
        args: tuple[object, ...] = (account, folder)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        msg = CachedMessage
        return [
            msg(uid, tuple(flags.split()), modseq, size, fr, to, subj, date, mid, irt, ctype)
            for uid, flags, modseq, size, fr, to, subj, date, mid, irt, ctype in self.db.execute(
                sql, args
            )
        ]

    def count(self, account: str, folder: str) -> int:
        row = self.db.execute(
            "SELECT COUNT(*) FROM messages WHERE account=? AND folder=?", (account, folder)
        ).fetchone()
        return int(row[0])

    # ------------------------------------------------------------ bodies
    def put_body(self, account: str, folder: str, uid: int, raw: bytes) -> None:
        """Cache a body exactly as the server sent it (ciphertext for protected mail)."""
        row = self.db.execute(
            "SELECT size FROM messages WHERE account=? AND folder=? AND uid=?",
            (account, folder, uid),
        ).fetchone()
        if row is None or (row[0] and row[0] != len(raw)):
            raise UsageError("only a message body exactly as received from the server is cached")
        self.db.execute(
            "INSERT OR REPLACE INTO bodies VALUES (?,?,?,?)", (account, folder, uid, raw)
        )

    def body(self, account: str, folder: str, uid: int) -> bytes | None:
        row = self.db.execute(
            "SELECT raw FROM bodies WHERE account=? AND folder=? AND uid=?", (account, folder, uid)
        ).fetchone()
        return bytes(row[0]) if row else None
