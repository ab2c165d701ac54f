"""Header protection (RFC 9788) and the legacy "protected-headers" scheme, both directions.

Theory of operation
-------------------
*Sending.* The header fields a user cares about (:data:`PROTECTED`) are copied into the
header section of the Cryptographic Payload's root part, whose Content-Type gains
``hp="cipher"`` (encrypted) or ``hp="clear"`` (signed only). For an encrypted message the
outer Subject is replaced by ``[...]`` and every outer non-structural field is recorded in
an ``HP-Outer`` field inside, so a reader can tell what the outside showed.

*Reading.* After every cryptographic layer has been peeled, the innermost root part is
examined: ``hp=`` (RFC 9788) or ``protected-headers="v1"`` (the Autocrypt/"memory hole"
draft, used by Thunderbird, Enigmail, Delta Chat) marks its header section as protected.
Those values win over the outer ones, and the report lists them. Protected headers are
only honoured inside a layer that was actually verified or decrypted — an attacker can put
any ``hp`` parameter on an unprotected message.
"""

from __future__ import annotations

import email.message
from collections.abc import Iterable

from client.mime.raw import Entity

__all__ = [
    "OBSCURED_SUBJECT",
    "PROTECTED",
    "hp_outer_fields",
    "is_content_header",
    "protected_headers_of",
]

OBSCURED_SUBJECT = "[...]"
PROTECTED = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Followup-To",
    "Keywords",
    "Comments",
)
_PROTECTED_LOWER = {h.lower() for h in PROTECTED}


def is_content_header(name: str) -> bool:
    """True for fields that describe a MIME entity rather than the message."""
    lower = name.lower()
    return lower.startswith("content-") or lower == "mime-version"


def _decoded(value: str) -> str:
    import email.header

    try:
        parts = email.header.decode_header(value)
        return str(email.header.make_header(parts))
    except (ValueError, LookupError, UnicodeDecodeError):
        return value


def protected_headers_of(
    entity: Entity,
) -> tuple[str | None, list[tuple[str, str]]]:
    """The scheme (``"rfc9788"``/``"legacy"``/None) and protected fields of a root part.

    Values are returned decoded (RFC 2047) and unfolded.
    """
    hp = entity.param("hp")
    legacy = entity.param("protected-headers")
    if hp is not None and hp.lower() in {"cipher", "clear"}:
        scheme = "rfc9788"
    elif legacy is not None and legacy.lower() == "v1":
        scheme = "legacy"
    else:
        return None, []
    fields = _fields(entity.headers.items())
    return scheme, fields


def _fields(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, value in items:
        if name.lower() in _PROTECTED_LOWER:
            canonical = next(h for h in PROTECTED if h.lower() == name.lower())
            out.append((canonical, " ".join(_decoded(str(value)).split())))
    return out


def hp_outer_fields(message: email.message.Message) -> list[str]:
    """``HP-Outer`` values (``Name: value``) for the outer fields of ``message``."""
    return [
        f"{name}: {' '.join(str(value).split())}"
        for name, value in message.items()
        if not is_content_header(name) and name.lower() != "hp-outer"
    ]
