"""An in-memory keyring backend for tests (never keyrings.alt, never a file).

Select it with ``PYTHON_KEYRING_BACKEND=tests.helpers.memkeyring.MemoryKeyring`` (the
``keyring`` package honours that variable) or pass an instance to the keystore. The
store is per process and per class, so a subprocess starts empty.
"""

from __future__ import annotations

from typing import ClassVar

import keyring.backend
import keyring.errors

__all__ = ["MemoryKeyring"]


class MemoryKeyring(keyring.backend.KeyringBackend):
    priority = 1  # type: ignore[assignment]
    store: ClassVar[dict[tuple[str, str], str]] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.store[(service, username)]
        except KeyError:
            raise keyring.errors.PasswordDeleteError(username) from None
