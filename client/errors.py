"""Errors of the message core and everything built on it.

The tree below ``SealmailError`` (defined in ``keystore.errors``, re-exported here)::

    SealmailError
    ├── UsageError                      local misuse (our side): bad arguments, wrong state
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
        └── VendorEnvelope              a portal envelope that cannot be opened offline

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
    UsageError,
)

__all__ = [
    "BadPassword",
    "DecryptionFailed",
    "InsecureKeyring",
    "InvalidKeyMaterial",
    "KeyNotFound",
    "KeystoreError",
    "MalformedMessage",
    "MessageError",
    "MessageTooLarge",
    "NoKeyForRecipient",
    "NoSigningKey",
    "NotEncrypted",
    "NotSigned",
    "ProfileLocked",
    "SealmailError",
    "SecretStoreUnavailable",
    "TamperedMessage",
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


class VendorEnvelope(MessageError):
    hint = (
        "This is a portal envelope; open it in a web browser with network access "
        "and follow its instructions."
    )
