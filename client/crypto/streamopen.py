"""Opening an encrypted message file (S/MIME or PGP/MIME) in bounded memory.

Theory of operation
-------------------
:func:`client.crypto.recipes.open_raw` holds the message text, the DER or packets, the
plaintext and the opened message: for a 50 MB attachment that was 7-9x the payload. Here
the file is read in passes and only small things are kept:

1. **Layer.** The outer header says which.
   *S/MIME*: ``application/pkcs7-mime`` enveloped (or authEnveloped) data in base64. The
   base64 is decoded as it streams (:func:`client.mime.raw.b64_decode_stream`) into
   :class:`~client.crypto.cms_stream.EnvelopeStream`, which keeps the DER around the
   ciphertext. The RecipientInfos give the content-encryption key, exactly as
   :func:`~client.crypto.cms_envelope.decrypt` would find it (exactly one candidate key
   over all own identities; otherwise the in-memory path decides).
   When the content is opaque signed data (``smime-type=signed-data``, Outlook's
   sign-then-encrypt; a look at the start of the plaintext tells), its base64 is decoded
   as it streams into :class:`~client.crypto.cms_stream.SignedDataStream`, whose
   encapsulated content is the inner entity from then on (:class:`_OpaqueLayer`).
   *PGP/MIME*: a pass finds part 2 (:func:`~client.mime.stream.part_spans`); the start
   of another reads its armor, the session-key packets and the first block of the SEIPD
   v1 packet (:mod:`client.crypto.pgpopen`), and the one session key whose quick check
   passes is kept (SEIPD v2 and OCB packets have no quick check: exactly one candidate
   session key, which the first chunk's tag then proves).
2. **Skeleton.** The content is decrypted; the padding, the GCM tag or the MDC is
   checked at the end. On the way, :class:`~client.mime.stream.Hollow` keeps a skeleton
   of the inner entity (long base64 bodies cut out, a marker left in their place), and
   when the inner entity is a ``multipart/signed`` (S/MIME, or OpenPGP as Thunderbird
   signs inside its encryption) its part offsets are found.
   The skeleton goes through the same steps as :func:`client.mime.parse.open_message`
   (classify, peel the signature, protected headers, restored header), provided every
   marker lies in the body of a non-text leaf outside any nested signed part: nothing
   that reads those bodies is then skipped.
3. **Output.** The content is decrypted again; the opened message is the restored
   header and the root entity's octets, written as they come. An S/MIME signed part is
   hashed as it passes and its signature checked with those digests
   (:func:`client.crypto.cms_verify.verify` ``detached_digests``); so is opaque signed
   data's content, its signatures checked over the SignedData without it. An OpenPGP
   signed part goes to a verifier (below) with the signature part. OpenPGP signatures
   (one-pass, inside the encryption) are checked by ``pysequoia.verify`` over the literal
   data as a detached signature, in a forked child reading a pipe this pass writes into
   (:mod:`client.verifyproc`, given as ``verifiers``; pysequoia holds the GIL while it
   reads, so a thread cannot feed it). The report is complete when the pieces have all
   been taken. Each pass is summed (length, CRC-32 of the plaintext) and checked against
   the skeleton pass: a file that changed is refused mid-way, and the caller's atomic
   write leaves nothing behind.

Whatever this path does not cover (a second encryption layer, opaque signed data whose
signer signs the content itself (no signed attributes) or with another layer inside it,
several candidate keys, ciphertext in nested segments, OpenPGP AEAD chunks over 4 MiB, a
marker in a text part, a signed OpenPGP message where fork() is not safe...) makes
:func:`open_stream` return None before anything is output; the caller then opens the
message in memory, which has the last word on errors too.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Protocol

import pysequoia
from cryptography.hazmat.primitives import hashes

from client.crypto import cms_envelope, pgparmor, pgpopen, pgpsig, pgpstream
from client.crypto.cms_common import hash_for_name
from client.crypto.cms_stream import (
    DecryptStreamFailed,
    EnvelopeStream,
    NotStreamable,
    SignedDataStream,
    decrypt_pieces,
)
from client.crypto.cms_verify import detached_digest_names
from client.crypto.keys import KeyAccess
from client.crypto.pgpalgos import AEAD_NAMES, cipher_info
from client.crypto.pgpkeys import load_secret_keys
from client.crypto.pgppackets import Packet
from client.crypto.recipes import Opener
from client.crypto.report import EncryptionLayer, ReportBuilder, SecurityReport, SignatureResult
from client.crypto.streamprotect import changed_file
from client.errors import SealmailError, UnsupportedMessage
from client.mime.parse import (
    classify,
    conclude,
    may_need_repair,
    read_protected,
    restored_head,
)
from client.mime.raw import (
    MAX_DEPTH,
    MAX_HEADER_BYTES,
    MAX_PARTS,
    Entity,
    b64_decode_stream,
    parse_entity,
    split_multipart,
)
from client.mime.stream import Hollow, coalesce, crlf_pieces, part_spans, span_pieces, split_header

__all__ = ["LiteralVerifier", "StreamedOpen", "Verifiers", "open_stream"]

log = logging.getLogger(__name__)
Source = Callable[[], Iterable[bytes]]

#: Shortest run of base64 lines the skeleton leaves out (tests make it small).
HOLE_MIN = 1 << 16


class LiteralVerifier(Protocol):
    """Checks OpenPGP signatures over literal data written to it piece by piece."""

    def write(self, piece: bytes | memoryview) -> None: ...

    def result(self) -> list[tuple[str, str]] | None:
        """(certificate, signing key) of each valid signature; None: the check did not run."""
        ...

    def close(self) -> None: ...


class Verifiers(Protocol):
    """Where signature checks of streamed data can run (client.verifyproc.ForkVerifiers)."""

    def available(self) -> bool: ...

    def start(self, certs: list[Any], signatures: bytes) -> LiteralVerifier: ...


class _Fallback(Exception):
    """This message is opened in memory instead."""


@dataclass
class StreamedOpen:
    """An opened message to be written out piece by piece. Iterate :attr:`pieces` once,
    to the end; then :meth:`report` says what the layers proved."""

    pieces: Iterator[bytes]
    _report: list[SecurityReport] = field(default_factory=list)

    def report(self) -> SecurityReport:
        if not self._report:
            raise RuntimeError("the report is ready once every piece has been taken")
        return self._report[0]


def open_stream(
    source: Source,
    keys: KeyAccess,
    *,
    now: datetime,
    rng: Callable[[int], bytes],
    verifiers: Verifiers | None = None,
) -> StreamedOpen | None:
    """Open the message ``source()`` yields (a fresh pass per call); None: open in memory.
    ``verifiers`` check the signatures of signed OpenPGP messages (without, those are
    opened in memory); ``rng`` makes the skeleton's marker."""
    try:
        return _open(source, keys, now, rng, verifiers)
    except (_Fallback, NotStreamable, DecryptStreamFailed, SealmailError) as exc:
        log.debug("streaming open: in memory instead (%s: %s)", type(exc).__name__, exc)
        return None
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        log.debug("streaming open: in memory instead", exc_info=True)
        return None


class _Crlf:
    """:func:`~client.mime.stream.crlf_pieces` for passes over the same octets: once a
    whole pass needed no line end rewritten, later passes take the pieces as they are
    (three ``count`` calls per piece saved: ~0.4 s a pass on 67 MB). A file that changed
    in between is caught as before: each pass checks the header, the envelope or session
    packets, and the plaintext's length and CRC-32 against the skeleton pass's."""

    def __init__(self) -> None:
        self.canonical = False

    def __call__(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        if self.canonical:
            yield from (piece for piece in pieces if piece)
            return
        changed: list[bool] = []
        yield from crlf_pieces(pieces, changed)
        self.canonical = not changed  # (reached only at the end of the pass)


def _canonical(source: Source) -> Source:
    """``source`` with its line ends made CRLF (see :class:`_Crlf`)."""
    crlf = _Crlf()
    return lambda: crlf(source())


def _outer(source: Source) -> tuple[bytes, Iterator[bytes]]:
    split = split_header(iter(source()), limit=MAX_HEADER_BYTES)
    if split is None:
        raise _Fallback("no header section")
    return split


@dataclass(frozen=True)
class _PgpDetached:
    """An OpenPGP detached signature over the signed part, checked by a verifier fed with
    the part as the output pass writes it (the in-memory path's pgp_verify_detached)."""

    signature: bytes  # the signature part's body (armored)
    issuers: list[str]
    certs: list[Any]
    verifiers: Verifiers


@dataclass
class _Plan:
    """What the skeleton pass learnt, for the output pass."""

    head: bytes  # the restored header of the opened message
    body: tuple[int, int]  # the root entity's body in the plaintext
    signed: tuple[int, int] | None  # the signed part in the plaintext
    signature: bytes  # DER of the detached signature (when signed)
    digests: frozenset[str]
    pgp: _PgpDetached | None  # the signed part is OpenPGP-signed (multipart/signed)
    sums: tuple[int, int]  # plaintext length, CRC-32
    top: Entity
    root: Entity
    builder: ReportBuilder
    protected: list[tuple[str, str]]


def _open(
    source: Source,
    keys: KeyAccess,
    now: datetime,
    rng: Callable[[int], bytes],
    verifiers: Verifiers | None,
) -> StreamedOpen:
    source = _canonical(source)
    header_block, body = _outer(source)
    top = parse_entity(header_block + b"\r\n\r\n", canonical=True)
    if top.header_block != header_block:
        raise _Fallback("header section")
    kind = classify(top)
    opener = Opener(keys)
    builder = ReportBuilder()
    layer: _Layer
    if kind == "smime-enveloped" and top.transfer_encoding == "base64":
        layer = _SmimeLayer(source, header_block, body, keys, opener)
    elif kind == "pgp-encrypted":
        del body
        layer = _PgpLayer(source, header_block, top, keys, opener, verifiers)
    else:
        raise _Fallback(f"not an encrypted message we stream ({kind})")
    builder.layers.append(layer.layer)
    if isinstance(layer, _SmimeLayer):
        layer = _opaque_inside(layer, opener)
    plan = _skeleton(layer, top, builder, opener, now, rng, verifiers)
    result = StreamedOpen(iter(()))
    result.pieces = _output(layer, plan, opener, now, result._report)
    return result


class _Layer:
    """One decryption layer read from the file: its report entry and its plaintext."""

    layer: EncryptionLayer

    def __init__(self) -> None:
        self._crlf = _Crlf()  # for the plaintext

    def plaintext(self) -> Iterator[bytes]:
        """The decrypted inner entity (canonical), from a fresh pass over the file."""
        raise NotImplementedError

    def skeleton_pass(self) -> Iterator[bytes]:
        """:meth:`plaintext` for the skeleton pass (which may check signatures too)."""
        return self.plaintext()

    def signatures(self, now: datetime) -> list[SignatureResult]:
        """The layer's own signatures (after the skeleton pass)."""
        return []

    def signed_inside(self) -> bool:
        """Whether a multipart/signed inside streams (after the skeleton pass); where the
        layer has signatures of its own, the in-memory path counts them against
        MAX_LAYERS first: it goes in memory."""
        return True


class _SmimeLayer(_Layer):
    def __init__(
        self,
        source: Source,
        header_block: bytes,
        body: Iterator[bytes],
        keys: KeyAccess,
        opener: Opener,
    ) -> None:
        super().__init__()
        self._source, self._header_block = source, header_block
        # pass 1: the envelope around the ciphertext, and the key
        env = EnvelopeStream(b64_decode_stream(body))
        for _ in env.content():
            pass
        self._stub = env.stub()
        self._parsed = parsed = cms_envelope._parse(self._stub)
        if parsed.cipher.mode not in ("cbc", "gcm"):
            raise _Fallback(parsed.cipher.mode)
        choices = [
            (ident, cek)
            for ident in keys.smime_identities()
            for cek, _, _ in cms_envelope._candidates(
                parsed, ident.certificate, ident.private_key, None
            )
        ]
        if len(choices) != 1:
            raise _Fallback(f"{len(choices)} candidate keys")
        ident, self._cek = choices[0]
        recipients = [ri.describe() for ri in parsed.recipients]
        self.layer = opener.smime_layer(parsed.cipher.name, recipients, ident.certificate)

    def plaintext(self) -> Iterator[bytes]:
        again, body = _outer(self._source)
        if again != self._header_block:
            raise NotStreamable("the header changed")
        envelope = EnvelopeStream(b64_decode_stream(body))
        yield from self._crlf(decrypt_pieces(self._parsed, self._cek, envelope.content()))
        if envelope.stub() != self._stub:
            raise NotStreamable("the envelope changed")


def _opaque_inside(layer: _SmimeLayer, opener: Opener) -> _Layer:
    """``layer``, or :class:`_OpaqueLayer` around it when its content is opaque signed
    data (Outlook's sign-then-encrypt). Only the start is decrypted to see that; the
    skeleton pass checks the header again, and the tag or padding, before anything is
    trusted."""
    pieces = layer.plaintext()
    try:
        split = split_header(pieces, limit=MAX_HEADER_BYTES)
    finally:
        getattr(pieces, "close", lambda: None)()  # the rest is not decrypted
    if split is None:
        return layer
    head = split[0]
    entity = parse_entity(head + b"\r\n\r\n", canonical=True)
    if classify(entity) != "smime-opaque":
        return layer
    if entity.header_block != head or entity.transfer_encoding != "base64":
        raise _Fallback("opaque signed data not in base64")
    return _OpaqueLayer(layer, head, opener)


class _OpaqueLayer(_Layer):
    """Opaque signed data (``application/pkcs7-mime; smime-type=signed-data``) inside an
    S/MIME envelope: its encapsulated content is the inner entity, hashed as it passes;
    its signatures are checked over the detached stub with those digests."""

    def __init__(self, inner: _SmimeLayer, head: bytes, opener: Opener) -> None:
        super().__init__()
        self._inner, self._head, self._opener = inner, head, opener
        self.layer = inner.layer
        self._stub = b""
        self._names: frozenset[str] = frozenset()
        self._digests: dict[str, bytes] | None = None

    def _content(self, plaintext: Iterator[bytes], hashers: list[Any]) -> Iterator[bytes]:
        split = split_header(plaintext, limit=MAX_HEADER_BYTES)
        if split is None or split[0] != self._head:
            raise NotStreamable("the signed data's header changed")
        stream = SignedDataStream(b64_decode_stream(split[1]))
        for piece in stream.content():
            for h in hashers:
                h.update(piece)
            yield piece
        stub = stream.stub()
        for _ in split[1]:  # to the end of the decryption: its tag or padding
            pass
        if self._stub and stub != self._stub:
            raise NotStreamable("the signature changed")
        self._stub = stub

    def skeleton_pass(self) -> Iterator[bytes]:
        yield from self._crlf(self._content(self._inner.plaintext(), []))
        self._names = _detached_names(self._stub)

    def plaintext(self) -> Iterator[bytes]:
        hashers = {name: hashes.Hash(hash_for_name(name)) for name in self._names}
        yield from self._crlf(self._content(self._inner.plaintext(), list(hashers.values())))
        self._digests = {name: h.finalize() for name, h in hashers.items()}

    def signatures(self, now: datetime) -> list[SignatureResult]:
        assert self._digests is not None  # after the output pass
        return self._opener.smime_verify_digests(self._stub, self._digests, now=now)

    def signed_inside(self) -> bool:
        return False


class _PgpLayer(_Layer):
    """PGP/MIME: part 2's armored message, SEIPD v1 or v2 (or LibrePGP's OCB packet)
    inside (see client/crypto/pgpopen)."""

    def __init__(
        self,
        source: Source,
        header_block: bytes,
        top: Entity,
        keys: KeyAccess,
        opener: Opener,
        verifiers: Verifiers | None,
    ) -> None:
        super().__init__()
        self._source, self._header_block, self._opener = source, header_block, opener
        self._keys = keys
        self._verified: list[tuple[str, str]] | None = None
        boundary = top.param("boundary") or ""
        if not 0 < len(boundary) <= 200:
            raise _Fallback("boundary")
        _, body = _outer(source)  # pass 1: where part 2 lies
        spans = part_spans(body, boundary, max_parts=MAX_PARTS)
        for _ in body:  # the epilogue: a whole pass lets later ones skip the CRLF work
            pass
        if spans is None or len(spans) < 2:
            raise _Fallback("parts")
        self._span = spans[1]
        # pass 2 (the start only): the session key packets and the key
        msg = pgpopen.split_message(pgpopen.dearmor_pieces(self._payload()))
        self._session = msg.session
        packets = [Packet(tag, body) for tag, body in msg.session]
        pkesks, skesks, key_ids = pgpstream._parse_session_packets(packets)
        own = keys.pgp_secret_keys()
        secret = load_secret_keys([tsk for tsk, _ in own])
        passphrases = pgpstream._passphrases([pw for _, pw in own if pw is not None] or None)
        data = pgpopen.Bytes(msg.data)
        first = data.read(18)
        attempts = pgpstream._Attempts()
        self._aead = msg.aead
        chosen = [
            sk
            for sk in pgpstream._candidates(pkesks, skesks, secret, passphrases, (), attempts)
            # SEIPD v1: the quick check; AEAD: the first chunk's tag tells (in the passes)
            if msg.aead is not None or pgpopen.quick_check(first, sk)
        ]
        if len({(sk.cipher, sk.key) for sk in chosen}) == 1:
            chosen = chosen[:1]  # several of our keys gave the same session key: the first
        if len(chosen) != 1:
            raise _Fallback(f"{len(chosen)} session keys")
        self._key = sk = chosen[0]
        if msg.aead is None:
            assert sk.cipher is not None
            cipher, integrity = cipher_info(sk.cipher).name, "MDC"
        else:  # the packet names its cipher and AEAD mode (the in-memory report's source)
            if first[1] not in AEAD_NAMES:
                raise _Fallback(f"AEAD mode {first[1]}")
            cipher, integrity = cipher_info(first[0]).name, "AEAD-" + AEAD_NAMES[first[1]]
        self.layer = EncryptionLayer(
            method="pgp",
            cipher=cipher,
            integrity=integrity,
            recipients=tuple(key_ids),
            decrypted_with=sk.source,
        )
        self._info = pgpopen.InnerMessage()
        self._verifiers = verifiers if verifiers is not None and verifiers.available() else None

    def _payload(self) -> Iterator[bytes]:
        """Part 2's body, transfer encoding removed, from a fresh pass."""
        again, body = _outer(self._source)
        if again != self._header_block:
            raise NotStreamable("the header changed")
        part = (octets for _, octets in span_pieces(body, [self._span]))
        split = split_header(part, limit=MAX_HEADER_BYTES)
        if split is None:
            raise NotStreamable("part 2 has no header section")
        head_block, rest = split
        entity = parse_entity(head_block + b"\r\n\r\n", canonical=True)
        if entity.header_block != head_block:
            raise NotStreamable("part 2's header section")
        cte = entity.transfer_encoding
        if cte in ("7bit", "8bit", "binary"):
            yield from rest
        elif cte == "base64":
            yield from b64_decode_stream(rest)
        else:
            raise NotStreamable(f"part 2 in {cte}")

    def _pass(
        self, info: pgpopen.InnerMessage, literal: Callable[[bytes], None] | None = None
    ) -> Iterator[bytes]:
        msg = pgpopen.split_message(pgpopen.dearmor_pieces(self._payload()))
        if msg.session != self._session:
            raise NotStreamable("the session packets changed")
        if msg.aead != self._aead:
            raise NotStreamable("the data packet changed")
        if msg.aead is None:
            plain = pgpopen.seipd_v1_pieces(coalesce(msg.data), self._key)
        else:
            plain = pgpopen.aead_pieces(coalesce(msg.data), self._key, v2=msg.aead == "v2")
        data = coalesce(pgpopen.inner_pieces(plain, info))  # gpg's partial lengths are short
        yield from self._crlf(_teed(data, literal) if literal is not None else data)

    def skeleton_pass(self) -> Iterator[bytes]:
        yield from self._pass(self._info)
        if self._info.signed and not (self._verifiers and self._info.signatures):
            raise _Fallback("signatures this path cannot check")

    def plaintext(self) -> Iterator[bytes]:
        """The output pass; when signed, the literal data is also fed to the verifier."""
        info = pgpopen.InnerMessage()
        if not self._info.signed:
            yield from self._pass(info)
        else:
            issuers = pgpsig.signature_issuers(b"".join(self._info.signatures))
            certs = list(self._keys.pgp_certs_for_ids(issuers)) if issuers else []
            assert self._verifiers is not None  # checked after the skeleton pass
            verifier = self._verifiers.start(certs, b"".join(self._info.signatures))
            try:
                yield from self._pass(info, verifier.write)
                self._verified = verifier.result()
            finally:
                verifier.close()
        if info.signatures != self._info.signatures:
            raise NotStreamable("the signatures changed")

    def signatures(self, now: datetime) -> list[SignatureResult]:
        """After the output pass: the signatures as the in-memory path reports them."""
        info = self._info
        if not info.signed:
            return []
        issuers = pgpsig.signature_issuers(b"".join(info.signatures))
        return _pgp_results(self._opener, issuers, self._verified, now)

    def signed_inside(self) -> bool:
        return not self._info.signed


def _pgp_results(
    opener: Opener, issuers: list[str], verified: list[tuple[str, str]] | None, now: datetime
) -> list[SignatureResult]:
    """What a verifier found (:meth:`LiteralVerifier.result`), reported as the in-memory
    path reports ``pysequoia.verify``'s result."""
    if verified is None:
        raise UnsupportedMessage(
            "the signature check did not finish",
            hint="Open the message from standard input to check it in memory.",
        )
    found = SimpleNamespace(
        valid_sigs=[SimpleNamespace(certificate=c, signing_key=k) for c, k in verified]
    )
    return opener._pgp_results(issuers, lambda store: found, now)


def _teed(pieces: Iterable[bytes], tee: Callable[[bytes], None]) -> Iterator[bytes]:
    for piece in pieces:
        tee(piece)
        yield piece


def _skeleton(
    layer: _Layer,
    top: Entity,
    builder: ReportBuilder,
    opener: Opener,
    now: datetime,
    rng: Callable[[int], bytes],
    verifiers: Verifiers | None,
) -> _Plan:
    """Pass 2 (see the module doc)."""
    token = b"SealmailHole" + rng(12).hex().encode()
    hollow = Hollow(token + b"\r\n", HOLE_MIN)  # a part's last CRLF is its delimiter's
    sums = [0, 0]

    def fed() -> Iterator[bytes]:
        for piece in layer.skeleton_pass():
            hollow.update(piece)
            sums[0], sums[1] = sums[0] + len(piece), zlib.crc32(piece, sums[1])
            yield piece

    stream = fed()
    split = split_header(stream, limit=MAX_HEADER_BYTES)
    if split is None:
        raise _Fallback("the content has no header section")
    inner_header, inner_body = split
    head = parse_entity(inner_header + b"\r\n\r\n", canonical=True)
    spans = None
    if classify(head) in ("smime-signed", "pgp-signed"):
        boundary = head.param("boundary") or ""
        spans = part_spans(inner_body, boundary, max_parts=MAX_PARTS) if boundary else None
    for _ in inner_body:  # to the end: the tag or padding is checked there
        pass
    for _ in stream:
        pass
    skeleton = hollow.skeleton()
    entity = parse_entity(skeleton, canonical=True)
    if entity.header_block != inner_header:
        raise _Fallback("header sections differ")
    start = len(skeleton) - entity.body_size  # the same in the plaintext: headers are kept
    body, signed = (start, sums[0]), None
    signature, digests, pgp = b"", frozenset[str](), None
    kind = classify(entity)
    if kind in ("smime-signed", "pgp-signed") and layer.signed_inside():
        parts = split_multipart(entity)
        if len(parts) != 2 or spans is None or len(spans) != 2 or token in parts[1]:
            raise _Fallback("signed parts")
        signature = parse_entity(parts[1], canonical=True).decoded_body()
        if kind == "smime-signed":
            digests = _detached_names(signature)
        else:
            pgp = _pgp_detached(signature, opener, verifiers)
        part = parse_entity(parts[0], canonical=True)
        (a, b), part_header = spans[0], len(parts[0]) - part.body_size
        signed, body = (start + a, start + b), (start + a + part_header, start + b)
        entity = part
        kind = classify(entity)
    if kind is not None and not kind.startswith("unknown"):
        raise _Fallback(f"another layer ({kind})")
    if kind is None and may_need_repair(entity):
        raise _Fallback("a repair candidate")
    if not _holes_allowed(entity, token, 0):
        raise _Fallback("a cut-out body is read by the report")
    protected = read_protected(top, entity, builder, trusted=True)
    return _Plan(
        head=restored_head(top, entity, protected),
        body=body,
        signed=signed,
        signature=signature,
        digests=digests,
        pgp=pgp,
        sums=(sums[0], sums[1]),
        top=top,
        root=entity,
        builder=builder,
        protected=protected,
    )


def _detached_names(der: bytes) -> frozenset[str]:
    """The digests an S/MIME signature needs of content hashed as it streams past (a
    multipart/signed part, or opaque signed data's content); in memory where a signer
    signs the content itself."""
    names = detached_digest_names(der)
    if not names:
        raise _Fallback("a signer signs the content itself")
    for name in names:
        hash_for_name(name)  # KeyError: unsupported (in memory it is reported)
    return names


def _pgp_detached(signature: bytes, opener: Opener, verifiers: Verifiers | None) -> _PgpDetached:
    """The OpenPGP signature part of a multipart/signed, read as the in-memory path reads
    it (where that fails, it reports the failure: in memory)."""
    if verifiers is None or not verifiers.available():
        raise _Fallback("no verifier for the OpenPGP signature")
    try:
        pysequoia.Sig.from_bytes(signature)
        issuers = pgpsig.signature_issuers(pgparmor.dearmor(signature))
    except Exception as exc:
        raise _Fallback("the OpenPGP signature does not read") from exc
    certs = list(opener.keys.pgp_certs_for_ids(issuers)) if issuers else []
    return _PgpDetached(signature, issuers, certs, verifiers)


def _holes_allowed(entity: Entity, token: bytes, depth: int) -> bool:
    """Every marker (``token``) in ``entity`` lies in a body nothing in the report reads:
    a leaf that is not text, outside any ``multipart/signed`` (whose parts are hashed)."""
    if token not in entity.raw:
        return True
    if token in entity.header_block or depth > MAX_DEPTH:
        return False
    ctype = entity.content_type
    if ctype.startswith("multipart/"):
        if ctype == "multipart/signed":
            return False
        return all(
            _holes_allowed(parse_entity(p, canonical=True), token, depth + 1)
            for p in split_multipart(entity)
        )
    return not ctype.startswith("text/")


def _output(
    layer: _Layer,
    plan: _Plan,
    opener: Opener,
    now: datetime,
    report: list[SecurityReport],
) -> Iterator[bytes]:
    """Pass 3 (see the module doc)."""
    yield plan.head
    hashers = {name: hashes.Hash(hash_for_name(name)) for name in plan.digests}
    pgp = plan.pgp
    verifier = pgp.verifiers.start(pgp.certs, pgp.signature) if pgp is not None else None
    verified = None
    length, crc = 0, 0
    try:
        for piece in layer.plaintext():
            at, length = length, length + len(piece)
            crc = zlib.crc32(piece, crc)
            if plan.signed is not None:
                lo, hi = max(plan.signed[0], at), min(plan.signed[1], length)
                if lo < hi:
                    view = memoryview(piece)[lo - at : hi - at]
                    for h in hashers.values():
                        h.update(view)
                    if verifier is not None:
                        verifier.write(view)
            lo, hi = max(plan.body[0], at), min(plan.body[1], length)
            if lo < hi:
                yield piece[lo - at : hi - at]
        if verifier is not None:
            verified = verifier.result()
    except (NotStreamable, DecryptStreamFailed, SealmailError) as exc:
        raise changed_file("opened") from exc
    finally:
        if verifier is not None:
            verifier.close()
    if (length, crc) != plan.sums:
        raise changed_file("opened")
    sigs = layer.signatures(now)
    if pgp is not None:
        sigs += _pgp_results(opener, pgp.issuers, verified, now)
    elif plan.signed is not None:
        digests = {name: h.finalize() for name, h in hashers.items()}
        sigs += opener.smime_verify_digests(plan.signature, digests, now=now)
    conclude(plan.top, plan.root, plan.builder, sigs, plan.protected, opener, now)
    report.append(plan.builder.build())
