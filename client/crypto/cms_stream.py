"""Reading an S/MIME envelope (EnvelopedData / AuthEnvelopedData) as a stream -- sans I/O.

Theory of operation
-------------------
:func:`client.crypto.cms_envelope.decrypt` takes the whole DER. For a 50 MB message
that is the DER, its plaintext and the message text at once. Here the DER arrives in
pieces (decoded base64 of the message body) and only its small parts are kept:

    EnvelopeStream(der pieces)
        reads the DER up to the ciphertext, which must be a definite-length primitive
        [0] (what Sealmail and ``openssl cms -encrypt`` write); anything else -> NotStreamable
    .ciphertext()  -> the ciphertext, piece by piece; then the DER after it is kept
    .stub()        -> the same DER with an empty ciphertext, for cms_envelope's parser

``decrypt_pieces`` then decrypts a ciphertext stream with a content-encryption key.
Nothing decrypted is trusted before the stream ends: the CBC padding or the GCM tag is
checked last, and a failure raises :class:`DecryptStreamFailed`. The caller keeps what
it learnt from a pass until then (the streaming opener makes the output atomic).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from client.crypto.cms_envelope import _der_header, _Parsed

__all__ = ["DecryptStreamFailed", "EnvelopeStream", "NotStreamable", "decrypt_pieces"]

#: DER before the ciphertext (RecipientInfos: certificates' issuer names, keys) and after
#: it (attributes, the tag) that is kept; real ones are a few kilobytes.
HEAD_LIMIT = 1 << 20
TAIL_LIMIT = 1 << 20


class NotStreamable(Exception):
    """The envelope has a shape this reader does not stream (the caller goes in memory)."""


class DecryptStreamFailed(Exception):
    """The padding or the authentication tag did not check out at the end of the stream."""


_MAX_DEPTH = 32


class _Tlv:
    __slots__ = ("content", "end", "start", "tag")

    def __init__(self, tag: int, start: int, content: int, end: int | None) -> None:
        # end is None for a BER indefinite length (the contents end with 00 00)
        self.tag, self.start, self.content, self.end = tag, start, content, end


class EnvelopeStream:
    """One pass over the DER (or BER) of an envelope (see the module doc). ``_buf`` holds
    the stream from offset ``_base`` on; offsets are stream offsets."""

    def __init__(self, der: Iterable[bytes]) -> None:
        self._it = iter(der)
        self._buf = bytearray()
        self._base = 0
        top = self._tlv(0)
        oid = self._tlv(top.content)
        wrap = self._tlv(self._end(oid))
        env = self._tlv(wrap.content)
        if top.tag != 0x30 or oid.tag != 0x06 or wrap.tag != 0xA0 or env.tag != 0x30:
            raise NotStreamable("not a ContentInfo")
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
        self._levels = (top, wrap, env, eci)
        self._ct = ct
        self._head = bytes(self._buf[: ct.start])
        self._tail = b""
        self._ct_end = -1

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

    # -- the ciphertext
    def ciphertext(self) -> Iterator[bytes]:
        """The ciphertext's pieces (a primitive [0], or a constructed one of OCTET STRING
        segments); afterwards the DER after it is read and kept."""
        ct = self._ct
        if ct.tag == 0x80:
            assert ct.end is not None
            yield from self._octets(ct.content, ct.end)
            pos = ct.end
        else:
            pos = ct.content
            while ct.end is None or pos < ct.end:
                if ct.end is None and self._at(pos, pos + 2) == b"\0\0":
                    pos += 2
                    break
                segment = self._tlv(pos)
                if segment.tag != 0x04 or segment.end is None:
                    raise NotStreamable("a ciphertext segment is not a primitive OCTET STRING")
                yield from self._octets(segment.content, segment.end)
                pos = segment.end
            if ct.end is not None and pos != ct.end:
                raise NotStreamable("ciphertext segments overrun their [0]")
        self._ct_end = pos
        tail = bytearray(self._buf[pos - self._base :])
        for piece in self._it:
            tail += piece
            if len(tail) > TAIL_LIMIT:
                raise NotStreamable("the envelope tail is too large")
        self._tail = bytes(tail)

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
                raise NotStreamable("the ciphertext ends early")
            take = min(len(piece), end - pos)
            rest = piece[take:]
            pos += take
            if take:
                yield piece[:take]
        self._buf, self._base = bytearray(rest), end

    def stub(self) -> bytes:
        """The envelope with an empty primitive ciphertext (after :meth:`ciphertext`), its
        definite lengths adjusted; asn1crypto parses it as it would the whole."""
        if self._ct_end < 0:
            raise RuntimeError("stub() before the ciphertext was read")
        removed = self._ct_end - self._ct.start - 2
        levels = self._levels
        top = levels[0]
        if top.end is not None and top.end != self._ct_end + len(self._tail):
            raise NotStreamable("data after the envelope, or the envelope is cut short")
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
        return b"".join([*out, b"\x80\x00", self._tail])


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
