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

_CLEARTEXT = re.compile(
    rb"-----BEGIN PGP SIGNED MESSAGE-----\r?\n(?P<headers>(?:[^\r\n]+\r?\n)*)\r?\n"
    rb"(?P<text>.*?)\r?\n(?P<sig>-----BEGIN PGP SIGNATURE-----.*?-----END PGP SIGNATURE-----)",
    re.S,
)


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
    m = _CLEARTEXT.search(data)
    if m is None:
        raise MalformedMessage("the cleartext-signed OpenPGP message is damaged")
    lines = re.split(rb"\r?\n", m.group("text"))
    text = b"\r\n".join(line[2:] if line.startswith(b"- ") else line for line in lines)
    return text, m.group("sig")
