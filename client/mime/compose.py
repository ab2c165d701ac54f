"""Building S/MIME and PGP/MIME structures around a message, as exact bytes.

Theory of operation
-------------------
:func:`prepare` splits a user's RFC 5322 message into the *outer* header fields (what
the transport sees) and the *inner* entity (the body with its Content-* fields), which
becomes the Cryptographic Payload. Leaf parts are re-encoded to 7-bit (quoted-printable
for text, base64 otherwise) because signed data must survive 7-bit transports unchanged;
with header protection the user's header fields are copied into the inner root part
(RFC 9788), and for encryption the outer Subject becomes ``[...]``.

The ``wrap_*`` functions put a signature or ciphertext around an inner entity and return
the new entity's bytes; they are pure string assembly, so the bytes that were signed are
exactly the bytes that are sent. :func:`assemble` joins outer header fields and an entity
into the final message (CRLF line endings). :func:`pgp_encrypted_message` and
:func:`smime_enveloped_message` give the same bytes as ``assemble(wrap_...)`` but join the
(large) payload once. Boundaries come from ``rng`` so output is deterministic under test.
"""

from __future__ import annotations

import base64
import email
import email.message
import email.policy
import quopri
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.utils import format_datetime, getaddresses

from client.errors import MalformedMessage, MessageTooLarge, TooManyRecipients, UsageError
from client.mime.headers import OBSCURED_SUBJECT, PROTECTED, hp_outer_fields, is_content_header
from client.mime.raw import (
    MAX_DEPTH,
    MAX_PARTS,
    b64_lines,
    b64_pieces,
    b64_stream,
    check_foldable,
    decoded_payload,
    parse_entity,
    short_lines,
    split_multipart,
    to_crlf,
)
from client.mime.stream import SevenBitCheck, part_spans, span_pieces

__all__ = [
    "BodyPlan",
    "MessageHead",
    "Prepared",
    "assemble",
    "emit_body",
    "finish_head",
    "parse_head",
    "pgp_encrypted_frame",
    "pgp_encrypted_message",
    "plan_body",
    "prepare",
    "smime_enveloped_message",
    "smime_enveloped_stream",
    "smime_signed_frame",
    "wrap_pgp_encrypted",
    "wrap_pgp_signed",
    "wrap_smime_enveloped",
    "wrap_smime_signed",
]

Rng = Callable[[int], bytes]
_POLICY = email.policy.SMTP.clone(max_line_length=78)
_TRANSPORT_ONLY = {"bcc", "resent-bcc", "x-sealmail-level"}


@dataclass(frozen=True)
class Prepared:
    """A message split for protection."""

    outer: tuple[tuple[str, str], ...]  # header fields for the outside, in order
    inner: bytes  # the Cryptographic Payload's root entity (CRLF)
    sender: str | None  # bare address of From
    recipients: tuple[str, ...]  # bare addresses of To, Cc, Bcc (lowercased, unique)


def _boundary(rng: Rng) -> str:
    return "----sealmail-" + rng(12).hex()


def _addresses(msg: email.message.Message, *names: str) -> list[str]:
    values = [str(v) for n in names for v in (msg.get_all(n) or [])]
    out: dict[str, None] = {}  # ordered and O(1) membership (10,000 recipients)
    for _, addr in getaddresses(values):
        a = addr.strip().lower()
        if a and "@" in a:
            out.setdefault(a)
    return list(out)


def _make_7bit(msg: email.message.Message) -> None:
    """Re-encode every leaf whose body is not 7-bit clean (in place)."""
    for part in msg.walk():
        if part.is_multipart():
            continue
        cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
        if cte in {"base64", "quoted-printable"}:
            continue
        raw = decoded_payload(part)
        if not isinstance(raw, bytes):
            raw = b""
        long_line = any(len(line) > 76 for line in raw.split(b"\n"))
        trailing_ws = any(line.rstrip(b"\r").endswith((b" ", b"\t")) for line in raw.split(b"\n"))
        if raw.isascii() and not long_line and not trailing_ws and not raw.startswith(b"From "):
            continue
        del part["Content-Transfer-Encoding"]
        if part.get_content_maintype() == "text":
            text = raw.replace(b"\r\n", b"\n")
            encoded = quopri.encodestring(text, quotetabs=False).replace(b"\nFrom ", b"\n=46rom ")
            if encoded.startswith(b"From "):
                encoded = b"=46rom " + encoded[5:]
            part.set_payload(encoded.decode("ascii"))
            part["Content-Transfer-Encoding"] = "quoted-printable"
        else:
            part.set_payload(base64.encodebytes(raw).decode("ascii"))
            part["Content-Transfer-Encoding"] = "base64"


def _serialize(msg: email.message.Message) -> bytes:
    from email.generator import BytesGenerator
    from io import BytesIO

    buf = BytesIO()
    BytesGenerator(buf, mangle_from_=False, policy=_POLICY).flatten(msg)  # type: ignore[arg-type]
    return to_crlf(buf.getvalue())


_FIELD_SPLIT = re.compile(rb"\r\n(?![ \t])")


def _seven_bit_safe(body: bytes) -> bool:
    """True when ``body`` can be signed as it is: ASCII, short lines, nothing MTAs rewrite."""
    return (
        body.isascii()
        and b" \r\n" not in body
        and b"\t\r\n" not in body
        and not body.startswith(b"From ")
        and b"\r\nFrom " not in body
        and short_lines(body)
    )


def _fields(header_block: bytes) -> list[bytes]:
    """The raw header fields of a header block (folding kept), in order."""
    return [f for f in _FIELD_SPLIT.split(header_block) if f.strip()]


def _field_name(field: bytes) -> str:
    return field.split(b":", 1)[0].strip().decode("ascii", "replace").lower()


def _to_7bit(entity: bytes, depth: int = 0) -> bytes:
    """``entity`` with every leaf that is not 7-bit safe re-encoded; safe parts untouched.

    Only leaves that need it go through :mod:`email` (parse, re-encode, regenerate), so a
    message whose 50 MB attachment is already base64 costs a few C-speed scans.
    """
    if depth > MAX_DEPTH:
        raise MessageTooLarge("the message is nested too deeply")
    e = parse_entity(entity, canonical=True)
    if e.content_type.startswith("multipart/"):
        parts = split_multipart(e)
        header_block, boundary = e.header_block, e.param("boundary") or ""
        del e  # its body copy is not needed while the parts are looked at
        new = [_to_7bit(p, depth + 1) for p in parts]
        if new == parts:
            return entity
        delim = b"--" + boundary.encode("ascii", "replace")
        pieces = [header_block, b"\r\n\r\n"]
        for p in new:
            pieces += (delim, b"\r\n", p, b"\r\n")
        return b"".join([*pieces, delim, b"--\r\n"])
    if e.header_block.isascii() and _seven_bit_safe(e.body):
        return entity
    # the email package refolds every header of the part it regenerates, also those of a
    # message/rfc822 inside it: look at every Content-Type/-Disposition line of the part
    check_foldable(entity)
    try:
        msg = email.message_from_bytes(entity, policy=email.policy.default)
        _make_7bit(msg)
        return _serialize(msg)
    except MalformedMessage:
        raise
    except Exception as exc:  # the email package on 8-bit junk (UnicodeError...)
        raise MalformedMessage("a part of the message could not be parsed") from exc


#: Addresses per message (To + Cc + Bcc): Postfix's default ``smtpd_recipient_limit``; the
#: email library's address parser is slow on huge lists, so the count is taken on raw bytes.
MAX_RECIPIENTS = 1000
_ADDRESS_FIELDS = frozenset({"to", "cc", "bcc"})


def _check_recipient_count(header_block: bytes) -> None:
    """Refuse, before any parsing, a message addressed to more than :data:`MAX_RECIPIENTS`
    (an upper bound: every ``@`` in To/Cc/Bcc counts, even inside a quoted name)."""
    count = sum(f.count(b"@") for f in _fields(header_block) if _field_name(f) in _ADDRESS_FIELDS)
    if count > MAX_RECIPIENTS:
        raise TooManyRecipients(
            f"the message is addressed to about {count:,} recipients; "
            f"at most {MAX_RECIPIENTS:,} are sent in one message"
        )


def prepare(
    raw: bytes,
    *,
    encrypt: bool,
    header_protection: bool = True,
    now: datetime,
    rng: Rng,
) -> Prepared:
    """Split ``raw`` (an RFC 5322 message) into outer fields and the inner entity.

    Only the header section is parsed as a whole; the body is made 7-bit safe part by part
    (see :func:`_to_7bit`), so large, already-encoded attachments are never re-encoded.
    """
    canonical = to_crlf(raw)
    split = canonical.find(b"\r\n\r\n")
    if split < 0:
        if canonical.find(b":") < 0:
            raise MalformedMessage("the message to protect has no header section")
        split = len(canonical)
        canonical += b"\r\n\r\n"
    header_block, body = canonical[:split], memoryview(canonical)[split + 4 :]
    head = _parse_head(header_block, now, rng)
    entity = _to_7bit(b"".join([head.content_block, b"\r\n\r\n", body]))
    body.release()
    split = entity.find(b"\r\n\r\n")
    outer, inner_head = _finish_head(head, entity[: split + 4], encrypt, header_protection)
    entity_body = memoryview(entity)[split + 4 :]  # copied once, into the result
    return Prepared(
        outer=outer,
        inner=b"".join([inner_head, entity_body]),
        sender=head.sender,
        recipients=head.recipients,
    )


def parse_head(header_block: bytes, *, now: datetime, rng: Rng) -> MessageHead | None:
    """The first step of :func:`prepare` for a message whose body streams past.

    ``header_block`` is the canonical (CRLF) header section without the blank line. Next,
    :func:`plan_body` plans the body from ``content_block``; only if it can be streamed,
    :func:`finish_head` makes the outer fields and the inner header block (the order of
    :func:`prepare`, which settles the body before it rewrites header fields). None when
    the message's own Content-* fields are not ASCII (:func:`prepare` rewrites them).
    """
    head = _parse_head(header_block, now, rng)
    return head if head.content_block.isascii() else None


def finish_head(head: MessageHead, *, encrypt: bool, header_protection: bool = True) -> Prepared:
    """:func:`prepare`'s result for a streamed body: ``inner`` is the inner entity's header
    block *and* the blank line; the inner entity is ``inner`` followed by the body
    :func:`plan_body` planned."""
    outer, inner_head = _finish_head(
        head, head.content_block + b"\r\n\r\n", encrypt, header_protection
    )
    return Prepared(outer, inner_head, head.sender, head.recipients)


#: Body parts up to this size are re-encoded in memory when they are not 7-bit safe; a
#: larger part must already be safe for the message to stream.
SMALL_PART = 4 << 20
#: At most this much re-encoded part data is held between the passes.
MAX_REENCODED = 16 << 20


@dataclass(frozen=True)
class BodyPlan:
    """The inner body as pieces: literal octets, or (start, end) spans of the canonical
    body, in order; ``length`` is their total."""

    segments: tuple[bytes | tuple[int, int], ...]
    length: int


def plan_body(content_block: bytes, body: Callable[[], Iterable[bytes]]) -> BodyPlan | None:
    """What :func:`prepare` (through :func:`_to_7bit`) makes of a canonical body that
    ``body()`` yields in pieces (twice), holding only small parts in memory; None when it
    cannot be done that way (the caller then uses :func:`prepare`).

    A single-part body must be 7-bit safe as a whole. In a multipart body every part of up
    to :data:`SMALL_PART` octets goes through :func:`_to_7bit` exactly as in memory, and
    every larger part must be 7-bit safe as a whole (then :func:`_to_7bit` leaves it as it
    is). If any part changes, the multipart is rebuilt as :func:`_to_7bit` rebuilds it
    (preamble and epilogue dropped).
    """
    try:
        top = parse_entity(content_block + b"\r\n\r\n", canonical=True)
    except MalformedMessage:
        return None
    if not top.content_type.startswith("multipart/"):
        # _to_7bit judges the entity's body: normally the streamed body alone, but fields
        # without a proper header section are body to the parser too (top.body)
        check = SevenBitCheck()
        check.update(top.body)
        for piece in body():
            check.update(piece)
            if not check.safe:
                return None
        if not (check.safe and top.header_block.isascii()):
            return None
        length = check.length - len(top.body)
        return BodyPlan(((0, length),), length)
    boundary = top.param("boundary") or ""
    spans = part_spans(body(), boundary, max_parts=MAX_PARTS) if 0 < len(boundary) <= 200 else None
    if spans is None:
        return None
    new: dict[int, bytes] = {}
    checks: dict[int, SevenBitCheck] = {}
    small = {k for k, (a, b) in enumerate(spans) if b - a <= SMALL_PART}
    done: set[int] = set()
    held, current = bytearray(), -1
    reencoded = 0

    def finish(k: int, data: bytes) -> None:
        nonlocal reencoded
        done.add(k)
        out = _to_7bit(data, 1)
        if out != data:
            new[k] = out
            reencoded += len(out)
            if reencoded > MAX_REENCODED:
                raise _NotStreamable

    total = 0

    def counted() -> Iterator[bytes]:
        nonlocal total
        for piece in body():
            total += len(piece)
            yield piece

    pieces = counted()
    try:
        for k, chunk in span_pieces(pieces, spans):
            if k != current and current in small:
                finish(current, bytes(held))
                held.clear()
            current = k
            if k in small:
                held += chunk
            else:
                check = checks.setdefault(k, SevenBitCheck())
                check.update(chunk)
                if not check.safe:
                    return None
        if current in small:
            finish(current, bytes(held))
        for k in sorted(small - done):
            finish(k, b"")  # empty parts yield no octets
    except _NotStreamable:
        return None
    for _ in pieces:  # the rest (an epilogue) counts towards the length
        pass
    if not new:
        return BodyPlan(((0, total),), total)
    dash = b"--" + boundary.encode("ascii", "replace")
    segments: list[bytes | tuple[int, int]] = []
    for k, (a, b) in enumerate(spans):
        segments += [dash + b"\r\n", new.get(k, (a, max(a, b))), b"\r\n"]
    segments.append(dash + b"--\r\n")
    return BodyPlan(
        tuple(segments), sum(len(s) if isinstance(s, bytes) else s[1] - s[0] for s in segments)
    )


class _NotStreamable(Exception):
    pass


def emit_body(plan: BodyPlan, body: Iterable[bytes]) -> Iterator[bytes]:
    """The inner body :func:`plan_body` planned, from a fresh pass over the body."""
    spans = [s for s in plan.segments if isinstance(s, tuple)]
    found = span_pieces(body, spans)
    pending = next(found, None)
    k = 0
    for segment in plan.segments:
        if isinstance(segment, bytes):
            yield segment
            continue
        while pending is not None and pending[0] == k:
            yield pending[1]
            pending = next(found, None)
        k += 1


@dataclass(frozen=True)
class MessageHead:
    msg: email.message.Message
    sender: str | None
    recipients: tuple[str, ...]
    message_fields: list[tuple[str, str]]
    content_block: bytes  # the message's own Content-* fields (raw, CRLF-joined)


#: What the email package raises on junk it parses lazily (a header's value is parsed
#: when it is read); the differential protect fuzzer met AttributeError from its address
#: parser, ValueError from set_param and OverflowError from a Date with a huge year. At
#: the protect boundary all are MalformedMessage.
_EMAIL_ERRORS = (
    ValueError,
    TypeError,
    AttributeError,
    LookupError,
    ArithmeticError,
    RecursionError,
)


#: The header section of a message to protect, and any one field of it, at most: the email
#: package refolds the fields, and its encoded-word folding grows faster than linearly
#: (a 64 KB non-ASCII Subject takes 0.8 s, a 4 MB one minutes: found by fuzzing). A
#: message to 1,000 recipients with long names has ~60 KB of header.
MAX_PROTECT_HEADER = 256 << 10
MAX_PROTECT_FIELD = 128 << 10


#: Non-ASCII octets in the address fields, at most: the email package folds a non-ASCII
#: address at ~2 ms per character (0.6 ms in a display name), so 43 KB of them took
#: minutes (found by fuzzing); 1,000 recipients named "Müller" use 2,000.
MAX_ADDRESS_NON_ASCII = 4096
_ADDRESS_FIELD_NAMES = frozenset({"from", "sender", "reply-to", "to", "cc", "bcc"})


def _check_header_size(header_block: bytes) -> None:
    fields = _fields(header_block)
    if len(header_block) > MAX_PROTECT_HEADER or any(len(f) > MAX_PROTECT_FIELD for f in fields):
        raise MessageTooLarge(
            f"the message's header section is larger than {MAX_PROTECT_HEADER >> 10} KiB "
            f"(or one field larger than {MAX_PROTECT_FIELD >> 10} KiB)",
            hint="Shorten the subject or split the recipients into several messages.",
        )
    if header_block.isascii():
        return
    non_ascii = 0
    for field in fields:
        if field.isascii():
            continue
        try:
            field.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(
                f"the {_field_name(field)} field holds octets that are not UTF-8 text",
                hint="Save the message again from your mail program, then protect it.",
            ) from exc
        if _field_name(field) in _ADDRESS_FIELD_NAMES:
            non_ascii += sum(1 for octet in field if octet > 127)
    if non_ascii > MAX_ADDRESS_NON_ASCII:
        raise MessageTooLarge(
            f"the address fields hold more than {MAX_ADDRESS_NON_ASCII:,} non-ASCII octets",
            hint="Split the recipients into several messages.",
        )


def _parse_head(header_block: bytes, now: datetime, rng: Rng) -> MessageHead:
    _check_recipient_count(header_block)
    _check_header_size(header_block)
    check_foldable(header_block)  # its Content-* fields are folded into the inner entity
    try:
        return _read_head(header_block, now, rng)
    except _EMAIL_ERRORS as exc:  # UnicodeError is a ValueError
        raise MalformedMessage("the message to protect has a header that cannot be read") from exc


def _read_head(header_block: bytes, now: datetime, rng: Rng) -> MessageHead:
    try:
        msg = BytesHeaderParser(policy=email.policy.default).parsebytes(header_block + b"\r\n\r\n")
    except Exception as exc:
        raise MalformedMessage("the message to protect could not be parsed") from exc
    senders = _addresses(msg, "From")
    sender = senders[0] if senders else None
    recipients = tuple(_addresses(msg, "To", "Cc", "Bcc"))

    # Ensure Date and Message-ID exist: they are part of what is protected.
    if msg.get("Date") is None:
        msg["Date"] = format_datetime(now)
    if msg.get("Message-ID") is None:
        domain = sender.rsplit("@", 1)[1] if sender else "sealmail.invalid"
        msg["Message-ID"] = f"<{rng(16).hex()}@{domain}>"
    message_fields = [
        (name, str(value))
        for name, value in msg.items()
        if not is_content_header(name) and name.lower() not in _TRANSPORT_ONLY
    ]

    # The body entity: the message's own Content-* fields (raw) over its body.
    content = [
        f
        for f in _fields(header_block)
        if is_content_header(_field_name(f)) and _field_name(f) != "mime-version"
    ]
    if not any(_field_name(f) == "content-type" for f in content):
        content.insert(0, b"Content-Type: text/plain; charset=us-ascii")
    return MessageHead(msg, sender, recipients, message_fields, b"\r\n".join(content))


def _finish_head(
    head: MessageHead, entity_head: bytes, encrypt: bool, header_protection: bool
) -> tuple[tuple[tuple[str, str], ...], bytes]:
    """The outer fields, and the inner root's header block (with the blank line) made
    from the entity's own header block ``entity_head`` (ending in the blank line).

    The email package refuses or chokes on some junk in fields it must rewrite (a CR in a
    parameter, 8-bit octets it cannot encode): that is MalformedMessage, never its own
    exception (found by the differential protect fuzzer)."""
    try:
        return _finish_head_fields(head, entity_head, encrypt, header_protection)
    except MalformedMessage:
        raise
    except _EMAIL_ERRORS as exc:
        raise MalformedMessage(
            "a header field of the message holds characters that cannot be sent",
            hint="Save the message again from your mail program, then protect it.",
        ) from exc


def _finish_head_fields(
    head: MessageHead, entity_head: bytes, encrypt: bool, header_protection: bool
) -> tuple[tuple[tuple[str, str], ...], bytes]:
    inner = BytesHeaderParser(policy=email.policy.default).parsebytes(entity_head)
    message_fields = head.message_fields
    outer: list[tuple[str, str]] = []
    for name, value in message_fields:
        if encrypt and header_protection and name.lower() == "subject":
            outer.append(("Subject", OBSCURED_SUBJECT))
        else:
            outer.append((name, value))
    if header_protection:
        if encrypt and head.msg.get("Subject") is None:
            outer.append(("Subject", OBSCURED_SUBJECT))
        protected = {p.lower() for p in PROTECTED}
        for name, value in message_fields:
            if name.lower() in protected:
                try:
                    inner[name] = value
                except ValueError as exc:  # a second From, Subject, Date...
                    if "at most" not in str(exc):
                        raise
                    raise MalformedMessage(
                        f"the message has more than one {name} field",
                        hint="Remove the extra header field, then protect the message again.",
                    ) from exc
        inner.set_param("hp", "cipher" if encrypt else "clear")
        if encrypt:
            shown = email.message_from_bytes(b"", policy=email.policy.default)
            for name, value in outer:
                shown[name] = value
            for field in hp_outer_fields(shown):
                inner["HP-Outer"] = field
    folded = b"".join(
        _POLICY.header_factory(n, str(v)).fold(policy=_POLICY).encode("ascii")
        for n, v in inner.items()
    )
    return tuple(outer), folded + b"\r\n"


def _b64_lines(data: bytes) -> bytes:
    """Base64 in 76-character CRLF lines (RFC 2045), at C speed."""
    return b64_lines(data)


def _multipart(content_type: str, preamble: str, parts: list[bytes], boundary: str) -> bytes:
    head = f'Content-Type: {content_type};\r\n boundary="{boundary}"\r\n\r\n{preamble}\r\n'
    delim = f"--{boundary}\r\n".encode("ascii")
    pieces = [head.encode("ascii")]
    for part in parts:
        pieces += (delim, part, b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(pieces)  # one copy, not one per part


def wrap_smime_signed(inner: bytes, signature_der: bytes, micalg: str, rng: Rng) -> bytes:
    """``multipart/signed`` with a detached ``application/pkcs7-signature`` (RFC 8551 §3.5.3)."""
    sig_part = (
        b'Content-Type: application/pkcs7-signature; name="smime.p7s"\r\n'
        b"Content-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="smime.p7s"\r\n'
        b"Content-Description: S/MIME Cryptographic Signature\r\n\r\n" + _b64_lines(signature_der)
    )
    return _multipart(
        f'multipart/signed; protocol="application/pkcs7-signature"; micalg={micalg}',
        "This is a cryptographically signed message in MIME format.\r\n",
        [inner, sig_part.rstrip(b"\r\n")],
        _boundary(rng),
    )


def wrap_pgp_signed(inner: bytes, armored_signature: bytes, micalg: str, rng: Rng) -> bytes:
    """``multipart/signed`` with an ``application/pgp-signature`` part (RFC 3156 §5)."""
    sig_part = (
        b'Content-Type: application/pgp-signature; name="signature.asc"\r\n'
        b"Content-Description: OpenPGP digital signature\r\n"
        b'Content-Disposition: attachment; filename="signature.asc"\r\n\r\n'
        + to_crlf(armored_signature).rstrip(b"\r\n")
    )
    return _multipart(
        f'multipart/signed; micalg={micalg}; protocol="application/pgp-signature"',
        "This is an OpenPGP/MIME signed message (RFC 4880 and 3156)",
        [inner, sig_part],
        _boundary(rng),
    )


def wrap_smime_enveloped(cms_der: bytes, *, authenticated: bool) -> bytes:
    """``application/pkcs7-mime`` enveloped (or authEnveloped) data (RFC 8551 §3.3)."""
    return b"".join(_smime_enveloped_pieces(cms_der, authenticated=authenticated))


def smime_enveloped_message(
    outer: tuple[tuple[str, str], ...], cms_der: bytes, *, authenticated: bool
) -> bytes:
    """``assemble(outer, wrap_smime_enveloped(cms_der, ...))`` in one copy (large messages)."""
    return b"".join([_head(outer), *_smime_enveloped_pieces(cms_der, authenticated=authenticated)])


def _smime_enveloped_pieces(cms_der: bytes, *, authenticated: bool) -> list[bytes]:
    return [_smime_enveloped_head(authenticated), *b64_pieces(cms_der)]


def _smime_enveloped_head(authenticated: bool) -> bytes:
    smime_type = "authEnveloped-data" if authenticated else "enveloped-data"
    head = (
        f'Content-Type: application/pkcs7-mime; smime-type={smime_type};\r\n name="smime.p7m"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="smime.p7m"\r\n'
        "Content-Description: S/MIME Encrypted Message\r\n\r\n"
    )
    return head.encode("ascii")


def smime_enveloped_stream(
    outer: tuple[tuple[str, str], ...], cms_der: Iterable[bytes], *, authenticated: bool
) -> Iterator[bytes]:
    """:func:`smime_enveloped_message` of a DER ContentInfo that arrives in pieces."""
    yield _head(outer) + _smime_enveloped_head(authenticated)
    yield from b64_stream(cms_der)


def smime_signed_frame(signature_der: bytes, micalg: str, rng: Rng) -> tuple[bytes, bytes]:
    """What goes before and after the signed entity in ``wrap_smime_signed`` (for an
    entity that streams past)."""
    entity = wrap_smime_signed(b"\x00", signature_der, micalg, rng)
    at = entity.index(b"\r\n\x00\r\n") + 2  # the placeholder is the first part's body
    return entity[:at], entity[at + 1 :]


def wrap_pgp_encrypted(armored: bytes, rng: Rng) -> bytes:
    """``multipart/encrypted`` with the two parts RFC 3156 §4 requires."""
    version = (
        b"Content-Type: application/pgp-encrypted\r\n"
        b"Content-Description: PGP/MIME version identification\r\n\r\nVersion: 1\r\n"
    )
    payload = (
        b'Content-Type: application/octet-stream; name="encrypted.asc"\r\n'
        b"Content-Description: OpenPGP encrypted message\r\n"
        b'Content-Disposition: inline; filename="encrypted.asc"\r\n\r\n'
        + to_crlf(armored).rstrip(b"\r\n")
    )
    return _multipart(
        'multipart/encrypted; protocol="application/pgp-encrypted"',
        "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)",
        [version, payload],
        _boundary(rng),
    )


def pgp_encrypted_message(
    outer: tuple[tuple[str, str], ...], armored_crlf: Iterable[bytes], rng: Rng
) -> bytes:
    """``assemble(outer, wrap_pgp_encrypted(armored, rng))`` in one copy, for large messages.

    ``armored_crlf`` are the pieces of the armored message with CRLF line ends (as
    :func:`client.crypto.pgparmor.armor_chunks` writes them with ``eol=b"\\r\\n"``).
    """
    pieces = list(armored_crlf)
    if not pieces or not pieces[0].startswith(b"-----BEGIN PGP MESSAGE-----\r\n"):
        raise UsageError("an armored OpenPGP message with CRLF line ends is expected")
    before, after = pgp_encrypted_frame(outer, rng)
    return b"".join([before, *pieces[:-1], pieces[-1].rstrip(b"\r\n"), after])


def pgp_encrypted_frame(outer: tuple[tuple[str, str], ...], rng: Rng) -> tuple[bytes, bytes]:
    """What goes before and after the armored block (its last line end dropped) in
    ``assemble(outer, wrap_pgp_encrypted(armored, rng))``: for messages written as a stream."""
    entity = wrap_pgp_encrypted(b"\x00", rng)  # the frame around a one-octet placeholder
    at = entity.index(b"\r\n\r\n\x00\r\n") + 4
    return _head(outer) + entity[:at], entity[at + 1 :]


def _head(outer: tuple[tuple[str, str], ...]) -> bytes:
    head = b""
    for name, value in outer:
        if name.lower() == "mime-version":
            continue
        head += _POLICY.header_factory(name, value).fold(policy=_POLICY).encode("ascii")
    return head + b"MIME-Version: 1.0\r\n"


def assemble(outer: tuple[tuple[str, str], ...], entity: bytes) -> bytes:
    """Outer header fields + ``MIME-Version`` + an entity (its own header block first)."""
    if not entity or entity.startswith(b"\r\n"):
        raise UsageError("an entity to assemble must start with its header block")
    return _head(outer) + to_crlf(entity)
