"""Autocrypt Level 1 header parsing (https://autocrypt.org/level1.html, section 2.1).

Theory of operation
-------------------
Pure functions, no I/O: :func:`parse_header` turns one ``Autocrypt:`` header value into
an :class:`AutocryptHeader` or None when the header must be ignored (missing ``addr``
or ``keydata``, an unknown critical attribute, a ``prefer-encrypt`` value other than
``mutual``, bad base64). :func:`header_for_sender` applies the rule that exactly one
valid header whose ``addr`` equals the ``From`` address counts; zero or several mean
"no Autocrypt header". What to do with the result (peer state, importing the key as
``discovered``) is in :mod:`keystore.discovery`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AutocryptHeader",
    "PreferEncrypt",
    "header_for_sender",
    "parse_header",
]

PreferEncrypt = Literal["mutual", "nopreference"]


@dataclass(frozen=True)
class AutocryptHeader:
    addr: str  # lower-cased
    prefer_encrypt: PreferEncrypt
    keydata: bytes  # binary OpenPGP certificate


def parse_header(value: str) -> AutocryptHeader | None:
    """One header value, or None when Level 1 says to ignore it."""
    attrs: dict[str, str] = {}
    for part in value.split(";"):
        name, sep, val = part.strip().partition("=")
        name = name.strip().lower()
        if not sep or not name:
            continue
        if name in attrs:  # a repeated attribute: malformed
            return None
        attrs[name] = val.strip()
    addr = attrs.pop("addr", "").strip().strip('"').lower()
    raw_key = attrs.pop("keydata", "")
    prefer = attrs.pop("prefer-encrypt", "nopreference")
    if any(not k.startswith("_") for k in attrs):  # unknown critical attribute
        return None
    if not addr or "@" not in addr or not raw_key:
        return None
    try:
        keydata = base64.b64decode("".join(raw_key.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not keydata:
        return None
    return AutocryptHeader(
        addr=addr,
        prefer_encrypt="mutual" if prefer.strip().lower() == "mutual" else "nopreference",
        keydata=keydata,
    )


def header_for_sender(values: Iterable[str], from_addr: str) -> AutocryptHeader | None:
    """The one valid header for ``from_addr``, or None (none, or more than one)."""
    sender = from_addr.strip().lower()
    found = [h for h in (parse_header(v) for v in values) if h is not None and h.addr == sender]
    return found[0] if len(found) == 1 else None
