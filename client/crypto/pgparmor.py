"""OpenPGP ASCII armor (RFC 9580 section 6), both directions.

Theory of operation: :func:`dearmor` takes whatever a mail part gave us. Binary
OpenPGP data (the first octet has its high bit set) is returned unchanged. Otherwise
the first ``-----BEGIN PGP ...-----`` block is located (text before it, as in an
inline-PGP mail body, is ignored), its armor headers are skipped, the base64 body is
decoded strictly and, when the optional CRC-24 footer is present, checked. Anything
that is neither binary OpenPGP nor a well-formed armor block raises
:class:`~client.errors.MalformedMessage`. :func:`enarmor` writes the armor with a
CRC-24 footer (RFC 9580 lets writers omit it; older readers want it).

:func:`armor_chunks` writes the same armor from an iterable of binary pieces in bounded
steps (for large messages): each ~768 KiB step is armored by Sequoia (Rust base64 and
CRC-24), and the per-step CRCs are combined with the CRC's linearity
(``crc(s, M) = crc(0, M) xor s * x^(8|M|) mod P``), so the whole ciphertext is never
armored as one Python string.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from collections.abc import Iterable, Iterator

import pysequoia

from client.errors import MalformedMessage, UsageError
from client.mime.raw import regroup

__all__ = ["ARMOR_KINDS", "armor_chunks", "crc24", "dearmor", "enarmor", "is_armored"]

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


def dearmor(data: bytes, *, check_crc: bool = False, span: tuple[int, int] | None = None) -> bytes:
    """Return the binary OpenPGP data in ``data`` (armored or already binary).

    The CRC-24 footer is optional and, as RFC 9580 §6.1 requires, not a reason to reject
    by default: integrity is the job of MDC/AEAD and signatures, not of armor. Pass
    ``check_crc=True`` to check it anyway (tests of the armor writer do).

    ``span``: read only ``data[start:end]``, which must begin a line (a MIME part's body
    in the message buffer), without copying it out first.
    """
    first, limit = (0, len(data)) if span is None else span
    if not 0 <= first <= limit <= len(data):
        raise ValueError("span outside the data")
    if first == limit:
        raise MalformedMessage("empty OpenPGP data")
    if data[first] & 0x80:
        return data if (first, limit) == (0, len(data)) else data[first:limit]
    begin = _BEGIN.search(data, first, limit)
    if begin is None:
        raise MalformedMessage("no OpenPGP armor found")
    kind = begin.group(1)
    if kind.startswith(b"SIGNED MESSAGE"):
        raise MalformedMessage("cleartext-signed text is not an armored OpenPGP object")
    end_line = b"-----END PGP " + kind + b"-----"
    end = data.find(end_line, begin.end(), limit)
    if end < 0:
        raise MalformedMessage("OpenPGP armor has no END line")
    # Only the first lines (armor headers) and the last line (CRC-24) are looked at one by
    # one; the body is located by offsets and decoded in ~1 MiB windows, so a 50 MB message
    # costs no Python loop per line and no full-size text copy.
    # As before: skip leading blank lines, then armor headers; the body starts at the first
    # other line (at most _HEAD_LINES are examined).
    pos, seen_header, body_start = begin.end(), False, -1
    for _ in range(_HEAD_LINES):
        nl = data.find(b"\n", pos, end)
        line = data[pos : nl if nl >= 0 else end].strip()
        if not line and not seen_header:
            pass
        elif _HEADER.match(line):
            seen_header = True
        else:
            body_start = pos
            break
        if nl < 0:
            body_start = end
            break
        pos = nl + 1
    if body_start < 0:
        body_start = pos
    stop = end
    while stop > body_start and data[stop - 1 : stop] in (b" ", b"\t", b"\r", b"\n"):
        stop -= 1
    checksum: bytes | None = None
    tail = b""
    cut = data.rfind(b"\n", body_start, stop)
    last = data[max(cut + 1, body_start) : stop].strip()
    if last.startswith(b"=") and len(last) == 5:
        checksum, stop = last[1:], max(cut, body_start)
    elif len(last) > 5 and last[-5:-4] == b"=" and last[-6:-5] != b"=" and len(last[:-5]) % 4 == 0:
        # some writers append the checksum to the last base64 line
        checksum, tail, stop = last[-4:], last[:-5], max(cut + 1, body_start)
    binary = _decode_windows(data, body_start, stop, tail)
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


_WINDOW = 1 << 20


_BAD_BASE64 = "OpenPGP armor is not valid base64"


def _decode_windows(data: bytes, start: int, stop: int, tail: bytes) -> bytes:
    """``base64.b64decode(text, validate=True)`` of ``data[start:stop] + tail`` with blanks
    and line ends removed, computed in ~1 MiB windows (no full-size text copy).

    Windows without ``=`` are decoded strictly in whole 4-character groups, always holding
    the last group back; from the first ``=`` on, the rest (normally a few characters) is
    decoded in one strict call, so padding is judged exactly as the one-shot call would.
    """
    out: list[bytes] = []
    carry = b""
    rest: list[bytes] | None = None
    windows = [(i, min(i + _WINDOW, stop)) for i in range(start, stop, _WINDOW)]
    texts = (data[a:b].translate(None, b" \t\r\n") for a, b in windows)
    try:
        for text in itertools.chain(texts, [tail.translate(None, b" \t\r\n")]):
            if rest is not None:
                rest.append(text)
                continue
            chunk = carry + text if carry else text
            if b"=" in text:
                rest = [chunk]
                continue
            n = len(chunk) - len(chunk) % 4 - 4
            if n > 0:
                out.append(binascii.a2b_base64(chunk[:n], strict_mode=True))
                carry = chunk[n:]
            else:
                carry = chunk
        final = b"".join(rest) if rest is not None else carry
        if final or not out:
            out.append(binascii.a2b_base64(final, strict_mode=True))
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(_BAD_BASE64) from exc
    return out[0] if len(out) == 1 else b"".join(out)


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


_ARMOR_STEP = 48 * 16384  # octets per Sequoia call: whole 64-character lines


def _gf2_mulmod(a: int, b: int) -> int:
    """``a * b mod P`` over GF(2), with P the CRC-24 polynomial (24-bit operands)."""
    out = 0
    while b:
        if b & 1:
            out ^= a
        b >>= 1
        a <<= 1
        if a & 0x1000000:
            a ^= _CRC24_POLY
    return out


def _x_pow_mod(bits: int) -> int:
    """``x^bits mod P`` by square-and-multiply."""
    result, base = 1, 2  # 1 and x
    while bits:
        if bits & 1:
            result = _gf2_mulmod(result, base)
        base = _gf2_mulmod(base, base)
        bits >>= 1
    return result


def armor_chunks(
    pieces: Iterable[bytes], kind: str = "MESSAGE", eol: bytes = b"\n"
) -> Iterator[bytes]:
    """The armor of the concatenation of ``pieces``, in pieces, lines ended by ``eol``.

    The output, joined, equals :func:`enarmor` of the joined input (with ``eol`` for LF).
    Memory stays at about one step whatever the input size.
    """
    if kind not in _SEQUOIA_KINDS:
        raise UsageError(f"armor_chunks writes {sorted(_SEQUOIA_KINDS)}, not {kind!r}")
    sq_kind = _SEQUOIA_KINDS[kind]
    state = 0  # crc(0, data so far); the INIT term is added once at the end
    total = 0
    shifts: dict[int, int] = {}
    yield f"-----BEGIN PGP {kind}-----{eol.decode()}{eol.decode()}".encode("ascii")
    for step in regroup(pieces, _ARMOR_STEP):
        text = pysequoia.armor(step, sq_kind).encode("ascii")
        body_at = text.index(b"\n\n") + 2
        crc_at = text.rindex(b"\n=", 0, len(text) - 2)
        chunk_crc = int.from_bytes(base64.b64decode(text[crc_at + 2 : crc_at + 6]), "big")
        n = len(step)
        if n not in shifts:
            shifts[n] = _x_pow_mod(8 * n)
        # Sequoia's CRC starts from INIT: remove that term to get crc(0, step)
        state = _gf2_mulmod(state, shifts[n]) ^ chunk_crc ^ _gf2_mulmod(_CRC24_INIT, shifts[n])
        total += n
        body = text[body_at : crc_at + 1]
        yield body if eol == b"\n" else body.replace(b"\n", eol)
    if not total:
        raise UsageError("nothing to armor")
    crc = state ^ _gf2_mulmod(_CRC24_INIT, _x_pow_mod(8 * total))
    footer = b"=" + base64.b64encode(crc.to_bytes(3, "big")) + eol
    yield footer + f"-----END PGP {kind}-----".encode("ascii") + eol
