"""Mail accounts: server settings in the profile, passwords sealed in the keystore.

Theory of operation
-------------------
Settings live in ``accounts.json`` in the profile directory, written with
:func:`keystore.profile.atomic_write` under the profile lock (read-modify-write is one
critical section, so two processes cannot lose each other's changes). Passwords never
go there: they are stored with :meth:`keystore.store.Keystore.put_secret` under
``account:<email>`` (sealed by the profile's master key). ``to_json`` never includes a
password.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from client.errors import AccountNotFound, UsageError
from keystore.profile import Profile, atomic_write
from keystore.store import Keystore

__all__ = ["Account", "AccountBook", "parse_hostport"]

Security = Literal["tls", "starttls"]
_FILE = "accounts.json"


def parse_hostport(text: str, *, default_port: int) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"bad HOST:PORT {text!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Account:
    email: str
    imap_host: str
    imap_port: int
    imap_security: Security
    smtp_host: str
    smtp_port: int
    smtp_security: Security
    username: str
    ca_file: str | None = None
    sent_folder: str = "Sent"
    drafts_folder: str = "Drafts"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Account:
        fields = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in fields})

    @property
    def secret_name(self) -> str:
        return f"account:{self.email.lower()}"


class AccountBook:
    """The accounts of one profile."""

    def __init__(self, store: Keystore) -> None:
        self.store = store
        self.profile: Profile = store.profile

    def _read(self) -> dict[str, dict[str, Any]]:
        path = self.profile.file(_FILE)
        if not path.exists():
            return {}
        data: dict[str, dict[str, Any]] = json.loads(path.read_text("utf-8"))
        return data

    def list(self) -> list[Account]:
        return [Account.from_json(v) for _, v in sorted(self._read().items())]

    def get(self, email: str | None = None) -> Account:
        accounts = self.list()
        if email is None:
            if len(accounts) == 1:
                return accounts[0]
            if not accounts:
                raise AccountNotFound("no account is configured")
            raise UsageError("several accounts are configured; choose one with --account")
        for a in accounts:
            if a.email.lower() == email.lower():
                return a
        raise AccountNotFound(f"no account {email}")

    def add(self, account: Account, password: bytes | None) -> Account:
        if "@" not in account.email:
            raise UsageError(f"{account.email!r} is not an e-mail address")
        with self.profile.lock():
            data = self._read()
            data[account.email.lower()] = account.to_json()
            if password is not None:
                self.store.put_secret(account.secret_name, password)
            atomic_write(
                self.profile.file(_FILE), json.dumps(data, indent=2).encode("utf-8"), mode=0o600
            )
        return account

    def update(self, email: str, **changes: Any) -> Account:
        return self.add(replace(self.get(email), **changes), None)

    def password(self, account: Account) -> str:
        secret = self.store.get_secret(account.secret_name)
        if secret is None:
            raise AccountNotFound(
                f"no password is stored for {account.email}",
                hint="Add it again with `sealmail account add ... --password-fd N`.",
            )
        return secret.decode("utf-8")
