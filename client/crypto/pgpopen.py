"""Reading a PGP/MIME encrypted payload as a stream -- sans I/O, for client/crypto/streamopen.

Theory of operation
-------------------
:func:`client.crypto.pgpstream.decrypt` takes the whole armored message and returns the
whole decrypted packet stream. Here the armored payload arrives in pieces:

    armored pieces --(dearmor_pieces)--> binary pieces --(Packets)--> PKESKs, SEIPD body
    SEIPD v1 body --(seipd_v1_pieces)--> plaintext pieces (MDC checked at the very end)
    SEIPD v2 / OCB body --(aead_pieces)--> plaintext pieces, chunk by chunk (the final
                                           tag, over the whole length, at the end)
    plaintext --(inner_pieces)--> [one Compressed layer] -> OPS*, Literal data, Signature*

Only the common shapes stream: armor with optional headers, pure base64 lines, an
optional ``=XXXX`` checksum line, the END line; packets PKESK/SKESK then one SEIPD (v1
or v2) or LibrePGP OCB packet with AES chunks of at most 4 MiB; inside, at most one
ZIP/ZLIB/uncompressed layer and exactly one literal packet. Anything else raises
:class:`~client.crypto.cms_stream.NotStreamable`; the caller opens the message in memory,
whose parser has the last word on errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag

from client.crypto.cms_stream import DecryptStreamFailed, NotStreamable
from client.crypto.pgpalgos import cfb_decryptor, cipher_info
from client.crypto.pgpdata import chunked_aead
from client.crypto.pgppackets import Tag, serialize_packet
from client.crypto.pgpsession import SessionKey

__all__ = [
    "Bytes",
    "InnerMessage",
    "aead_pieces",
    "dearmor_pieces",
    "inner_pieces",
    "seipd_v1_pieces",
]

_SMALL = 1 << 20  # longest packet body kept whole (session keys, signatures, OPS)
_BEGIN = b"-----BEGIN PGP MESSAGE-----"
_END = b"-----END PGP MESSAGE-----"
_HEADER = re.compile(rb"^[A-Za-z0-9-]+: ")
_B64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_MAX_OUTPUT = 256 * 1024 * 1024


class Bytes:
    """A stream of octets from pieces, read front to back (``_buf[_pos:]`` is unread)."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._it = iter(pieces)
        self._buf = b""
        self._pos = 0

    def _more(self) -> bool:
        for piece in self._it:
            if piece:
                self._buf = self._buf[self._pos :] + piece if self._pos < len(self._buf) else piece
                self._pos = 0
                return True
        return False

    def _have(self) -> int:
        return len(self._buf) - self._pos

    def eof(self) -> bool:
        return not self._have() and not self._more()

    def read(self, n: int) -> bytes:
        while self._have() < n:
            if not self._more():
                raise NotStreamable("the data ends early")
        out = self._buf[self._pos : self._pos + n]
        self._pos += n
        return out

    def pieces(self, n: int) -> Iterator[bytes]:
        """The next ``n`` octets, in pieces (slices of what was read, no re-copying)."""
        while n > 0:
            if not self._have() and not self._more():
                raise NotStreamable("the data ends early")
            take = min(n, self._have())
            yield self._buf[self._pos : self._pos + take]
            self._pos += take
            n -= take

    def rest(self) -> Iterator[bytes]:
        if self._have():
            yield self._buf[self._pos :]
        self._buf, self._pos = b"", 0
        yield from self._it


# -- armor ------------------------------------------------------------------------------------


def dearmor_pieces(text: Iterable[bytes]) -> Iterator[bytes]:
    """The binary content of an armored PGP MESSAGE given in pieces (the common layout
    only, which :func:`client.crypto.pgparmor.dearmor` decodes to the same octets).

    The head (BEGIN, armor headers) is read line by line; the body in whole pieces while
    they hold only base64 and line ends; the last lines (padding, checksum, END) line by
    line again.
    """
    it = iter(text)
    buf = b""
    for piece in it:  # the head: BEGIN and headers, within the first 64 KiB
        buf += piece
        if len(buf) >= 1 << 16:
            break
    lines = buf.splitlines(keepends=True)
    k = 0
    while k < len(lines) and not lines[k].strip():
        k += 1
    if k >= len(lines) or lines[k].strip() != _BEGIN:
        raise NotStreamable("not an armored PGP MESSAGE")
    k, first, seen_header = k + 1, k + 1, False
    while k < len(lines):  # as pgparmor.dearmor: blank lines, then headers, then the body
        line = lines[k].strip()
        if _HEADER.match(line):
            seen_header = True
        elif line or seen_header:
            break
        k += 1
        if k - first > 30:
            raise NotStreamable("too many armor header lines")
    if k >= len(lines):
        raise NotStreamable("the armor head is too long")
    decoder = _Base64()
    yield from decoder.feed(b"".join(lines[k:]))
    for piece in it:
        yield from decoder.feed(piece)
    yield from decoder.end()


_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


class _Base64:
    """The armor body: base64 lines, then ``=XXXX`` and END (see dearmor_pieces)."""

    def __init__(self) -> None:
        self._carry = b""
        self._tail: bytes | None = None  # the last lines, once '=' or '-' was seen

    def feed(self, piece: bytes) -> Iterator[bytes]:
        if self._tail is not None:
            self._tail += piece
            if len(self._tail) > 1 << 16:
                raise NotStreamable("the armor continues after its end")
            return
        cut = min((i for i in (piece.find(b"="), piece.find(b"-")) if i >= 0), default=-1)
        if cut >= 0:  # the end is near: keep the line it is on for the line-by-line part
            line_start = piece.rfind(b"\n", 0, cut) + 1
            self._tail = piece[line_start:]
            piece = piece[:line_start]
        yield from self._decode(piece)

    def _decode(self, text: bytes) -> Iterator[bytes]:
        data = self._carry + text.translate(None, b" \t\r\n")
        whole = len(data) - len(data) % 4
        self._carry = data[whole:]
        if self._carry.translate(None, _ALPHABET):
            raise NotStreamable("armor body is not plain base64")
        if whole:
            try:  # strict: any octet outside the alphabet (no '=' gets here) is refused
                yield binascii.a2b_base64(data[:whole], strict_mode=True)
            except binascii.Error as exc:
                raise NotStreamable("armor body is not plain base64") from exc

    def end(self) -> Iterator[bytes]:
        if self._tail is None:
            raise NotStreamable("armor without an END line")
        lines = [line.strip() for line in self._tail.splitlines()]
        last_data = b""
        k = 0
        while (
            k < len(lines)
            and lines[k] != _END
            and not (lines[k].startswith(b"=") and len(lines[k]) == 5)
        ):
            if last_data or _B64.fullmatch(lines[k]) is None:
                raise NotStreamable("armor body is not plain base64")
            if lines[k].endswith(b"="):
                last_data = lines[k]
            else:
                yield from self._decode(lines[k])
            k += 1
        if k < len(lines) and lines[k] != _END:  # the checksum line
            k += 1
        if k >= len(lines) or lines[k] != _END:
            raise NotStreamable("no END line")
        data = self._carry + last_data
        if len(data) % 4:
            raise NotStreamable("armor base64 is cut short")
        try:
            yield base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise NotStreamable("bad base64") from exc


# -- packets ----------------------------------------------------------------------------------


@dataclass
class _Header:
    tag: int
    length: int | None  # None: old-format indeterminate (to the end)
    partial: bool


def _header(s: Bytes) -> _Header:
    ctb = s.read(1)[0]
    if not ctb & 0x80:
        raise NotStreamable("bad packet header")
    if ctb & 0x40:
        length, partial = _new_length(s)
        return _Header(ctb & 0x3F, length, partial)
    tag, ltype = (ctb >> 2) & 0x0F, ctb & 0x03
    if ltype == 3:
        return _Header(tag, None, False)
    return _Header(tag, int.from_bytes(s.read((1, 2, 4)[ltype]), "big"), False)


def _new_length(s: Bytes) -> tuple[int, bool]:
    first = s.read(1)[0]
    if first < 192:
        return first, False
    if first < 224:
        return ((first - 192) << 8) + s.read(1)[0] + 192, False
    if first == 255:
        return int.from_bytes(s.read(4), "big"), False
    return 1 << (first & 0x1F), True


def _body(s: Bytes, h: _Header) -> Iterator[bytes]:
    """A packet's body in pieces (partial lengths followed)."""
    if h.length is None:
        yield from s.rest()
        return
    length, partial = h.length, h.partial
    while True:
        yield from s.pieces(length)
        if not partial:
            return
        length, partial = _new_length(s)


def _small(s: Bytes, h: _Header) -> bytes:
    if h.partial or h.length is None or h.length > _SMALL:
        raise NotStreamable(f"packet {h.tag} is not small")
    return s.read(h.length)


@dataclass
class EncryptedMessage:
    """The session packets of an OpenPGP message; :attr:`data` streams the encrypted data
    packet's body after its version octet: SEIPD v1 (``aead`` None), SEIPD v2 (``aead``
    "v2") or LibrePGP's OCB packet (``aead`` "ocb")."""

    session: list[tuple[int, bytes]]
    data: Iterator[bytes]
    aead: str | None = None


def split_message(binary: Iterable[bytes]) -> EncryptedMessage:
    s = Bytes(binary)
    session: list[tuple[int, bytes]] = []
    while True:
        if s.eof():
            raise NotStreamable("no encrypted data packet")
        h = _header(s)
        if h.tag in (Tag.PKESK, Tag.SKESK):
            session.append((h.tag, _small(s, h)))
            if len(session) > 1000:
                raise NotStreamable("too many session packets")
            continue
        if h.tag not in (Tag.SEIPD, Tag.AEAD):
            raise NotStreamable(f"packet {h.tag} before the data")
        body = Bytes(_body(s, h))
        kind = {(Tag.SEIPD, b"\x01"): None, (Tag.SEIPD, b"\x02"): "v2", (Tag.AEAD, b"\x01"): "ocb"}
        version = (h.tag, body.read(1))
        if version not in kind:
            raise NotStreamable(f"packet {h.tag} version {version[1].hex()}")
        return EncryptedMessage(session, _then_nothing(body.rest(), s), kind[version])


def _then_nothing(body: Iterator[bytes], s: Bytes) -> Iterator[bytes]:
    yield from body
    if not s.eof():
        raise NotStreamable("data after the encrypted data packet")


# -- SEIPD v1 ---------------------------------------------------------------------------------


def quick_check(first: bytes, sk: SessionKey) -> bool:
    """RFC 4880 5.13: the prefix's last two octets repeat (a wrong key fails ~65535/65536)."""
    if sk.cipher is None:
        return False
    try:
        info = cipher_info(sk.cipher)
    except Exception:
        return False
    bs = info.block_size
    if len(sk.key) != info.key_size or len(first) < bs + 2:
        return False
    prefix = cfb_decryptor(info, sk.key).update(first[: bs + 2])
    return prefix[bs - 2 : bs] == prefix[bs : bs + 2]


def seipd_v1_pieces(ciphertext: Iterable[bytes], sk: SessionKey) -> Iterator[bytes]:
    """The plaintext of a SEIPD v1 body; DecryptStreamFailed at the end if the MDC fails."""
    assert sk.cipher is not None
    info = cipher_info(sk.cipher)
    bs = info.block_size
    dec = cfb_decryptor(info, sk.key)
    sha = hashlib.sha1()  # noqa: S324 - the MDC is SHA-1 by definition
    held = b""
    prefix = bs + 2
    for piece in ciphertext:
        data = held + dec.update(piece)
        held, out = data[-22:], data[:-22]
        if out:
            sha.update(out)
            if prefix:
                skip = min(prefix, len(out))
                out, prefix = out[skip:], prefix - skip
            if out:
                yield out
    held += dec.finalize()
    if prefix or len(held) != 22 or held[:2] != b"\xd3\x14":
        raise DecryptStreamFailed("MDC")
    sha.update(held[:2])
    if not hmac.compare_digest(sha.digest(), held[2:]):
        raise DecryptStreamFailed("MDC")


# -- SEIPD v2 and LibrePGP's OCB packet ---------------------------------------------------------

#: Largest chunk streamed (RFC 9580 allows up to 4 MiB; LibrePGP far more, in memory).
_MAX_CHUNK = 1 << 22


def aead_pieces(body: Iterable[bytes], sk: SessionKey, *, v2: bool) -> Iterator[bytes]:
    """The plaintext of a chunked AEAD packet body (after its version octet), each chunk
    as its tag checks out (:class:`~client.crypto.pgpdata.ChunkedAead`); the final tag,
    over the whole length, at the end. A failed tag raises DecryptStreamFailed (nothing is
    trusted before the end: the caller's output is atomic); setup errors are the
    in-memory path's (a SealmailError: it decides)."""
    s = Bytes(body)
    a = chunked_aead(s.read, sk, v2=v2)
    if a.chunk > _MAX_CHUNK:
        raise NotStreamable("AEAD chunks too large to stream")
    step = a.chunk + 16
    held = bytearray()
    index = total = 0
    try:
        for piece in s.rest():
            held += piece
            start = 0
            while len(held) - start >= step + 16:  # the last 16 octets may be the final tag
                plain = a.open(index, bytes(held[start : start + step]))
                start += step
                index, total = index + 1, total + len(plain)
                yield plain
            del held[:start]
        if len(held) < 16:
            raise DecryptStreamFailed("AEAD data cut short")
        if len(held) > 16:
            plain = a.open(index, bytes(held[:-16]))
            index, total = index + 1, total + len(plain)
            yield plain
        a.check_final(index, total, bytes(held[-16:]))
    except (InvalidTag, ValueError) as exc:
        raise DecryptStreamFailed("AEAD tag") from exc


# -- inside -----------------------------------------------------------------------------------


@dataclass
class InnerMessage:
    """What was around the literal data (filled in as the stream is read)."""

    signed: bool = False
    signatures: list[bytes] = field(default_factory=list)  # serialised Signature packets
    literal_seen: bool = False


def inner_pieces(plaintext: Iterable[bytes], info: InnerMessage) -> Iterator[bytes]:
    """The literal data of a decrypted packet stream; ``info`` gets the rest."""
    outer = Bytes(plaintext)
    s = outer
    h = _header(outer)
    if h.tag == Tag.COMPRESSED:
        body = Bytes(_body(outer, h))
        algo = body.read(1)[0]
        if algo not in (0, 1, 2):
            raise NotStreamable("compression other than ZIP/ZLIB")
        s = Bytes(_inflate(body.rest(), algo) if algo else body.rest())
        if s.eof():
            raise NotStreamable("empty compressed data")
        h = _header(s)
    while True:
        if h.tag in (Tag.MARKER, Tag.PADDING):
            _small(s, h)
        elif h.tag == Tag.ONE_PASS_SIGNATURE:
            _small(s, h)
            info.signed = True
        elif h.tag == Tag.SIGNATURE:
            body_octets = _small(s, h)
            info.signed = True
            info.signatures.append(serialize_packet(Tag.SIGNATURE, body_octets))
        elif h.tag == Tag.LITERAL:
            if info.literal_seen:
                raise NotStreamable("two literal packets")
            info.literal_seen = True
            lit = Bytes(_body(s, h))
            lit.read(1)  # format
            lit.read(lit.read(1)[0] + 4)  # file name, date
            yield from lit.rest()
        else:
            raise NotStreamable(f"packet {h.tag} inside the message")
        if s.eof():
            break
        h = _header(s)
    if s is not outer and not outer.eof():
        raise NotStreamable("packets after the compressed data")
    if not info.literal_seen:
        raise NotStreamable("no literal packet")


def _inflate(pieces: Iterable[bytes], algo: int) -> Iterator[bytes]:
    z = zlib.decompressobj(-15 if algo == 1 else 15)
    produced = 0
    try:
        for piece in pieces:
            if z.eof:
                continue  # what follows the stream is ignored, as in memory
            pending = piece
            while pending:
                out = z.decompress(pending, 1 << 20)
                pending = z.unconsumed_tail
                produced += len(out)
                if produced > _MAX_OUTPUT:
                    raise NotStreamable("decompressed data exceeds the size limit")
                if out:
                    yield out
                if z.eof:
                    break
    except zlib.error as exc:
        raise NotStreamable("damaged compressed data") from exc
