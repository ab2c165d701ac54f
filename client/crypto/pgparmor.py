"""OpenPGP ASCII armor (RFC 9580 section 6), both directions.

Theory of operation: :func:`dearmor` takes whatever a mail part gave us. Binary
OpenPGP data (the first octet has its high bit set) is returned unchanged. Otherwise
the first ``-----BEGIN PGP ...-----`` block is located (text before it, as in an
inline-PGP mail body, is ignored), its armor headers are skipped, the base64 body is
decoded strictly and, when the optional CRC-24 footer is present, checked. Anything
that is neither binary OpenPGP nor a well-formed armor block raises
:class:`~client.errors.MalformedMessage`. :func:`enarmor` writes the armor with a
CRC-24 footer (RFC 9580 lets writers omit it; older readers want it).
"""

from __future__ import annotations

import base64
import binascii
import re

import pysequoia

from client.errors import MalformedMessage, UsageError

__all__ = ["ARMOR_KINDS", "crc24", "dearmor", "enarmor", "is_armored"]

ARMOR_KINDS = frozenset(
    {"MESSAGE", "PUBLIC KEY BLOCK", "PRIVATE KEY BLOCK", "SIGNATURE", "ARMORED FILE"}
)

_SEQUOIA_KINDS = {
    "MESSAGE": pysequoia.ArmorKind.Message,
    "PUBLIC KEY BLOCK": pysequoia.ArmorKind.PublicKey,
    "PRIVATE KEY BLOCK": pysequoia.ArmorKind.SecretKey,
    "SIGNATURE": pysequoia.ArmorKind.Signature,
}
_BEGIN = re.compile(rb"^-----BEGIN PGP ([A-Z0-9 ,/]+)-----[ \t]*\r?$", re.MULTILINE)
_HEADER = re.compile(rb"^[A-Za-z0-9-]+: ")
_HEAD_LINES = 32  # armor header lines examined one by one
_CRC24_INIT = 0xB704CE
_CRC24_POLY = 0x1864CFB


def _crc24_table() -> tuple[int, ...]:
    table = []
    for octet in range(256):
        crc = octet << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= _CRC24_POLY
        table.append(crc & 0xFFFFFF)
    return tuple(table)


_CRC24_TABLE = _crc24_table()


def crc24(data: bytes) -> int:
    """The CRC-24 of RFC 9580 section 6.1 (table driven)."""
    crc = _CRC24_INIT
    table = _CRC24_TABLE
    for octet in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ table[(crc >> 16) ^ octet]
    return crc


def is_armored(data: bytes) -> bool:
    """True when ``data`` contains an armor BEGIN line and is not binary OpenPGP."""
    return bool(data) and not data[0] & 0x80 and _BEGIN.search(data) is not None


def dearmor(data: bytes, *, check_crc: bool = False) -> bytes:
    """Return the binary OpenPGP data in ``data`` (armored or already binary).

    The CRC-24 footer is optional and, as RFC 9580 §6.1 requires, not a reason to reject
    by default: integrity is the job of MDC/AEAD and signatures, not of armor. Pass
    ``check_crc=True`` to check it anyway (tests of the armor writer do).
    """
    if not data:
        raise MalformedMessage("empty OpenPGP data")
    if data[0] & 0x80:
        return data
    begin = _BEGIN.search(data)
    if begin is None:
        raise MalformedMessage("no OpenPGP armor found")
    kind = begin.group(1)
    if kind.startswith(b"SIGNED MESSAGE"):
        raise MalformedMessage("cleartext-signed text is not an armored OpenPGP object")
    end_line = b"-----END PGP " + kind + b"-----"
    end = data.find(end_line, begin.end())
    if end < 0:
        raise MalformedMessage("OpenPGP armor has no END line")
    # Only the first lines (armor headers) and the last line (CRC-24) are looked at one by
    # one; the body is decoded as one block, so a 50 MB message costs no Python loop.
    pieces = data[begin.end() : end].split(b"\n", _HEAD_LINES)
    rest = pieces.pop() if len(pieces) > _HEAD_LINES else None
    head = [line.strip() for line in pieces]
    i = 0
    while i < len(head) and not head[i]:
        i += 1
    while i < len(head) and _HEADER.match(head[i]):
        i += 1
    body = b"\n".join(head[i:] + ([rest] if rest is not None else [])).rstrip()
    checksum: bytes | None = None
    cut = body.rfind(b"\n")
    last = body[cut + 1 :].strip()
    if last.startswith(b"=") and len(last) == 5:
        checksum, body = last[1:], body[: max(cut, 0)]
    elif len(last) > 5 and last[-5:-4] == b"=" and last[-6:-5] != b"=" and len(last[:-5]) % 4 == 0:
        # some writers append the checksum to the last base64 line
        checksum, body = last[-4:], body[: cut + 1] + last[:-5]
    compact = body.translate(None, b" \t\r\n")
    try:
        binary = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage("OpenPGP armor is not valid base64") from exc
    if checksum is not None and check_crc:
        try:
            expected = int.from_bytes(base64.b64decode(checksum, validate=True), "big")
        except (binascii.Error, ValueError) as exc:
            raise MalformedMessage("OpenPGP armor checksum is not valid base64") from exc
        if crc24(binary) != expected:
            raise MalformedMessage("OpenPGP armor checksum does not match")
    if not binary:
        raise MalformedMessage("OpenPGP armor is empty")
    return binary


def enarmor(data: bytes, kind: str = "MESSAGE") -> bytes:
    """Armor binary OpenPGP ``data`` as ``-----BEGIN PGP <kind>-----`` (LF line ends)."""
    if kind not in ARMOR_KINDS:
        raise UsageError(f"unknown armor kind {kind!r}; use one of {sorted(ARMOR_KINDS)}")
    if data and kind in _SEQUOIA_KINDS:
        # Sequoia's armor writer (Rust) computes the CRC-24 footer gpg 2.2 likes, fast.
        return pysequoia.armor(data, _SEQUOIA_KINDS[kind]).encode("ascii")
    encoded = base64.b64encode(data)
    body = b"\n".join(encoded[i : i + 64] for i in range(0, len(encoded), 64))
    crc = base64.b64encode(crc24(data).to_bytes(3, "big"))
    head = f"-----BEGIN PGP {kind}-----\n\n".encode()
    tail = f"-----END PGP {kind}-----\n".encode()
    return head + body + (b"\n" if body else b"") + b"=" + crc + b"\n" + tail
