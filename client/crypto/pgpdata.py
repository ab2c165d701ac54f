"""OpenPGP encrypted and compressed data packets: SEIPD v1/v2, OCB (tag 20), compression.

Theory of operation: given a session key, :func:`decrypt_data_packet` decrypts one
encrypted data packet entirely in memory and checks its integrity before returning
anything: SEIPDv1 (CFB, then the MDC: SHA-1 over prefix, plaintext and the MDC
header, compared with ``hmac.compare_digest``), SEIPDv2 (RFC 9580: HKDF-derived key
and IV, chunked AEAD, final tag over the total length) and the LibrePGP/GnuPG 2.3+
OCB packet (tag 20). No plaintext leaves this module unless every tag/MDC matched;
any failure is the single :class:`~client.errors.TamperedMessage`. The legacy
Symmetrically Encrypted Data packet (tag 9, no MDC) is refused with
:class:`~client.errors.UnauthenticatedCiphertext` before any decryption.

:func:`decompress` inflates ZIP (raw deflate), ZLIB and BZIP2 in 1 MiB steps against a
byte budget, so a decompression bomb stops at the limit with
:class:`~client.errors.MessageTooLarge`. :func:`encrypt_seipd_v1` writes SEIPDv1+MDC.
"""

from __future__ import annotations

import bz2
import hashlib
import hmac
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from client.crypto.pgpalgos import (
    AEAD_NAMES,
    AEAD_NONCE_SIZES,
    STEP,
    aead_cipher,
    cfb_decryptor,
    cfb_encryptor,
    cipher_info,
)
from client.crypto.pgppackets import Reader, Tag
from client.crypto.pgpsession import SessionKey
from client.errors import (
    MalformedMessage,
    MessageTooLarge,
    TamperedMessage,
    UnauthenticatedCiphertext,
    UnsupportedMessage,
)

__all__ = [
    "COMPRESSION_NAMES",
    "ChunkedAead",
    "DataResult",
    "chunked_aead",
    "decompress",
    "decrypt_data_packet",
    "encrypt_seipd_v1",
    "seipd_v1_chunks",
    "seipd_v1_length",
]

COMPRESSION_NAMES = {0: "uncompressed", 1: "ZIP", 2: "ZLIB", 3: "BZIP2"}
_TAMPERED = "the message failed its integrity check"
_MAX_CHUNK_OCTET = 16  # RFC 9580: at most 16 (4 MiB chunks); chunks are sliced from the input
_STEP = 1 << 20


@dataclass(frozen=True, slots=True)
class DataResult:
    plaintext: bytes
    cipher: str
    integrity: str


def decrypt_data_packet(tag: int, body: bytes, session_key: SessionKey) -> DataResult:
    """Decrypt and authenticate one encrypted data packet (SEIPD v1/v2 or OCB)."""
    if tag == Tag.SED:
        raise UnauthenticatedCiphertext("encrypted data without integrity protection (no MDC)")
    r = Reader(body, "encrypted data packet")
    version = r.u8()
    if tag == Tag.SEIPD and version == 1:
        return _seipd_v1(r.rest_view(), session_key)
    if tag == Tag.SEIPD and version == 2:
        return _chunked_aead(r, session_key, v2=True)
    if tag == Tag.AEAD and version == 1:
        return _chunked_aead(r, session_key, v2=False)
    raise UnsupportedMessage(f"encrypted data packet {tag} version {version} is not supported")


def _seipd_v1(ciphertext: memoryview, sk: SessionKey) -> DataResult:
    """Decrypt and check a SEIPD v1 body (after its version octet).

    The random prefix, the payload and the MDC packet are decrypted by separate calls on
    one CFB stream, so the payload comes out as its own bytes (no full-size copy of the
    plaintext to cut it out, nor of the ciphertext to start from); the MDC's SHA-1 is fed
    as the pieces come. The payload is returned only if the MDC matches.
    """
    if sk.cipher is None:
        raise TamperedMessage(_TAMPERED)  # a v6 PKESK cannot go with SEIPDv1
    info = cipher_info(sk.cipher)
    if len(sk.key) != info.key_size:
        raise TamperedMessage(_TAMPERED)
    bs = info.block_size
    n = len(ciphertext)
    if n < bs + 2 + 22:
        raise TamperedMessage(_TAMPERED)
    dec = cfb_decryptor(info, sk.key)
    mdc_at = n - 22
    sha = hashlib.sha1(dec.update(ciphertext[: bs + 2]))  # noqa: S324 - MDC is SHA-1
    parts = []
    for i in range(bs + 2, mdc_at, STEP):  # STEP: cryptography holds the GIL per call
        piece = dec.update(ciphertext[i : min(i + STEP, mdc_at)])
        sha.update(piece)
        parts.append(piece)
    trailer = dec.update(ciphertext[mdc_at:]) + dec.finalize()
    sha.update(trailer[:2])
    header_ok = hmac.compare_digest(trailer[:2], b"\xd3\x14")
    hash_ok = hmac.compare_digest(sha.digest(), trailer[2:])
    if not (header_ok & hash_ok):
        raise TamperedMessage(_TAMPERED)
    return DataResult(b"".join(parts), info.name, "MDC")  # one part: joined is that part


@dataclass(frozen=True)
class ChunkedAead:
    """The parameters of a chunked AEAD packet (SEIPDv2, or LibrePGP's OCB packet), read
    from its header by :func:`chunked_aead`; chunk ``i`` is opened with :meth:`open`."""

    header: bytes  # the packet's tag, version, cipher, AEAD mode, chunk size: the AD
    primitive: Any
    iv: bytes
    chunk: int  # plaintext octets per chunk (the ciphertext has a 16-octet tag more)
    v2: bool
    cipher: str
    integrity: str

    def _nonce(self, i: int) -> bytes:
        if self.v2:
            return self.iv + i.to_bytes(8, "big")
        return self.iv[:-8] + (int.from_bytes(self.iv[-8:], "big") ^ i).to_bytes(8, "big")

    def open(self, i: int, chunk: bytes) -> bytes:
        """Chunk ``i``'s plaintext; InvalidTag if it was changed."""
        ad = self.header if self.v2 else self.header + i.to_bytes(8, "big")
        return bytes(self.primitive.decrypt(self._nonce(i), chunk, ad))

    def check_final(self, count: int, total: int, tag: bytes) -> None:
        """The final tag, over the number of chunks and of plaintext octets; InvalidTag if
        the message was cut short or extended."""
        index = b"" if self.v2 else count.to_bytes(8, "big")
        self.primitive.decrypt(
            self._nonce(count), tag, self.header + index + total.to_bytes(8, "big")
        )


def chunked_aead(read: Callable[[int], bytes], sk: SessionKey, *, v2: bool) -> ChunkedAead:
    """Read a chunked AEAD packet's header (after its version octet) with ``read(n)`` and
    derive its key and IV from the session key ``sk``."""
    cipher, aead, chunk_octet = read(3)
    if chunk_octet > (_MAX_CHUNK_OCTET if v2 else 56):  # LibrePGP allows up to 56
        raise MalformedMessage("AEAD chunk size out of range")
    info = cipher_info(cipher)
    nonce_size = AEAD_NONCE_SIZES.get(aead)
    if nonce_size is None:
        raise UnsupportedMessage(f"AEAD mode {aead} is not supported")
    version = 2 if v2 else 1
    header = bytes([0xC0 | (Tag.SEIPD if v2 else Tag.AEAD), version, cipher, aead, chunk_octet])
    if v2:
        salt = read(32)
        if sk.cipher is not None and sk.cipher != cipher:
            raise TamperedMessage(_TAMPERED)
        if len(sk.key) != info.key_size:
            raise TamperedMessage(_TAMPERED)
        derived = HKDF(hashes.SHA256(), info.key_size + nonce_size - 8, salt, header).derive(sk.key)
        key, iv = derived[: info.key_size], derived[info.key_size :]
    else:
        iv = read(nonce_size)
        if sk.cipher != cipher or len(sk.key) != info.key_size:
            raise TamperedMessage(_TAMPERED)
        key = sk.key
    return ChunkedAead(
        header=header,
        primitive=aead_cipher(aead, cipher, key),
        iv=iv,
        chunk=1 << (chunk_octet + 6),
        v2=v2,
        cipher=info.name,
        integrity="AEAD-" + AEAD_NAMES[aead],
    )


def _chunked_aead(r: Reader, sk: SessionKey, *, v2: bool) -> DataResult:
    a = chunked_aead(r.take, sk, v2=v2)
    data = r.rest()
    if len(data) < 16:
        raise TamperedMessage(_TAMPERED)
    chunks_data, final_tag = data[:-16], data[-16:]
    step = a.chunk + 16
    out: list[bytes] = []
    total = 0
    try:
        for index, start in enumerate(range(0, len(chunks_data), step)):
            plain = a.open(index, chunks_data[start : start + step])
            out.append(plain)
            total += len(plain)
        a.check_final(len(out), total, final_tag)
    except (InvalidTag, ValueError) as exc:
        raise TamperedMessage(_TAMPERED) from exc
    return DataResult(b"".join(out), a.cipher, a.integrity)


def decompress(body: bytes, budget: int) -> tuple[bytes, str]:
    """Inflate a Compressed Data packet body; at most ``budget`` octets of output."""
    r = Reader(body, "compressed data packet")
    algo = r.u8()
    data = r.rest()
    name = COMPRESSION_NAMES.get(algo)
    if name is None:
        raise UnsupportedMessage(f"compression algorithm {algo} is not supported")
    if algo == 0:
        if len(data) > budget:
            raise MessageTooLarge("decompressed data exceeds the size limit")
        return data, name
    chunks: list[bytes] = []
    produced = 0

    def add(chunk: bytes) -> None:
        nonlocal produced
        produced += len(chunk)
        if produced > budget:
            raise MessageTooLarge("decompressed data exceeds the size limit")
        chunks.append(chunk)

    try:
        if algo in (1, 2):
            z = zlib.decompressobj(-15 if algo == 1 else 15)
            pending = data
            while True:
                chunk = z.decompress(pending, _STEP)
                pending = z.unconsumed_tail
                add(chunk)
                if z.eof or (not chunk and not pending):
                    break
        else:
            b = bz2.BZ2Decompressor()
            add(b.decompress(data, _STEP))
            while not b.eof and not b.needs_input:
                add(b.decompress(b"", _STEP))
            if not b.eof:
                raise MalformedMessage("truncated BZIP2 data")
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        raise MalformedMessage(f"damaged {name} compressed data") from exc
    return b"".join(chunks), name


def encrypt_seipd_v1(
    plaintext: bytes, cipher: int, session_key: bytes, rng: Callable[[int], bytes]
) -> bytes:
    """A SEIPDv1 packet body: CFB over random prefix, plaintext and MDC packet."""
    return b"".join(seipd_v1_chunks(plaintext, cipher, session_key, rng))


def seipd_v1_length(plaintext_length: int, cipher: int) -> int:
    """The length of the SEIPDv1 body :func:`seipd_v1_chunks` writes (version, prefix, MDC)."""
    return 1 + cipher_info(cipher).block_size + 2 + plaintext_length + 22


def seipd_v1_chunks(
    plaintext: bytes, cipher: int, session_key: bytes, rng: Callable[[int], bytes]
) -> Iterator[bytes]:
    """The SEIPDv1 body in ~1 MiB pieces: one pass hashes (MDC) and encrypts (CFB) each
    step of ``plaintext``, so no full-size prefixed copy or ciphertext is ever built."""
    view = memoryview(plaintext)
    steps = (view[start : start + _STEP] for start in range(0, len(view), _STEP))
    return seipd_v1_stream(steps, cipher, session_key, rng)


def seipd_v1_stream(
    pieces: Iterable[bytes | memoryview],
    cipher: int,
    session_key: bytes,
    rng: Callable[[int], bytes],
) -> Iterator[bytes]:
    """The SEIPDv1 body of the concatenated ``pieces``, one output piece per input piece
    (plus the first and last): for plaintext that arrives as a stream."""
    info = cipher_info(cipher)
    prefix = rng(info.block_size)
    if len(prefix) != info.block_size:
        raise ValueError("rng returned the wrong number of octets")
    enc = cfb_encryptor(info, session_key)
    mdc = hashlib.sha1()  # noqa: S324 - MDC is SHA-1 by definition
    head = prefix + prefix[-2:]
    mdc.update(head)
    yield b"\x01" + enc.update(head)
    for piece in pieces:
        mdc.update(piece)
        yield enc.update(piece)
    mdc.update(b"\xd3\x14")
    yield enc.update(b"\xd3\x14" + mdc.digest()) + enc.finalize()
