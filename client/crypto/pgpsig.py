"""Small OpenPGP signature helpers: who issued a signature, cleartext-signed text.

Theory of operation
-------------------
pysequoia's ``verify`` says which signatures were *valid*; to report the others (unknown
key, bad signature) we need the issuers of every signature packet, read here with
pysequoia's packet parser. Cleartext-signed messages (``BEGIN PGP SIGNED MESSAGE``) are
split into the dash-unescaped text (shown, with the report saying whether it verified)
and the armored signature block.
"""

from __future__ import annotations

import re

from pysequoia import packet

from client.errors import MalformedMessage

__all__ = ["signature_issuers", "split_cleartext"]

_BEGIN = b"-----BEGIN PGP SIGNED MESSAGE-----"
_SIG_BEGIN = b"-----BEGIN PGP SIGNATURE-----"
_SIG_END = b"-----END PGP SIGNATURE-----"
_HEADER_LINE = re.compile(rb"[^\r\n]+\r?\n")
_NEWLINE = re.compile(rb"\r?\n")
# How many BEGIN markers are tried before giving up: each try is linear, so a message
# stuffed with markers stays linear too (a regex with a lazy body was quadratic here).
_MAX_MARKERS = 8


def signature_issuers(data: bytes) -> list[str]:
    """Issuer fingerprints (or key ids) of the signature packets in ``data`` (binary)."""
    try:
        pile = packet.PacketPile.from_bytes(data)
        packets = list(pile)
    except Exception as exc:  # pysequoia raises RuntimeError with a Rust backtrace
        raise MalformedMessage("the OpenPGP signature data could not be parsed") from exc
    issuers: list[str] = []
    for p in packets:
        try:
            if p.tag != packet.Tag.Signature:
                continue
            issuer = p.issuer_fingerprint or p.issuer_key_id
        except RuntimeError:  # a tag pysequoia cannot name (15, private...): no signature
            continue
        if issuer is not None:
            issuers.append(str(issuer).lower())
    return issuers


def split_cleartext(data: bytes) -> tuple[bytes, bytes]:
    """The (dash-unescaped) text and the armored signature of a cleartext-signed message."""
    found = _find_cleartext(data)
    if found is None:
        raise MalformedMessage("the cleartext-signed OpenPGP message is damaged")
    body, sig = found
    lines = _NEWLINE.split(body)
    text = b"\r\n".join(line[2:] if line.startswith(b"- ") else line for line in lines)
    return text, sig


def _find_cleartext(data: bytes) -> tuple[bytes, bytes] | None:
    """(text, armored signature) of the first well-formed cleartext frame, or None."""
    start = data.find(_BEGIN)
    sig_at = -1
    for _ in range(_MAX_MARKERS):
        if start < 0:
            return None
        pos = _after_newline(data, start + len(_BEGIN))
        if pos is not None:
            while (header := _HEADER_LINE.match(data, pos)) is not None:
                pos = header.end()
            body_at = _after_newline(data, pos)
            if body_at is not None:
                if sig_at < body_at:
                    sig_at = _signature_start(data, body_at)
                if sig_at < 0:
                    return None  # no signature block after any later marker either
                end = data.find(_SIG_END, sig_at + len(_SIG_BEGIN))
                if end < 0:
                    return None
                text_end = sig_at - 2 if data[sig_at - 2 : sig_at] == b"\r\n" else sig_at - 1
                return data[body_at:text_end], data[sig_at : end + len(_SIG_END)]
        start = data.find(_BEGIN, start + 1)
    return None


def _after_newline(data: bytes, pos: int) -> int | None:
    if data.startswith(b"\r\n", pos):
        return pos + 2
    if data.startswith(b"\n", pos):
        return pos + 1
    return None


def _signature_start(data: bytes, pos: int) -> int:
    """Where the first signature block that starts a line at or after ``pos`` begins."""
    at = data.find(b"\n" + _SIG_BEGIN, pos - 1)
    return -1 if at < 0 else at + 1
