"""Errors of the keystore, and the root of every Sealmail error.

The tree (each class carries a ``hint`` telling the user what to do)::

    SealmailError                    root; never raised itself
    ├── UsageError                   local misuse: bad arguments, wrong state (our side)
    └── KeystoreError                something about keys, certificates or secrets
        ├── KeyNotFound              no key/certificate with that fingerprint or address
        ├── NoKeyForRecipient        no usable encryption key or certificate for an address
        ├── NoSigningKey             no own secret key/certificate for the sender address
        ├── BadPassword              a passphrase or password was wrong
        ├── SecretStoreUnavailable   no usable OS keyring and no profile passphrase given
        ├── InsecureKeyring          a plaintext keyring backend was found and refused
        ├── InvalidKeyMaterial       a key/certificate file could not be parsed (broken input)
        └── ProfileLocked            another process holds the profile and did not let go in time

``SealmailError`` lives here, at the bottom of the import order
(ui -> client -> keystore), so both packages share one tree; ``client.errors``
re-exports it and adds the message, crypto, transport and policy branches.
"""

from __future__ import annotations

__all__ = [
    "BadPassword",
    "InsecureKeyring",
    "InvalidKeyMaterial",
    "KeyNotFound",
    "KeystoreError",
    "NoKeyForRecipient",
    "NoSigningKey",
    "ProfileLocked",
    "SealmailError",
    "SecretStoreUnavailable",
    "UsageError",
]


class SealmailError(Exception):
    """Root of every error Sealmail raises on purpose.

    ``str(err)`` says what happened; ``err.hint`` says what the user can do.
    ``exit_code`` is what the CLI returns for it.
    """

    hint: str = "See the log for details."
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class UsageError(SealmailError):
    hint = "Check the command's arguments (--help)."
    exit_code = 2


class KeystoreError(SealmailError):
    hint = "Check the key or certificate with `sealmail keys list`."
    exit_code = 3


class KeyNotFound(KeystoreError):
    hint = "Import the key or certificate first (`sealmail keys import FILE`)."


class NoKeyForRecipient(KeystoreError):
    hint = (
        "Import the recipient's certificate or OpenPGP key, or send a password envelope "
        "instead (`sealmail envelope create`)."
    )


class NoSigningKey(KeystoreError):
    hint = "Generate or import your own key (`sealmail keys generate --email YOU`)."


class BadPassword(KeystoreError):
    hint = "The password or passphrase is wrong; try again."
    exit_code = 4


class SecretStoreUnavailable(KeystoreError):
    hint = (
        "No usable OS keyring was found. Set SEALMAIL_PROFILE_PASSPHRASE (or run in a "
        "terminal to be prompted) to protect your profile with a passphrase."
    )


class InsecureKeyring(KeystoreError):
    hint = (
        "The configured keyring backend stores secrets in plaintext and is refused. "
        "Remove keyrings.alt or set PYTHON_KEYRING_BACKEND to a secure backend."
    )


class InvalidKeyMaterial(KeystoreError):
    hint = "The file is not a key or certificate Sealmail understands, or it is damaged."


class ProfileLocked(KeystoreError):
    hint = "Another Sealmail process is busy with this profile; try again in a moment."
