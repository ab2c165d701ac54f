"""The SQLite index of a profile: one row per key or certificate, plus lookup tables.

Theory of operation
-------------------
``keystore.sqlite3`` in the profile (created mode 0600 before SQLite opens it, so the
``-wal``/``-shm`` files inherit 0600) runs in WAL mode with a busy timeout, so a CLI
call and the app can read while the other writes. Multi-statement changes run in
:meth:`Index.transaction`, which also holds the profile lock, so an import either
lands whole or not at all.

Row model (table ``keys``): fingerprint (upper-case hex: the OpenPGP v4/v6
fingerprint, or SHA-256 of an X.509 certificate's DER), kind ``pgp``/``x509``, label,
origin ``generated``/``imported``/``discovered``, flags (confirmed, trust anchor, CA,
revoked), expiry (ISO 8601 UTC), the public blob, and the secret blob *sealed* by
:mod:`keystore.secrets` (never plaintext). ``key_emails`` maps lower-cased addresses
to rows; ``pgp_keyids`` maps OpenPGP key ids and subkey fingerprints to rows (for
signature verification callbacks); ``crls`` keeps CRLs for offline revocation
checks; ``secrets`` keeps other sealed secrets (account passwords) by name.

This module knows rows, not cryptography: it stores and returns bytes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from keystore.errors import KeystoreError, StorageError
from keystore.profile import Profile
from keystore.storage import GuardedConnection, storage_error

__all__ = ["DB_FILE", "CacheRow", "Index", "PeerRow", "Row"]

DB_FILE = "keystore.sqlite3"
_BUSY_TIMEOUT_MS = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys(
    fingerprint  TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('pgp', 'x509')),
    label        TEXT NOT NULL,
    origin       TEXT NOT NULL CHECK (origin IN ('generated', 'imported', 'discovered')),
    confirmed    INTEGER NOT NULL,
    trust_anchor INTEGER NOT NULL,
    is_ca        INTEGER NOT NULL,
    revoked      INTEGER NOT NULL,
    expires      TEXT,
    public       BLOB NOT NULL,
    secret       BLOB,
    added        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS key_emails(
    email       TEXT NOT NULL,
    fingerprint TEXT NOT NULL REFERENCES keys(fingerprint) ON DELETE CASCADE,
    PRIMARY KEY (email, fingerprint)
);
CREATE TABLE IF NOT EXISTS pgp_keyids(
    keyid       TEXT NOT NULL,
    key_fpr     TEXT NOT NULL,
    fingerprint TEXT NOT NULL REFERENCES keys(fingerprint) ON DELETE CASCADE,
    PRIMARY KEY (keyid, key_fpr, fingerprint)
);
CREATE TABLE IF NOT EXISTS crls(
    der     BLOB PRIMARY KEY,
    issuer  TEXT NOT NULL,
    added   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets(
    name TEXT PRIMARY KEY,
    blob BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS smime_caps(
    fingerprint TEXT PRIMARY KEY,
    gcm         INTEGER NOT NULL,
    caps        TEXT NOT NULL,
    seen        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS peerstate(
    email          TEXT PRIMARY KEY,
    last_seen      TEXT NOT NULL,
    autocrypt_seen TEXT,
    fingerprint    TEXT,
    prefer_encrypt TEXT NOT NULL DEFAULT 'nopreference',
    changed_from   TEXT
);
CREATE TABLE IF NOT EXISTS discovery_cache(
    method      TEXT NOT NULL,
    email       TEXT NOT NULL,
    fetched     TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    fingerprint TEXT,
    detail      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (method, email)
);
CREATE INDEX IF NOT EXISTS key_emails_fpr ON key_emails(fingerprint);
CREATE INDEX IF NOT EXISTS pgp_keyids_fpr ON pgp_keyids(fingerprint);
CREATE INDEX IF NOT EXISTS pgp_keyids_kfpr ON pgp_keyids(key_fpr);
"""

_COLUMNS = (
    "fingerprint, kind, label, origin, confirmed, trust_anchor, is_ca, revoked, expires, "
    "public, secret, weak"
)
#: Columns added after the first release, with their definitions (added on open).
_MIGRATIONS = (("keys", "weak", "TEXT NOT NULL DEFAULT ''"),)


@dataclass(frozen=True)
class Row:
    fingerprint: str
    kind: str
    label: str
    origin: str
    confirmed: bool
    trust_anchor: bool
    is_ca: bool
    revoked: bool
    expires: datetime | None
    public: bytes
    secret: bytes | None  # sealed
    emails: tuple[str, ...] = ()
    weak: str = ""  # why the policy cannot validate this key ("" when it can)


@dataclass(frozen=True)
class PeerRow:
    """Autocrypt/discovery state of one address."""

    email: str
    last_seen: datetime
    autocrypt_seen: datetime | None
    fingerprint: str | None
    prefer_encrypt: str
    changed_from: str | None


@dataclass(frozen=True)
class CacheRow:
    method: str
    email: str
    fetched: datetime
    outcome: str  # "found", "none", "error"
    fingerprint: str | None
    detail: str


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


class Index:
    def __init__(self, profile: Profile) -> None:
        self._profile = profile
        path = profile.file(DB_FILE)
        if not path.exists():
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                raise storage_error(exc, path) from exc
            os.close(fd)
        try:
            self._db = sqlite3.connect(
                path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
                factory=GuardedConnection,  # disk full / read-only -> StorageError
            )
            self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA foreign_keys = ON")
            with profile.lock():
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.executescript(_SCHEMA)
                self._migrate()
        except StorageError:
            raise
        except sqlite3.Error as exc:
            raise KeystoreError(f"cannot open the key index {path}: {exc}") from exc

    def _migrate(self) -> None:
        for table, column, definition in _MIGRATIONS:
            have = {str(r[1]) for r in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._profile.lock():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self._db.in_transaction:  # SQLite already rolled back after FULL/IOERR
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- rows -------------------------------------------------------------------------

    def _row(self, rec: tuple[object, ...]) -> Row:
        fpr = str(rec[0])
        emails = tuple(
            str(e)
            for (e,) in self._db.execute(
                "SELECT email FROM key_emails WHERE fingerprint = ? ORDER BY email", (fpr,)
            )
        )
        expires = datetime.fromisoformat(str(rec[8])) if rec[8] is not None else None
        secret = rec[10]
        return Row(
            fingerprint=fpr,
            kind=str(rec[1]),
            label=str(rec[2]),
            origin=str(rec[3]),
            confirmed=bool(rec[4]),
            trust_anchor=bool(rec[5]),
            is_ca=bool(rec[6]),
            revoked=bool(rec[7]),
            expires=expires,
            public=bytes(rec[9]) if isinstance(rec[9], bytes | memoryview) else b"",
            secret=bytes(secret) if isinstance(secret, bytes | memoryview) else None,
            emails=emails,
            weak=str(rec[11] or ""),
        )

    def get(self, fingerprint: str) -> Row | None:
        rec = self._db.execute(
            f"SELECT {_COLUMNS} FROM keys WHERE fingerprint = ?",  # noqa: S608
            (fingerprint,),
        ).fetchone()
        return self._row(rec) if rec else None

    def find_prefix(self, prefix: str) -> list[str]:
        return [
            str(f)
            for (f,) in self._db.execute(
                "SELECT fingerprint FROM keys WHERE fingerprint LIKE ? ORDER BY fingerprint",
                (prefix.replace("%", "").replace("_", "") + "%",),
            )
        ]

    def all(self, *, kind: str | None = None) -> list[Row]:
        if kind is None:
            cur = self._db.execute(f"SELECT {_COLUMNS} FROM keys ORDER BY kind, label")  # noqa: S608
        else:
            cur = self._db.execute(
                f"SELECT {_COLUMNS} FROM keys WHERE kind = ? ORDER BY label",  # noqa: S608
                (kind,),
            )
        return [self._row(r) for r in cur.fetchall()]

    def by_email(self, email: str, *, kind: str | None = None) -> list[Row]:
        sql = (
            f"SELECT {', '.join('k.' + c.strip() for c in _COLUMNS.split(','))} "  # noqa: S608
            "FROM keys k JOIN key_emails e ON e.fingerprint = k.fingerprint WHERE e.email = ?"
        )
        args: tuple[str, ...] = (email.lower(),)
        if kind is not None:
            sql += " AND k.kind = ?"
            args += (kind,)
        return [self._row(r) for r in self._db.execute(sql + " ORDER BY k.fingerprint", args)]

    def by_pgp_keyid(self, ids: Iterable[str]) -> list[Row]:
        fprs: list[str] = []
        for kid in ids:
            column = "keyid" if len(kid) == 16 else "key_fpr"
            for (fpr,) in self._db.execute(
                f"SELECT fingerprint FROM pgp_keyids WHERE {column} = ?",  # noqa: S608
                (kid.lower(),),
            ):
                if fpr not in fprs:
                    fprs.append(str(fpr))
        rows = [self.get(f) for f in fprs]
        return [r for r in rows if r is not None]

    def put(
        self,
        row: Row,
        *,
        pgp_keyids: Iterable[tuple[str, str]] = (),
        added: datetime | None = None,
    ) -> None:
        """Insert or replace a row and its lookup entries (inside a transaction)."""
        self._db.execute(
            f"INSERT OR REPLACE INTO keys({_COLUMNS}, added) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.fingerprint,
                row.kind,
                row.label,
                row.origin,
                int(row.confirmed),
                int(row.trust_anchor),
                int(row.is_ca),
                int(row.revoked),
                _iso(row.expires),
                row.public,
                row.secret,
                row.weak,
                _iso(added or datetime.now(UTC)),
            ),
        )
        self._db.execute("DELETE FROM key_emails WHERE fingerprint = ?", (row.fingerprint,))
        self._db.executemany(
            "INSERT OR IGNORE INTO key_emails(email, fingerprint) VALUES (?, ?)",
            [(e.lower(), row.fingerprint) for e in row.emails],
        )
        self._db.execute("DELETE FROM pgp_keyids WHERE fingerprint = ?", (row.fingerprint,))
        self._db.executemany(
            "INSERT OR IGNORE INTO pgp_keyids(keyid, key_fpr, fingerprint) VALUES (?, ?, ?)",
            [(k.lower(), f.lower(), row.fingerprint) for k, f in pgp_keyids],
        )

    def delete(self, fingerprint: str) -> bool:
        cur = self._db.execute("DELETE FROM keys WHERE fingerprint = ?", (fingerprint,))
        self._db.execute("DELETE FROM smime_caps WHERE fingerprint = ?", (fingerprint,))
        return cur.rowcount > 0

    # --- S/MIME capabilities, peer state, discovery cache ----------------------------

    def set_smime_caps(self, fingerprint: str, *, gcm: bool, caps: str, seen: datetime) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO smime_caps(fingerprint, gcm, caps, seen) VALUES (?, ?, ?, ?)",
            (fingerprint, int(gcm), caps, _iso(seen)),
        )

    def smime_caps(self, fingerprint: str) -> tuple[bool, str, datetime] | None:
        rec = self._db.execute(
            "SELECT gcm, caps, seen FROM smime_caps WHERE fingerprint = ?", (fingerprint,)
        ).fetchone()
        if rec is None:
            return None
        return bool(rec[0]), str(rec[1]), datetime.fromisoformat(str(rec[2]))

    def peer(self, email: str) -> PeerRow | None:
        rec = self._db.execute(
            "SELECT email, last_seen, autocrypt_seen, fingerprint, prefer_encrypt, changed_from "
            "FROM peerstate WHERE email = ?",
            (email.lower(),),
        ).fetchone()
        if rec is None:
            return None
        return PeerRow(
            email=str(rec[0]),
            last_seen=datetime.fromisoformat(str(rec[1])),
            autocrypt_seen=datetime.fromisoformat(str(rec[2])) if rec[2] else None,
            fingerprint=str(rec[3]) if rec[3] else None,
            prefer_encrypt=str(rec[4]),
            changed_from=str(rec[5]) if rec[5] else None,
        )

    def put_peer(self, peer: PeerRow) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO peerstate(email, last_seen, autocrypt_seen, fingerprint, "
            "prefer_encrypt, changed_from) VALUES (?, ?, ?, ?, ?, ?)",
            (
                peer.email.lower(),
                _iso(peer.last_seen),
                _iso(peer.autocrypt_seen),
                peer.fingerprint,
                peer.prefer_encrypt,
                peer.changed_from,
            ),
        )

    def cache_get(self, method: str, email: str) -> CacheRow | None:
        rec = self._db.execute(
            "SELECT method, email, fetched, outcome, fingerprint, detail FROM discovery_cache "
            "WHERE method = ? AND email = ?",
            (method, email.lower()),
        ).fetchone()
        if rec is None:
            return None
        return CacheRow(
            method=str(rec[0]),
            email=str(rec[1]),
            fetched=datetime.fromisoformat(str(rec[2])),
            outcome=str(rec[3]),
            fingerprint=str(rec[4]) if rec[4] else None,
            detail=str(rec[5]),
        )

    def cache_put(self, row: CacheRow) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO discovery_cache(method, email, fetched, outcome, "
            "fingerprint, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (
                row.method,
                row.email.lower(),
                _iso(row.fetched),
                row.outcome,
                row.fingerprint,
                row.detail,
            ),
        )

    # --- CRLs and named secrets -------------------------------------------------------

    def add_crl(self, der: bytes, issuer: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO crls(der, issuer, added) VALUES (?, ?, ?)",
            (der, issuer, _iso(datetime.now(UTC))),
        )

    def crls(self) -> list[bytes]:
        return [bytes(d) for (d,) in self._db.execute("SELECT der FROM crls ORDER BY added")]

    def put_secret(self, name: str, blob: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO secrets(name, blob) VALUES (?, ?)", (name, blob))

    def get_secret(self, name: str) -> bytes | None:
        rec = self._db.execute("SELECT blob FROM secrets WHERE name = ?", (name,)).fetchone()
        return bytes(rec[0]) if rec else None

    def delete_secret(self, name: str) -> bool:
        return self._db.execute("DELETE FROM secrets WHERE name = ?", (name,)).rowcount > 0
