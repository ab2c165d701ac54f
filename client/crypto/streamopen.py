"""Opening an S/MIME-encrypted message file in bounded memory.

Theory of operation
-------------------
:func:`client.crypto.recipes.open_raw` holds the message text, the DER, the plaintext
and the opened message: for a 50 MB attachment that was 7x the payload. Here the file
is read in three passes and only small things are kept:

1. **Envelope.** The outer header must say ``application/pkcs7-mime`` enveloped (or
   authEnveloped) data in base64. The base64 is decoded as it streams
   (:func:`client.mime.raw.b64_decode_stream`) into
   :class:`~client.crypto.cms_stream.EnvelopeStream`, which keeps the DER around the
   ciphertext. The RecipientInfos give the content-encryption key, exactly as
   :func:`~client.crypto.cms_envelope.decrypt` would find it (exactly one candidate key
   over all own identities; otherwise the in-memory path decides).
2. **Skeleton.** The content is decrypted; the padding or the GCM tag is checked at the
   end. On the way, :class:`~client.mime.stream.Hollow` keeps a skeleton of the inner
   entity (long base64 bodies cut out, a marker left in their place), and when the inner
   entity is an S/MIME ``multipart/signed`` its part offsets are found
   (:func:`~client.mime.stream.part_spans`). The skeleton goes through the same steps as
   :func:`client.mime.parse.open_message` (classify, peel the signature, protected
   headers, restored header), provided every marker lies in the body of a non-text
   leaf outside any nested signed part: nothing that reads those bodies is then skipped.
3. **Output.** The content is decrypted again; the opened message is the restored
   header and the root entity's octets, written as they come; the signed part is hashed
   as it passes, and the signature is checked with those digests
   (:func:`client.crypto.cms_verify.verify` ``detached_digests``). The report is complete
   when the pieces have all been taken. Each pass is summed (length, CRC-32 of the
   plaintext) and checked against the second: a file that changed is refused mid-way,
   and the caller's atomic write leaves nothing behind.

Whatever this path does not cover (OpenPGP, a second encryption layer, opaque signed
data, several candidate keys, ciphertext in nested segments, a marker in a text part)
makes :func:`open_stream` return None before anything is output; the caller then opens the
message in memory, which has the last word on errors too.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives import hashes

from client.crypto import cms_envelope
from client.crypto.cms_common import hash_for_name
from client.crypto.cms_stream import (
    DecryptStreamFailed,
    EnvelopeStream,
    NotStreamable,
    decrypt_pieces,
)
from client.crypto.cms_verify import detached_digest_names
from client.crypto.keys import KeyAccess
from client.crypto.recipes import Opener
from client.crypto.report import ReportBuilder, SecurityReport, SignatureResult
from client.crypto.streamprotect import changed_file
from client.errors import SealmailError
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
from client.mime.stream import Hollow, crlf_pieces, part_spans, split_header

__all__ = ["StreamedOpen", "open_stream"]

log = logging.getLogger(__name__)
Source = Callable[[], Iterable[bytes]]

#: Shortest run of base64 lines the skeleton leaves out (tests make it small).
HOLE_MIN = 1 << 16


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


def open_stream(source: Source, keys: KeyAccess, *, now: datetime) -> StreamedOpen | None:
    """Open the message ``source()`` yields (a fresh pass per call); None: open in memory."""
    try:
        return _open(source, keys, now)
    except (_Fallback, NotStreamable, DecryptStreamFailed, SealmailError) as exc:
        log.debug("streaming open: in memory instead (%s: %s)", type(exc).__name__, exc)
        return None
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        log.debug("streaming open: in memory instead", exc_info=True)
        return None


def _outer(source: Source) -> tuple[bytes, Iterator[bytes]]:
    split = split_header(crlf_pieces(source()), limit=MAX_HEADER_BYTES)
    if split is None:
        raise _Fallback("no header section")
    return split


@dataclass
class _Plan:
    """What the skeleton pass learnt, for the output pass."""

    head: bytes  # the restored header of the opened message
    body: tuple[int, int]  # the root entity's body in the plaintext
    signed: tuple[int, int] | None  # the signed part in the plaintext
    signature: bytes  # DER of the detached signature (when signed)
    digests: frozenset[str]
    sums: tuple[int, int]  # plaintext length, CRC-32
    top: Entity
    root: Entity
    builder: ReportBuilder
    protected: list[tuple[str, str]]


def _open(source: Source, keys: KeyAccess, now: datetime) -> StreamedOpen:
    header_block, body = _outer(source)
    top = parse_entity(header_block + b"\r\n\r\n", canonical=True)
    if (
        top.header_block != header_block
        or classify(top) != "smime-enveloped"
        or top.transfer_encoding != "base64"
    ):
        raise _Fallback("not an S/MIME envelope in base64")
    # pass 1: the envelope around the ciphertext, and the key
    env = EnvelopeStream(b64_decode_stream(body))
    for _ in env.ciphertext():
        pass
    stub = env.stub()
    parsed = cms_envelope._parse(stub)
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
    ident, cek = choices[0]
    opener = Opener(keys)
    builder = ReportBuilder()
    recipients = [ri.describe() for ri in parsed.recipients]
    builder.layers.append(opener.smime_layer(parsed.cipher.name, recipients, ident.certificate))

    def plaintext() -> Iterator[bytes]:
        again, body = _outer(source)
        if again != header_block:
            raise NotStreamable("the header changed")
        envelope = EnvelopeStream(b64_decode_stream(body))
        yield from crlf_pieces(decrypt_pieces(parsed, cek, envelope.ciphertext()))
        if envelope.stub() != stub:
            raise NotStreamable("the envelope changed")

    plan = _skeleton(plaintext, top, builder, opener, now)
    result = StreamedOpen(iter(()))
    result.pieces = _output(plaintext, plan, opener, now, result._report)
    return result


def _skeleton(
    plaintext: Callable[[], Iterator[bytes]],
    top: Entity,
    builder: ReportBuilder,
    opener: Opener,
    now: datetime,
) -> _Plan:
    """Pass 2 (see the module doc)."""
    token = b"SealmailHole" + os.urandom(12).hex().encode()
    hollow = Hollow(token + b"\r\n", HOLE_MIN)  # a part's last CRLF is its delimiter's
    sums = [0, 0]

    def fed() -> Iterator[bytes]:
        for piece in plaintext():
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
    if classify(head) == "smime-signed":
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
    signature, digests = b"", frozenset[str]()
    kind = classify(entity)
    if kind == "smime-signed":
        parts = split_multipart(entity)
        if len(parts) != 2 or spans is None or len(spans) != 2 or token in parts[1]:
            raise _Fallback("signed parts")
        signature = parse_entity(parts[1], canonical=True).decoded_body()
        names = detached_digest_names(signature)
        if not names:
            raise _Fallback("the signature needs its content")
        for name in names:
            hash_for_name(name)  # KeyError: unsupported (in memory it is reported)
        digests = names
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
        sums=(sums[0], sums[1]),
        top=top,
        root=entity,
        builder=builder,
        protected=protected,
    )


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
    plaintext: Callable[[], Iterator[bytes]],
    plan: _Plan,
    opener: Opener,
    now: datetime,
    report: list[SecurityReport],
) -> Iterator[bytes]:
    """Pass 3 (see the module doc)."""
    yield plan.head
    hashers = {name: hashes.Hash(hash_for_name(name)) for name in plan.digests}
    length, crc = 0, 0
    try:
        for piece in plaintext():
            at, length = length, length + len(piece)
            crc = zlib.crc32(piece, crc)
            if plan.signed is not None:
                lo, hi = max(plan.signed[0], at), min(plan.signed[1], length)
                if lo < hi:
                    view = memoryview(piece)[lo - at : hi - at]
                    for h in hashers.values():
                        h.update(view)
            lo, hi = max(plan.body[0], at), min(plan.body[1], length)
            if lo < hi:
                yield piece[lo - at : hi - at]
    except (NotStreamable, DecryptStreamFailed, SealmailError) as exc:
        raise changed_file("opened") from exc
    if (length, crc) != plan.sums:
        raise changed_file("opened")
    sigs: list[SignatureResult] = []
    if plan.signed is not None:
        digests = {name: h.finalize() for name, h in hashers.items()}
        sigs = opener.smime_verify_digests(plan.signature, digests, now=now)
    conclude(plan.top, plan.root, plan.builder, sigs, plan.protected, opener, now)
    report.append(plan.builder.build())
