"""Protect a message file as a stream: the file is read twice, never held whole.

Theory of operation
-------------------
:func:`client.crypto.recipes.protect` takes the message as bytes and builds the result
in memory: for a 50 MB attachment that is several full-size copies (peak RSS 6-7x the
payload). :func:`protect_stream` writes the same kind of message from a ``source`` that
yields the file in pieces each time it is called (the I/O shell opens the file)::

    pass 1: source() -> crlf_pieces -> split_header -> header block
            -> compose.prepare_head -> outer fields, inner header block
            method, recipients' keys, signer: every refusal happens here, before output
            compose.plan_body (its own passes): the body as prepare() would make it 7-bit
            safe -- small parts re-encoded in memory, large ones checked as they pass
    pass 2: source() -> ... -> compose.emit_body -> inner header + body pieces
            -> [OPS] Literal(length from pass 1) [Signature]   (pgpsign.StreamSigner)
            -> encrypt_stream (SEIPDv1 + MDC, partial lengths) -> armor_chunks (CRLF)
            -> PGP/MIME frame around the armor                  -> pieces to write

Memory stays at a few 1 MiB pieces whatever the size. ``None`` means "not streamable,
use :func:`~client.crypto.recipes.protect`": a large part that is not 7-bit clean (see
:func:`~client.mime.compose.plan_body`), no blank line after the header section within
8 MiB, S/MIME, or a signing key whose signatures the streaming signer cannot make (see
:mod:`client.crypto.pgpsign`). The inner entity is byte for byte the one
:func:`~client.mime.compose.prepare` builds (tested).

If the file changes between the passes (a different header block, body length or
CRC-32 of the body), the stream raises :class:`~client.errors.UsageError` mid-way; the
shell writes atomically, so nothing is left behind.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pysequoia

from client.crypto import pgparmor, pgpsign, pgpstream
from client.crypto.keys import KeyAccess
from client.crypto.pgpkeys import load_signing_key
from client.crypto.pgppackets import Tag, packet_header
from client.crypto.recipes import (
    _choose_method,
    parties,
    pgp_recipient_certs,
    smime_recipient_certs,
)
from client.errors import UnsupportedMessage, UsageError
from client.mime import compose
from client.mime.stream import crlf_pieces, split_header

__all__ = ["HEADER_LIMIT", "StreamedMessage", "changed_file", "protect_stream"]

log = logging.getLogger(__name__)
Rng = Callable[[int], bytes]
Source = Callable[[], Iterable[bytes]]
#: The header section must end (blank line) within this many octets to be streamed.
HEADER_LIMIT = 8 << 20
_LITERAL_META = b"b\x00\x00\x00\x00\x00"  # binary, no file name, date 0


@dataclass(frozen=True)
class StreamedMessage:
    """A protected message to be written out piece by piece (iterate :attr:`pieces` once)."""

    pieces: Iterator[bytes]
    method: str
    cipher: str
    signed: bool
    encrypted_to: tuple[str, ...]


def protect_stream(
    source: Source,
    keys: KeyAccess,
    *,
    encrypt_to: Sequence[str],
    sender: str | None = None,
    sign: bool = False,
    method: str = "auto",
    header_protection: bool = True,
    now: datetime,
    rng: Rng,
) -> StreamedMessage | None:
    """Encrypt (and sign) the message ``source`` yields; None if it must go in memory."""
    split = split_header(crlf_pieces(source()), limit=HEADER_LIMIT)
    if split is None:
        return None
    header_block = split[0]
    del split  # the body is read by plan_body, in passes of its own
    head = compose.parse_head(header_block, now=now, rng=rng)
    if head is None:
        return None
    sender, recipients = parties(
        sender, head.sender, encrypt_to, head.recipients, sign=sign, encrypt=True
    )
    if _choose_method(keys, recipients, method, now) == "smime":
        return _smime(source, header_block, head, keys, recipients, sender, sign,
                      header_protection, now, rng)  # fmt: skip
    certs = pgp_recipient_certs(keys, recipients, sender, now)
    signer = _stream_signer(keys.pgp_signer(sender, now=now)) if sign and sender else None
    if sign and sender and signer is None:
        return None
    body = _Body(source, header_block)
    if not body.plan(head.content_block):
        return None
    prepared = compose.finish_head(head, encrypt=True, header_protection=header_protection)
    body.set_inner_head(prepared.inner)

    def inner_packets() -> Iterator[bytes]:
        if signer is not None:
            yield signer.one_pass_packet()
        yield packet_header(Tag.LITERAL, len(_LITERAL_META) + body.length) + _LITERAL_META
        for piece in body.inner():
            if signer is not None:
                signer.update(piece)
            yield piece
        if signer is not None:
            yield signer.signature_packet()

    encrypted = pgpstream.encrypt_stream(inner_packets(), recipients=certs, rng=rng, now=now)
    before, after = compose.pgp_encrypted_frame(prepared.outer, rng)
    armored = pgparmor.armor_chunks(encrypted, "MESSAGE", eol=b"\r\n")
    return StreamedMessage(
        _framed(before, armored, after), "pgp", "AES-256", signer is not None, tuple(recipients)
    )


def _smime(
    source: Source,
    header_block: bytes,
    head: compose.MessageHead,
    keys: KeyAccess,
    recipients: Sequence[str],
    sender: str | None,
    sign: bool,
    header_protection: bool,
    now: datetime,
    rng: Rng,
) -> StreamedMessage | None:
    """The S/MIME stream: [hash pass -> detached signature], then multipart/signed framing
    around the inner entity -> EnvelopedData / AuthEnvelopedData -> base64."""
    from client.crypto import cms  # S/MIME only: not on the PGP path

    ident = keys.smime_signer(sender, now=now) if sign and sender else None
    certs = smime_recipient_certs(keys, recipients, sender, now)
    use_gcm = all(keys.smime_supports_gcm(c) for c in certs)
    cipher: cms.EncryptCipher = "aes256-gcm" if use_gcm else "aes256-cbc"
    body = _Body(source, header_block)
    if not body.plan(head.content_block):
        return None
    prepared = compose.finish_head(head, encrypt=True, header_protection=header_protection)
    body.set_inner_head(prepared.inner)
    before = after = b""
    if ident is not None:
        digest = cms.signing_digest(ident.private_key)
        h = hashlib.new(digest)
        for piece in body.inner():
            h.update(piece)
        sig = cms.sign(
            b"", content_digest=h.digest(), signer_cert=ident.certificate,
            signer_key=ident.private_key, extra_certs=ident.chain, detached=True, now=now,
        )  # fmt: skip
        before, after = compose.smime_signed_frame(sig, cms.micalg(digest), rng)

    def content() -> Iterator[bytes]:
        yield before
        yield from body.inner()
        yield after

    length = len(before) + body.length + len(after)
    der = cms.encrypt_stream(content(), length, certs, cipher=cipher, rng=rng)
    pieces = compose.smime_enveloped_stream(prepared.outer, der, authenticated=use_gcm)
    return StreamedMessage(pieces, "smime", cipher, ident is not None, tuple(recipients))


class _Body:
    """The message body as the inner entity, read in passes from ``source``.

    Every full pass is summed (length, CRC-32); :meth:`inner` raises UsageError when a
    pass does not match the first (the file changed), before its last piece is followed
    by anything else. After a full pass that found only CRLF line ends, later passes skip
    the line-end rewrite (the sums still catch a file that changed meanwhile)."""

    def __init__(self, source: Source, header_block: bytes) -> None:
        self._source, self._header_block = source, header_block
        self.inner_head = b""  # set once the body is planned (see compose.finish_head)
        self._sums: list[tuple[int, int]] = []
        self._canonical = False
        self._plan: compose.BodyPlan | None = None
        self.length = 0  # of the inner entity (head and body)

    def _pass(self) -> Iterator[bytes]:
        changed: list[bool] = []
        raw = self._source()
        again = split_header(
            raw if self._canonical else crlf_pieces(raw, changed), limit=HEADER_LIMIT
        )
        if again is None or again[0] != self._header_block:
            raise changed_file()

        def at_end() -> None:
            self._canonical = self._canonical or not changed

        return _summed(again[1], self._sums, at_end)

    def set_inner_head(self, inner_head: bytes) -> None:
        """The inner entity's header block (with the blank line), once the body is planned."""
        assert self._plan is not None
        self.inner_head = inner_head
        self.length = len(inner_head) + self._plan.length

    def plan(self, content_block: bytes) -> bool:
        """Plan the body (see compose.plan_body); False if it cannot stream."""
        self._plan = compose.plan_body(content_block, self._pass)
        if self._plan is None:
            return False
        if not self._sums:  # pragma: no cover - plan_body reads the body to its end once
            raise AssertionError("plan_body did not read the whole body")
        return True

    def inner(self) -> Iterator[bytes]:
        """The inner entity's pieces, from a fresh pass, checked against the plan."""
        assert self._plan is not None and self.inner_head
        planned = self._sums[0]
        source_pieces = self._pass()
        seen = 0
        for piece in itertools.chain(
            (self.inner_head,), compose.emit_body(self._plan, source_pieces)
        ):
            seen += len(piece)
            if seen > self.length:
                raise changed_file()
            yield piece
        for _ in source_pieces:  # read to the end: the sum covers the whole body
            pass
        if seen != self.length or self._sums[-1] != planned:
            raise changed_file()


def _stream_signer(secret: Any) -> pgpsign.StreamSigner | None:
    """A streaming signer shaped by a fresh pysequoia signature, or None if the key's
    signatures cannot be made here (the caller then signs in memory)."""
    template = pysequoia.sign(
        secret.signer(), b"", mode=pysequoia.SignatureMode.DETACHED, armor=False
    )
    try:
        shape = pgpsign.parse_template(bytes(template))
        password = secret.password.encode("utf-8") if secret.password else None
        key = load_signing_key(bytes(secret.tsk), shape.issuer_fingerprint, password)
        return pgpsign.StreamSigner(shape, key)
    except UnsupportedMessage as exc:
        log.info("signing in memory: %s", exc)
        return None


def _summed(
    pieces: Iterable[bytes], sums: list[tuple[int, int]], at_end: Callable[[], None]
) -> Iterator[bytes]:
    """``pieces``; once they are all read, their (length, CRC-32) is appended to ``sums``
    (to notice a file that changed between passes, even to the same length), then
    ``at_end`` is called."""
    length, crc = 0, 0
    for piece in pieces:
        length, crc = length + len(piece), zlib.crc32(piece, crc)
        yield piece
    sums.append((length, crc))
    at_end()


def _framed(before: bytes, armored: Iterator[bytes], after: bytes) -> Iterator[bytes]:
    """``before``, the armored pieces with the final line end dropped, ``after``."""
    yield before
    held: bytes | None = None
    for piece in armored:
        if held is not None:
            yield held
        held = piece
    assert held is not None  # armor_chunks always ends with its footer
    yield held.rstrip(b"\r\n") + after


def changed_file(doing: str = "protected") -> UsageError:
    return UsageError(
        f"the message file changed while it was being {doing}",
        hint="Save the message, then run the command again; nothing was written.",
    )
