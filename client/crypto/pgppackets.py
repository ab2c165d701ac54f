"""OpenPGP packet framing (RFC 9580 section 4): parse and serialise, with limits.

Theory of operation: :func:`parse_packets` walks a byte string once, iteratively (no
recursion), and returns a flat list of :class:`Packet` (tag and reassembled body).
It understands old-format headers (including the indeterminate length, which runs
to the end of the input) and new-format headers (including partial body lengths,
allowed only on the data packets). Every read goes through :class:`Reader`, which
checks bounds and raises :class:`~client.errors.MalformedMessage`; hostile input
therefore never escapes as ``IndexError`` or ``struct.error``. The number of packets
and of partial-length chunks is capped. Nesting (compressed or encrypted data inside
a packet body) is not handled here: the caller parses a body again, counting depth.

:func:`serialize_packet` always writes new-format headers with a definite length;
re-serialising parsed packets therefore normalises a stream (signatures do not
cover packet headers, so this is safe for verification).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum

from client.errors import MalformedMessage, MessageTooLarge

__all__ = [
    "MAX_PACKETS",
    "Packet",
    "Reader",
    "Tag",
    "encode_mpi",
    "encode_new_length",
    "packet_header",
    "packet_tags",
    "parse_packets",
    "partial_packet",
    "serialize_packet",
]

MAX_PACKETS = 100_000
_MAX_PARTIAL_CHUNKS = 1_000_000


class Tag(IntEnum):
    """Packet tags we handle (RFC 9580 section 5)."""

    PKESK = 1
    SIGNATURE = 2
    SKESK = 3
    ONE_PASS_SIGNATURE = 4
    SECRET_KEY = 5
    PUBLIC_KEY = 6
    SECRET_SUBKEY = 7
    COMPRESSED = 8
    SED = 9
    MARKER = 10
    LITERAL = 11
    TRUST = 12
    USER_ID = 13
    PUBLIC_SUBKEY = 14
    USER_ATTRIBUTE = 17
    SEIPD = 18
    MDC = 19
    AEAD = 20  # LibrePGP / GnuPG 2.3+ OCB encrypted data
    PADDING = 21


_PARTIAL_OK = frozenset({Tag.COMPRESSED, Tag.SED, Tag.LITERAL, Tag.SEIPD, Tag.AEAD})


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet: its tag and its body with any partial-length framing removed."""

    tag: int
    body: bytes

    def serialize(self) -> bytes:
        return serialize_packet(self.tag, self.body)


class Reader:
    """Bounds-checked reading of a packet body; every shortfall is MalformedMessage."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str = "packet") -> None:
        self._data = data
        self._pos = 0
        self._what = what

    @property
    def pos(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise MalformedMessage(f"truncated {self._what}")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def skip(self, n: int) -> int:
        """Advance over ``n`` octets without copying them; returns where they start."""
        if n < 0 or self._pos + n > len(self._data):
            raise MalformedMessage(f"truncated {self._what}")
        self._pos += n
        return self._pos - n

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def mpi(self) -> bytes:
        """A multiprecision integer (RFC 9580 3.2) as big-endian bytes, no length prefix."""
        bits = self.u16()
        return self.take((bits + 7) // 8)

    def window(self, start: int, end: int) -> bytes:
        """The octets between two earlier positions (e.g. a parsed sub-structure)."""
        if not 0 <= start <= end <= self._pos:
            raise ValueError("window outside the consumed data")
        return self._data[start:end]

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def rest_view(self) -> memoryview:
        """What remains, as a view (no copy of a large body)."""
        view = memoryview(self._data)[self._pos :]
        self._pos = len(self._data)
        return view

    def end(self) -> None:
        """Assert that the body is fully consumed."""
        if self.remaining:
            raise MalformedMessage(f"trailing data in {self._what}")


def signature_subpackets(area: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of each subpacket in a signature subpacket area (RFC 4880 5.2.3.1).

    The critical bit is masked off the type. An empty subpacket (no type octet) is
    malformed.
    """
    r, out = Reader(area, "signature subpackets"), []
    while r.remaining:
        first = r.u8()
        if first < 192:
            length = first
        elif first < 255:
            length = ((first - 192) << 8) + r.u8() + 192
        else:
            length = r.u32()
        if length == 0:
            raise MalformedMessage("empty signature subpacket")
        body = r.take(length)
        out.append((body[0] & 0x7F, body[1:]))
    return out


def encode_mpi(value: bytes | int) -> bytes:
    """Encode a non-negative integer (or its big-endian bytes) as an MPI."""
    if isinstance(value, int):
        value = value.to_bytes((value.bit_length() + 7) // 8, "big")
    value = value.lstrip(b"\x00")
    bits = (len(value) - 1) * 8 + value[0].bit_length() if value else 0
    return bits.to_bytes(2, "big") + value


def encode_new_length(length: int) -> bytes:
    """A new-format definite body length."""
    if length < 192:
        return bytes([length])
    if length < 8384:
        length -= 192
        return bytes([(length >> 8) + 192, length & 0xFF])
    if length > 0xFFFFFFFF:
        raise MessageTooLarge("packet body exceeds 4 GiB")
    return b"\xff" + length.to_bytes(4, "big")


def serialize_packet(tag: int, body: bytes) -> bytes:
    """A packet with a new-format header and a definite length."""
    if not 0 < tag < 64:
        raise ValueError(f"invalid packet tag {tag}")
    return bytes([0xC0 | tag]) + encode_new_length(len(body)) + body


def _new_length(r: Reader) -> tuple[int, bool]:
    """Read a new-format length; returns (length, is_partial)."""
    first = r.u8()
    if first < 192:
        return first, False
    if first < 224:
        return ((first - 192) << 8) + r.u8() + 192, False
    if first == 255:
        return r.u32(), False
    return 1 << (first & 0x1F), True


def parse_packets(data: bytes, *, max_packets: int = MAX_PACKETS) -> list[Packet]:
    """Split ``data`` into packets. Raises MalformedMessage on any framing error."""
    r = Reader(data, "OpenPGP packet stream")
    packets: list[Packet] = []
    while r.remaining:
        if len(packets) >= max_packets:
            raise MessageTooLarge("too many OpenPGP packets")
        ctb = r.u8()
        if not ctb & 0x80:
            raise MalformedMessage("not an OpenPGP packet (bad header octet)")
        if ctb & 0x40:  # new format
            tag = ctb & 0x3F
            length, partial = _new_length(r)
            if not partial:
                body = r.take(length)
            else:
                if tag not in _PARTIAL_OK:
                    raise MalformedMessage("partial body length on a non-data packet")
                # views of the chunks, joined once (not a copy per chunk and then the join)
                view = memoryview(data)
                start = r.skip(length)
                chunks = [view[start : start + length]]
                while partial:
                    if len(chunks) >= _MAX_PARTIAL_CHUNKS:
                        raise MessageTooLarge("too many partial body chunks")
                    length, partial = _new_length(r)
                    start = r.skip(length)
                    chunks.append(view[start : start + length])
                body = b"".join(chunks)
                del chunks
                view.release()
        else:
            tag = (ctb >> 2) & 0x0F
            ltype = ctb & 0x03
            if ltype == 0:
                body = r.take(r.u8())
            elif ltype == 1:
                body = r.take(r.u16())
            elif ltype == 2:
                body = r.take(r.u32())
            else:  # indeterminate: to the end of the input
                if tag not in _PARTIAL_OK:
                    raise MalformedMessage("indeterminate length on a non-data packet")
                body = r.rest()
        if tag == 0:
            raise MalformedMessage("packet with reserved tag 0")
        packets.append(Packet(tag, body))
    return packets


def packet_header(tag: int, length: int) -> bytes:
    """The new-format header of a packet whose body (``length`` octets) follows separately."""
    if not 0 < tag < 64:
        raise ValueError(f"invalid packet tag {tag}")
    return bytes([0xC0 | tag]) + encode_new_length(length)


#: Partial body pieces are 2**PARTIAL_EXP octets (1 MiB): a power of two, at least 512.
PARTIAL_EXP = 20


def partial_packet(tag: int, pieces: Iterable[bytes]) -> Iterator[bytes]:
    """A packet whose body is the concatenation of ``pieces``, of a length not known in
    advance: partial body lengths of 1 MiB, then a definite length for the rest (RFC 9580
    4.2.1.4). Memory stays at about one piece."""
    if tag not in _PARTIAL_OK:
        raise ValueError(f"packet tag {tag} may not have partial lengths")
    size = 1 << PARTIAL_EXP
    buf = bytearray()
    first = True
    for piece in pieces:
        buf += piece
        while len(buf) > size:  # strictly more: the final part must stay definite
            head = bytes([0xC0 | tag]) if first else b""
            yield head + bytes([224 + PARTIAL_EXP]) + bytes(buf[:size])
            del buf[:size]
            first = False
    head = bytes([0xC0 | tag]) if first else b""
    yield head + encode_new_length(len(buf)) + bytes(buf)


def packet_tags(data: bytes, *, max_packets: int = MAX_PACKETS) -> list[int]:
    """The tags of the packets in ``data``, framing checked as :func:`parse_packets` does,
    but without copying any body (for a quick look at a large stream)."""
    view = memoryview(data)
    pos, size = 0, len(view)
    tags: list[int] = []

    def skip(n: int) -> None:
        nonlocal pos
        if n < 0 or pos + n > size:
            raise MalformedMessage("truncated OpenPGP packet stream")
        pos += n

    def octets(n: int) -> int:
        start = pos
        skip(n)
        return int.from_bytes(view[start:pos], "big")

    while pos < size:
        if len(tags) >= max_packets:
            raise MessageTooLarge("too many OpenPGP packets")
        ctb = octets(1)
        if not ctb & 0x80:
            raise MalformedMessage("not an OpenPGP packet (bad header octet)")
        if ctb & 0x40:
            tag = ctb & 0x3F
            chunks = 0
            while True:
                first = octets(1)
                if first < 192:
                    skip(first)
                elif first < 224:
                    skip(((first - 192) << 8) + octets(1) + 192)
                elif first == 255:
                    skip(octets(4))
                else:
                    if tag not in _PARTIAL_OK:
                        raise MalformedMessage("partial body length on a non-data packet")
                    chunks += 1
                    if chunks >= _MAX_PARTIAL_CHUNKS:
                        raise MessageTooLarge("too many partial body chunks")
                    skip(1 << (first & 0x1F))
                    continue
                break
        else:
            tag = (ctb >> 2) & 0x0F
            ltype = ctb & 0x03
            if ltype == 3:
                if tag not in _PARTIAL_OK:
                    raise MalformedMessage("indeterminate length on a non-data packet")
                pos = size
            else:
                skip(octets((1, 2, 4)[ltype]))
        if tag == 0:
            raise MalformedMessage("packet with reserved tag 0")
        tags.append(tag)
    return tags
