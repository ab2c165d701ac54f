"""Reading S/MIME DER as a stream: an envelope (EnvelopedData / AuthEnvelopedData) or
opaque signed data (SignedData with its content) -- sans I/O.

Theory of operation
-------------------
:func:`client.crypto.cms_envelope.decrypt` and :func:`client.crypto.cms_verify.verify`
take the whole DER. For a 50 MB message that is the DER, its content and the message text
at once. Here the DER arrives in pieces (decoded base64 of a message body) and only its
small parts are kept:

    EnvelopeStream(der pieces) / SignedDataStream(der pieces)
        reads the DER up to the big content: the ciphertext (a primitive [0] or one of
        OCTET STRING segments) or the encapsulated content (an OCTET STRING, primitive or
        segmented, in its [0]); any other shape -> NotStreamable
    .content()     -> the content, piece by piece; then the DER after it is kept
    .stub()        -> the same DER without the content (an empty ciphertext; a detached
                      SignedData), for cms_envelope's or cms_verify's parser

``decrypt_pieces`` then decrypts a ciphertext stream with a content-encryption key.
Nothing decrypted is trusted before the stream ends: the CBC padding or the GCM tag is
checked last, and a failure raises :class:`DecryptStreamFailed`. The caller keeps what
it learnt from a pass until then (the streaming opener makes the output atomic). A
SignedData's content is hashed as it passes and its signatures are checked over the stub
with those digests (:func:`client.crypto.cms_verify.verify` ``detached_digests``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from client.crypto.cms_envelope import _der_header, _Parsed

__all__ = [
    "DecryptStreamFailed",
    "EnvelopeStream",
    "NotStreamable",
    "SignedDataStream",
    "decrypt_pieces",
]

#: DER before the content (RecipientInfos: certificates' issuer names, keys) and after it
#: (attributes, the tag; certificates and SignerInfos) that is kept; real ones are a few
#: kilobytes.
HEAD_LIMIT = 1 << 20
TAIL_LIMIT = 1 << 20


class NotStreamable(Exception):
    """The DER has a shape this reader does not stream (the caller goes in memory)."""


class DecryptStreamFailed(Exception):
    """The padding or the authentication tag did not check out at the end of the stream."""


_MAX_DEPTH = 32


class _Tlv:
    __slots__ = ("content", "end", "start", "tag")

    def __init__(self, tag: int, start: int, content: int, end: int | None) -> None:
        # end is None for a BER indefinite length (the contents end with 00 00)
        self.tag, self.start, self.content, self.end = tag, start, content, end


class _DerStream:
    """One pass over DER (or BER) with one big content (see the module doc). ``_buf``
    holds the stream from offset ``_base`` on; offsets are stream offsets. Subclasses
    find the content: :meth:`_locate` returns the constructed levels around it (outside
    in) and its element, which the stub replaces with ``_REPLACEMENT``."""

    _REPLACEMENT = b""

    def __init__(self, der: Iterable[bytes]) -> None:
        self._it = iter(der)
        self._buf = bytearray()
        self._base = 0
        self._levels, self._ct = self._locate()
        self._head = bytes(self._buf[: self._ct.start])
        self._tail = b""
        self._ct_end = -1

    def _locate(self) -> tuple[tuple[_Tlv, ...], _Tlv]:
        raise NotImplementedError

    def _content_info(self) -> tuple[_Tlv, _Tlv, _Tlv]:
        """ContentInfo, its [0] and the SEQUENCE inside (EnvelopedData, SignedData...)."""
        top = self._tlv(0)
        oid = self._tlv(top.content)
        wrap = self._tlv(self._end(oid))
        inner = self._tlv(wrap.content)
        if top.tag != 0x30 or oid.tag != 0x06 or wrap.tag != 0xA0 or inner.tag != 0x30:
            raise NotStreamable("not a ContentInfo")
        return top, wrap, inner

    def _fill(self, upto: int) -> None:
        """Read until the stream up to offset ``upto`` is in ``_buf``."""
        while self._base + len(self._buf) < upto:
            if len(self._buf) > HEAD_LIMIT:
                raise NotStreamable("the envelope head is too large")
            piece = next(self._it, None)
            if piece is None:
                raise NotStreamable("the envelope ends early")
            self._buf += piece

    def _at(self, a: int, b: int) -> bytes:
        self._fill(b)
        if a < self._base:
            raise NotStreamable("behind the buffer")
        return bytes(self._buf[a - self._base : b - self._base])

    def _tlv(self, pos: int) -> _Tlv:
        """The TLV whose header starts at ``pos`` (its header only is read)."""
        tag, first = self._at(pos, pos + 2)
        if tag & 0x1F == 0x1F:
            raise NotStreamable("multi-octet tag")
        if first < 0x80:
            return _Tlv(tag, pos, pos + 2, pos + 2 + first)
        if first == 0x80:
            if not tag & 0x20:
                raise NotStreamable("indefinite primitive")
            return _Tlv(tag, pos, pos + 2, None)
        n = first & 0x7F
        if n > 4:
            raise NotStreamable("huge length")
        length = int.from_bytes(self._at(pos + 2, pos + 2 + n), "big")
        return _Tlv(tag, pos, pos + 2 + n, pos + 2 + n + length)

    def _end(self, tlv: _Tlv, depth: int = 0) -> int:
        """Where ``tlv`` ends (after its 00 00 when indefinite), reading what it needs."""
        if tlv.end is not None:
            self._fill(tlv.end)
            return tlv.end
        if depth > _MAX_DEPTH:
            raise NotStreamable("nested too deeply")
        pos = tlv.content
        while True:
            child = self._tlv(pos)
            if child.tag == 0 and child.end == child.content:  # end-of-contents
                return child.content
            pos = self._end(child, depth + 1)

    # -- the content
    def content(self) -> Iterator[bytes]:
        """The content's pieces; afterwards the DER after it is read and kept."""
        pos = yield from self._content_octets(self._ct)
        self._ct_end = pos
        tail = bytearray(self._buf[pos - self._base :])
        for piece in self._it:
            tail += piece
            if len(tail) > TAIL_LIMIT:
                raise NotStreamable("the DER after the content is too large")
        self._tail = bytes(tail)

    def _content_octets(self, node: _Tlv) -> Generator[bytes, None, int]:
        raise NotImplementedError

    def _segmented(self, node: _Tlv) -> Generator[bytes, None, int]:
        """The octets of a primitive element, or of a constructed one made of primitive
        OCTET STRING segments; returns where it ends."""
        if not node.tag & 0x20:
            assert node.end is not None  # _tlv refuses an indefinite primitive
            yield from self._octets(node.content, node.end)
            return node.end
        pos = node.content
        while node.end is None or pos < node.end:
            if node.end is None and self._at(pos, pos + 2) == b"\0\0":
                return pos + 2
            segment = self._tlv(pos)
            if segment.tag != 0x04 or segment.end is None:
                raise NotStreamable("a content segment is not a primitive OCTET STRING")
            yield from self._octets(segment.content, segment.end)
            pos = segment.end
        if pos != node.end:
            raise NotStreamable("content segments overrun their element")
        return pos

    def _octets(self, start: int, end: int) -> Iterator[bytes]:
        """The stream's octets ``[start:end]``; ``_buf`` then starts at ``end``."""
        have = bytes(self._buf[start - self._base : end - self._base])
        rest = self._buf[end - self._base :] if end - self._base < len(self._buf) else b""
        pos = start + len(have)
        if have:
            yield have
        while pos < end:
            piece = next(self._it, None)
            if piece is None:
                raise NotStreamable("the content ends early")
            take = min(len(piece), end - pos)
            rest = piece[take:]
            pos += take
            if take:
                yield piece[:take]
        self._buf, self._base = bytearray(rest), end

    def stub(self) -> bytes:
        """The DER with the content replaced (after :meth:`content`), its definite lengths
        adjusted; asn1crypto parses it as it would the whole."""
        if self._ct_end < 0:
            raise RuntimeError("stub() before the content was read")
        removed = self._ct_end - self._ct.start - len(self._REPLACEMENT)
        levels = self._levels
        top = levels[0]
        if top.end is not None and top.end != self._ct_end + len(self._tail):
            raise NotStreamable("data after the DER, or the DER is cut short")
        headers: list[bytes] = []
        shrunk = removed  # octets fewer inside the level being rewritten
        for level in reversed(levels):  # inside out: a shorter length may take fewer octets
            if level.end is None:
                headers.append(self._head[level.start : level.content])
                continue
            header = _der_header(level.tag, level.end - level.content - shrunk)
            shrunk += level.content - level.start - len(header)
            headers.append(header)
        out: list[bytes] = []
        for k, (level, header) in enumerate(zip(levels, reversed(headers), strict=True)):
            nxt = levels[k + 1].start if k + 1 < len(levels) else self._ct.start
            out += (header, self._head[level.content : nxt])
        return b"".join([*out, self._REPLACEMENT, self._tail])


class EnvelopeStream(_DerStream):
    """EnvelopedData or AuthEnvelopedData; the content is the ciphertext (a primitive [0],
    or a constructed one of OCTET STRING segments); the stub has an empty one."""

    _REPLACEMENT = b"\x80\x00"

    def _locate(self) -> tuple[tuple[_Tlv, ...], _Tlv]:
        top, wrap, env = self._content_info()
        pos, tags = env.content, []
        while True:  # version, [0] originatorInfo, recipientInfos, (auth)EncryptedContentInfo
            member = self._tlv(pos)
            tags.append(member.tag)
            if member.tag == 0x30 and 0x31 in tags[:-1]:
                break
            if len(tags) > 4:
                raise NotStreamable("EnvelopedData members")
            pos = self._end(member)
        eci = member
        ctype = self._tlv(eci.content)
        alg = self._tlv(self._end(ctype))
        ct = self._tlv(self._end(alg))
        if ctype.tag != 0x06 or alg.tag != 0x30 or ct.tag not in (0x80, 0xA0):
            raise NotStreamable("EncryptedContentInfo has no [0] content")
        return (top, wrap, env, eci), ct

    def _content_octets(self, node: _Tlv) -> Generator[bytes, None, int]:
        return (yield from self._segmented(node))


_ID_DATA = bytes.fromhex("06092a864886f70d010701")  # OID 1.2.840.113549.1.7.1


class SignedDataStream(_DerStream):
    """SignedData with its content (opaque signed S/MIME); the content is the OCTET STRING
    (primitive or segmented) in encapContentInfo's [0], of type id-data; the stub is the
    same SignedData detached (no [0])."""

    def _locate(self) -> tuple[tuple[_Tlv, ...], _Tlv]:
        top, wrap, sd = self._content_info()
        version = self._tlv(sd.content)
        algos = self._tlv(self._end(version))
        encap = self._tlv(self._end(algos))
        if version.tag != 0x02 or algos.tag != 0x31 or encap.tag != 0x30:
            raise NotStreamable("SignedData members")
        ctype = self._tlv(encap.content)
        econtent = self._tlv(self._end(ctype))
        if ctype.tag != 0x06 or econtent.tag != 0xA0:
            raise NotStreamable("encapContentInfo has no [0] content")
        if self._at(ctype.start, self._end(ctype)) != _ID_DATA:
            # what S/MIME signs; the in-memory parser reads other types' content otherwise
            raise NotStreamable("the signed content is not id-data")
        return (top, wrap, sd, encap), econtent

    def _content_octets(self, node: _Tlv) -> Generator[bytes, None, int]:
        octets = self._tlv(node.content)
        if octets.tag not in (0x04, 0x24):
            raise NotStreamable("the encapsulated content is not an OCTET STRING")
        pos = yield from self._segmented(octets)
        if node.end is None:
            if self._at(pos, pos + 2) != b"\0\0":
                raise NotStreamable("more than one element in the [0]")
            return pos + 2
        if pos != node.end:
            raise NotStreamable("more than one element in the [0]")
        return pos


def decrypt_pieces(parsed: _Parsed, cek: bytes, pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The plaintext of a ciphertext stream (CBC or GCM; NotStreamable for others); raises
    DecryptStreamFailed at the end if the padding or the tag is wrong."""
    spec = parsed.cipher
    if len(cek) != spec.key_size:
        raise DecryptStreamFailed("key size")
    dec: Any
    if spec.mode == "cbc":
        algo = TripleDES(cek) if spec.name == "des-ede3-cbc" else algorithms.AES(cek)
        dec = Cipher(algo, modes.CBC(parsed.iv)).decryptor()
    elif spec.mode == "gcm":
        assert parsed.mac is not None
        mode = modes.GCM(parsed.iv, parsed.mac, min_tag_length=parsed.tag_len)
        dec = Cipher(algorithms.AES(cek), mode).decryptor()
        if parsed.aad is not None:
            dec.authenticate_additional_data(parsed.aad)
    else:
        raise NotStreamable(spec.mode)
    block = spec.block_size if spec.mode == "cbc" else 0
    held = b""  # CBC: the last block decrypted so far, which may carry the padding
    length = 0
    for piece in pieces:
        length += len(piece)
        out = dec.update(piece)
        if block:
            out = held + out
            held, out = out[-block:], out[:-block]
        if out:
            yield out
    try:
        last = dec.finalize()
    except (InvalidTag, ValueError) as exc:
        raise DecryptStreamFailed("tag or length") from exc
    if not block:
        if last:
            yield last
        return
    if length == 0 or length % block:
        raise DecryptStreamFailed("ciphertext length")
    unpadder = sym_padding.PKCS7(block * 8).unpadder()
    try:
        tail = unpadder.update(held + last) + unpadder.finalize()
    except ValueError as exc:
        raise DecryptStreamFailed("padding") from exc
    if tail:
        yield tail
