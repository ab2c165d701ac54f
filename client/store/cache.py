"""The local cache: folders and message headers in SQLite, so big folders list offline.

Theory of operation
-------------------
One database per profile (``cache.sqlite``, mode 0600, WAL). Per account and folder it
keeps the server's UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ and, per message, the UID, flags,
MODSEQ, size, dates, the header fields the list needs and the top-level MIME type. When a
folder's UIDVALIDITY changes, everything cached for it is dropped first
(:meth:`Cache.reset_folder`), never merged.

Bodies are cached only exactly as received from the server (:meth:`Cache.put_body`):
for a protected message that is the ciphertext. Nothing decrypted is ever written here —
the API has no way to store a decrypted body, and ``put_body`` refuses bytes that do not
match the size the server reported.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import TYPE_CHECKING

from client.errors import UsageError

if TYPE_CHECKING:
    from client.transport.imap import HeaderRecord

__all__ = ["Cache", "CachedFolder", "CachedMessage"]

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


def _decode(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(make_header(decode_header(value))).replace("\r", "").replace("\n", " ")
    except (ValueError, LookupError, UnicodeError):
        return value


class Cache:
    def __init__(self, path: Path) -> None:
        new = not path.exists()
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        if new:
            path.chmod(0o600)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

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
        """Insert or replace header records (:class:`client.transport.imap.HeaderRecord`)."""
        parser = BytesHeaderParser(policy=compat32)
        rows = []
        for r in records:
            h = parser.parsebytes(r.headers)
            idate: datetime | None = r.internaldate
            rows.append(
                (
                    account,
                    folder,
                    r.uid,
                    " ".join(r.flags),
                    r.modseq,
                    r.size,
                    idate.isoformat() if idate else None,
                    _decode(h.get("From")),
                    _decode(", ".join(h.get_all("To", []) + h.get_all("Cc", []))),
                    _decode(h.get("Subject")),
                    h.get("Date", "") or "",
                    (h.get("Message-ID", "") or "").strip(),
                    (h.get("In-Reply-To", "") or "").strip(),
                    r.content_type,
                    r.headers,
                )
            )
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT OR REPLACE INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
            )
        return len(rows)

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
        sql = (
            "SELECT uid, flags, modseq, size, sender, recipients, subject, date, message_id,"
            " in_reply_to, content_type FROM messages WHERE account=? AND folder=?"
            " ORDER BY uid DESC"
        )
        args: tuple[object, ...] = (account, folder)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        return [
            CachedMessage(
                r[0],
                tuple((r[1] or "").split()),
                r[2],
                r[3] or 0,
                r[4] or "",
                r[5] or "",
                r[6] or "",
                r[7] or "",
                r[8] or "",
                r[9] or "",
                r[10] or "",
            )
            for r in self.db.execute(sql, args)
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
