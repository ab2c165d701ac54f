"""Errors of the message core and everything built on it.

The tree below ``SealmailError`` (defined in ``keystore.errors``, re-exported here)::

    SealmailError
    ├── UsageError                      local misuse (our side): bad arguments, wrong state
    ├── StorageError                    a local file could not be written (disk full, read-only)
    ├── KeystoreError ...               see keystore.errors
    └── MessageError                    something about a message (peer side: hostile/broken input)
        ├── MalformedMessage            MIME, CMS or OpenPGP structure that cannot be parsed
        ├── UnsupportedMessage          well-formed, but uses something we do not implement
        ├── DecryptionFailed            cannot decrypt: no matching key, or the data is wrong.
        │                               Deliberately one opaque error (no padding/MAC oracle).
        ├── TamperedMessage             integrity check failed (GCM tag, MDC, signed content)
        ├── UnauthenticatedCiphertext   ciphertext without MDC/AEAD: refused (Efail)
        ├── NotEncrypted / NotSigned    the operation needs a protected message and got none
        ├── MessageTooLarge             a size/nesting/decompression limit was hit (bombs)
        │   └── TooManyRecipients       more than 1,000 addresses in one message to protect
        └── VendorEnvelope              a portal envelope that cannot be opened offline
    └── TransportError                  talking to a mail server (IMAP, SMTP, autoconfig)
        ├── TlsRequired                 no verified TLS: STARTTLS missing/refused, bad certificate,
        │                               PREAUTH on a plain link. Closed before anything was sent.
        ├── RequireTlsUnavailable       REQUIRETLS (RFC 8689) asked for, server does not offer it
        ├── AuthenticationFailed        the server rejected the user name or password
        ├── ConnectionFailed            network error, time-out or dropped link (retry later)
        ├── TemporaryFailure            the server answered 4xx / NO [UNAVAILABLE] (retry later)
        ├── ServerRefused               the server answered 5xx / NO / BAD for good (held)
        ├── MailboxChanged              UIDVALIDITY changed or a folder vanished during an operation
        ├── AccountNotFound             no account with that address in the profile
        └── AutoconfigFailed            no usable settings could be discovered for a domain

Library exceptions (pysequoia's RuntimeError with a Rust backtrace, cryptography's
ValueError, asn1crypto's errors) are translated at the boundary with ``raise ... from``;
details go to debug logs only.
"""

from __future__ import annotations

from keystore.errors import (
    BadPassword,
    InsecureKeyring,
    InvalidKeyMaterial,
    KeyNotFound,
    KeystoreError,
    NoKeyForRecipient,
    NoSigningKey,
    ProfileLocked,
    SealmailError,
    SecretStoreUnavailable,
    StorageError,
    UsageError,
)

__all__ = [
    "AccountNotFound",
    "AuthenticationFailed",
    "AutoconfigFailed",
    "BadPassword",
    "ConnectionFailed",
    "DecryptionFailed",
    "InsecureKeyring",
    "InvalidKeyMaterial",
    "KeyNotFound",
    "KeystoreError",
    "MailboxChanged",
    "MalformedMessage",
    "MessageError",
    "MessageTooLarge",
    "NoKeyForRecipient",
    "NoSigningKey",
    "NotEncrypted",
    "NotSigned",
    "ProfileLocked",
    "RequireTlsUnavailable",
    "SealmailError",
    "SecretStoreUnavailable",
    "ServerRefused",
    "StorageError",
    "TamperedMessage",
    "TemporaryFailure",
    "TlsRequired",
    "TooManyRecipients",
    "TransportError",
    "UnauthenticatedCiphertext",
    "UnsupportedMessage",
    "UsageError",
    "VendorEnvelope",
]


class MessageError(SealmailError):
    hint = "The message could not be processed."
    exit_code = 5


class MalformedMessage(MessageError):
    hint = (
        "The message is damaged or not in a format Sealmail understands; "
        "ask the sender to resend it."
    )


class UnsupportedMessage(MessageError):
    hint = "The message uses a feature Sealmail does not support yet."


class DecryptionFailed(MessageError):
    hint = (
        "The message could not be decrypted: it was not encrypted to any of your keys, "
        "or it is damaged. Check that your key is imported (`sealmail keys list`)."
    )
    exit_code = 6


class TamperedMessage(MessageError):
    hint = (
        "The message was changed after it was protected. Do not trust its content; "
        "contact the sender."
    )
    exit_code = 7


class UnauthenticatedCiphertext(MessageError):
    hint = (
        "The message is encrypted without integrity protection (no MDC/AEAD) and is refused, "
        "because it could have been modified (Efail). Ask the sender to upgrade their software."
    )
    exit_code = 7


class NotEncrypted(MessageError):
    hint = "The message is not encrypted."


class NotSigned(MessageError):
    hint = "The message carries no signature."


class MessageTooLarge(MessageError):
    hint = "The message exceeds a safety limit (size, nesting or decompression) and was not opened."


class TooManyRecipients(MessageTooLarge):
    hint = (
        "Send it in smaller groups (at most 1,000 addresses per message, the common "
        "server limit), or address a mailing list instead of each person."
    )


class VendorEnvelope(MessageError):
    hint = (
        "This is a portal envelope; open it in a web browser with network access "
        "and follow its instructions."
    )


class TransportError(SealmailError):
    """Something went wrong talking to a mail server. ``temporary`` says whether to retry."""

    hint = "Check the account's server settings (`sealmail account list`) and the network."
    exit_code = 8
    temporary = False


class TlsRequired(TransportError):
    hint = (
        "The server did not offer verified TLS (STARTTLS missing or refused, or its "
        "certificate is invalid, expired or for another host). Nothing was sent. Check the "
        "host name and port, or give the right CA with --ca-file; never turn TLS off."
    )
    exit_code = 9


class RequireTlsUnavailable(TransportError):
    hint = (
        "Policy asks for TLS on every hop (REQUIRETLS, RFC 8689) and this server does not "
        "offer it. The message is held in the outbox; protect it end-to-end instead."
    )
    exit_code = 9


class AuthenticationFailed(TransportError):
    hint = "The server rejected the user name or password; update them with `sealmail account add`."
    exit_code = 10


class ConnectionFailed(TransportError):
    hint = "The server could not be reached or dropped the connection; it will be retried."
    temporary = True


class TemporaryFailure(TransportError):
    hint = "The server reported a temporary problem; the message will be retried automatically."
    temporary = True


class ServerRefused(TransportError):
    hint = (
        "The server refused the request for good; read its reason, fix the message or the "
        "recipients, then release it from the outbox."
    )


class MailboxChanged(TransportError):
    hint = "The folder changed on the server (UIDVALIDITY); sync again."
    temporary = True


class AccountNotFound(TransportError):
    hint = "Add the account first (`sealmail account add --email ADDR ...`)."
    exit_code = 2


class AutoconfigFailed(TransportError):
    hint = "Give the server settings explicitly with --imap HOST:PORT and --smtp HOST:PORT."
