"""Errors of the keystore, and the root of every Sealmail error.

The tree (each class carries a ``hint`` telling the user what to do)::

    SealmailError                    root; never raised itself
    ├── UsageError                   local misuse: bad arguments, wrong state (our side)
    ├── StorageError                 a local file could not be written: disk full, read-only
    └── KeystoreError                something about keys, certificates or secrets
        ├── KeyNotFound              no key/certificate with that fingerprint or address
        ├── NoKeyForRecipient        no usable encryption key or certificate for an address
        ├── NoSigningKey             no own secret key/certificate for the sender address
        ├── BadPassword              a passphrase or password was wrong
        ├── SecretStoreUnavailable   no usable OS keyring and no profile passphrase given
        ├── InsecureKeyring          a plaintext keyring backend was found and refused
        ├── InvalidKeyMaterial       a key/certificate file could not be parsed (broken input)
        ├── ProfileLocked            another process holds the profile and did not let go in time
        ├── GnupgError               gpg (the GnuPG backend) refused or failed an operation
        └── DiscoveryError           looking a key up (WKD) failed
            ├── KeyNotPublished      the directory answered: no key for this address (404)
            ├── WrongKeyForAddress   the key served has no user id for the address
            ├── DiscoveryTlsError    the server's certificate did not verify (or TLS failed)
            ├── DiscoveryTimeout     the server did not answer in time
            ├── ResponseTooLarge     the server sent more than the size cap
            └── DiscoveryNetworkError  no connection (DNS, refused) or a bad HTTP answer

``SealmailError`` lives here, at the bottom of the import order
(ui -> client -> keystore), so both packages share one tree; ``client.errors``
re-exports it and adds the message, crypto, transport and policy branches.
"""

from __future__ import annotations

__all__ = [
    "BadPassword",
    "DiscoveryError",
    "DiscoveryNetworkError",
    "DiscoveryTimeout",
    "DiscoveryTlsError",
    "GnupgError",
    "InsecureKeyring",
    "InvalidKeyMaterial",
    "KeyNotFound",
    "KeyNotPublished",
    "KeystoreError",
    "NoKeyForRecipient",
    "NoSigningKey",
    "ProfileLocked",
    "ResponseTooLarge",
    "SealmailError",
    "SecretStoreUnavailable",
    "StorageError",
    "UsageError",
    "WrongKeyForAddress",
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


class StorageError(SealmailError):
    """Writing a local file failed (no space, file too large, read-only, no permission).

    Raised before anything was sent or changed for good: the write was atomic, so the old
    file (or none) is still there.
    """

    hint = (
        "Free some disk space, or make the profile (or output) directory writable, "
        "then try again; nothing was lost."
    )
    exit_code = 74  # EX_IOERR


class KeystoreError(SealmailError):
    hint = "Check the key or certificate with `sealmail keys list`."
    exit_code = 3


class GnupgError(KeystoreError):
    """gpg refused or failed an operation; the message carries gpg's own reason."""

    hint = "Check the key in GnuPG (gpg --list-keys) and gpg-agent's pinentry."


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


class DiscoveryError(KeystoreError):
    hint = "Ask the recipient for their key, or send a password envelope instead."


class KeyNotPublished(DiscoveryError):
    hint = (
        "The recipient's domain publishes no OpenPGP key for this address; ask them for "
        "their key or certificate."
    )


class WrongKeyForAddress(DiscoveryError):
    hint = (
        "The key directory served a key that is not for this address; it was refused. "
        "Tell the recipient's administrator."
    )


class DiscoveryTlsError(DiscoveryError):
    hint = (
        "The key directory's HTTPS certificate did not verify, so nothing was trusted from "
        "it. Check the system clock and trust store (or the CA file in settings)."
    )


class DiscoveryTimeout(DiscoveryError):
    hint = "The key directory did not answer in time; check the network and try again later."


class ResponseTooLarge(DiscoveryError):
    hint = "The key directory sent far more data than a key; it was refused."


class DiscoveryNetworkError(DiscoveryError):
    hint = "Could not reach the key directory; check the network (or proxy) and try again."
