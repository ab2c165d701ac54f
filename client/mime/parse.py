"""Opening a received message: peel its cryptographic layers and report what they proved.

Theory of operation
-------------------
A message is peeled from the root down. While the current root entity is a cryptographic
layer — PGP/MIME ``multipart/encrypted``, S/MIME ``application/pkcs7-mime`` (enveloped,
authEnveloped or opaque signed), ``multipart/signed`` (S/MIME or PGP), or a text body that
is *entirely* one inline OpenPGP block — the layer is handed to an :class:`Unwrapper`
(the crypto recipes), the facts go into a :class:`~client.crypto.report.ReportBuilder`,
and the layer's content becomes the new root. Signatures found this way cover the whole
message (``part="message"``).

What is left is walked once more, without decrypting anything: an encrypted part inside
an otherwise unencrypted multipart is *not* decrypted and joined to the clear parts (the
Efail "direct exfiltration" pattern); it is reported as a warning. A ``multipart/signed``
deeper in the tree is verified, but its signature is reported for that part only (the
"Johnny" partial-signature rule).

Protected headers (RFC 9788 or legacy) are read from the final root only when a layer was
decrypted or a whole-message signature verified good. The signer of every whole-message
signature must match the (protected) From address, else its status becomes
``signer-mismatch``.
"""

from __future__ import annotations

import dataclasses
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from client.crypto.report import EncryptionLayer, ReportBuilder, SecurityReport, SignatureResult
from client.errors import MalformedMessage, MessageTooLarge
from client.mime.headers import is_content_header, protected_headers_of
from client.mime.raw import MAX_DEPTH, Entity, parse_entity, part_entities, split_multipart

__all__ = [
    "OpenedMessage",
    "Unwrapper",
    "classify",
    "conclude",
    "may_need_repair",
    "open_message",
    "read_protected",
    "restored_head",
]

MAX_LAYERS = 8

_PGP_MESSAGE = re.compile(
    rb"\A\s*(-----BEGIN PGP MESSAGE-----\r?\n.*?-----END PGP MESSAGE-----)\s*\Z", re.S
)
_NBSP_LINE = re.compile(rb"(?m)^(?:[ \t]|\xc2\xa0)+(?=\r?$)")
_PGP_SIGNED = re.compile(
    rb"\A\s*(-----BEGIN PGP SIGNED MESSAGE-----\r?\n.*?-----END PGP SIGNATURE-----)\s*\Z", re.S
)


class Unwrapper(Protocol):
    """What the parser needs from the crypto recipes (see client.crypto.recipes)."""

    def smime_decrypt(self, der: bytes) -> tuple[bytes, EncryptionLayer]: ...

    def smime_verify(
        self, der: bytes, detached: bytes | None, *, now: datetime
    ) -> tuple[bytes, list[SignatureResult]]: ...

    def pgp_decrypt(
        self, data: bytes, *, now: datetime, span: tuple[int, int] | None = None
    ) -> tuple[bytes, EncryptionLayer, list[SignatureResult]]: ...

    def pgp_verify_detached(
        self, data: bytes, signature: bytes, *, now: datetime
    ) -> list[SignatureResult]: ...

    def pgp_verify_cleartext(
        self, data: bytes, *, now: datetime
    ) -> tuple[bytes, list[SignatureResult]]: ...


@dataclass(frozen=True)
class OpenedMessage:
    message: bytes  # RFC 5322, CRLF, protected headers restored, crypto layers removed
    content: Entity  # the innermost root entity
    report: SecurityReport


def classify(entity: Entity) -> str | None:
    """The kind of cryptographic layer ``entity`` is, or None."""
    ctype = entity.content_type
    if ctype == "multipart/encrypted":
        protocol = (entity.param("protocol") or "").lower()
        return "pgp-encrypted" if protocol == "application/pgp-encrypted" else "unknown-encrypted"
    if ctype in {"application/pkcs7-mime", "application/x-pkcs7-mime"}:
        smime_type = (entity.param("smime-type") or "").lower()
        if smime_type in {"enveloped-data", "authenveloped-data"}:
            return "smime-enveloped"
        if smime_type == "signed-data":
            return "smime-opaque"
        return "smime-sniff"
    if ctype == "application/octet-stream":
        name = (entity.param("name") or "").lower()
        if name.endswith(".p7m"):
            return "smime-sniff"
    if ctype == "multipart/signed":
        protocol = (entity.param("protocol") or "").lower()
        if protocol in {"application/pkcs7-signature", "application/x-pkcs7-signature"}:
            return "smime-signed"
        if protocol == "application/pgp-signature":
            return "pgp-signed"
        return "unknown-signed"
    if ctype == "text/plain" and entity.body:
        text = entity.decoded_body()
        # exactly one block: several are never decrypted and joined into one view
        if text.count(b"-----BEGIN PGP MESSAGE-----") == 1 and _PGP_MESSAGE.match(text):
            return "pgp-inline"
        if (
            text.count(b"-----BEGIN PGP SIGNED MESSAGE-----") == 1
            and text.count(b"-----BEGIN PGP SIGNATURE-----") == 1
            and _PGP_SIGNED.match(text)
        ):
            return "pgp-cleartext"
    return None


def _has_inline_pgp(entity: Entity) -> bool:
    """A text part that carries inline OpenPGP blocks but is not one whole block."""
    if not entity.content_type.startswith("text/") or not entity.body:
        return False
    try:
        text = entity.decoded_body()
    except MalformedMessage:
        return False
    return b"-----BEGIN PGP MESSAGE-----" in text or b"-----BEGIN PGP SIGNED MESSAGE-----" in text


def _is_blank_text(raw: bytes) -> bool:
    """A text/plain part with nothing in it but whitespace and a signature delimiter."""
    part = parse_entity(raw, canonical=True)
    if part.content_type != "text/plain":
        return False
    text = part.decoded_body().replace(b"-- ", b"").replace(b"\xc2\xa0", b"")
    return not text.strip()


def _mangled_pgp(entity: Entity) -> tuple[str, bytes] | None:
    """PGP/MIME that a server rewrote into ``multipart/mixed``; what to open instead.

    Two shapes are repaired, as Thunderbird and Delta Chat do, and only when the clear
    part carries no content (so nothing unencrypted is joined to the decrypted text):
    MS Exchange's ``[empty text/plain, application/pgp-encrypted,
    application/octet-stream]`` and Google Workspace's ``[empty text/plain,
    multipart/encrypted]``.
    """
    if entity.content_type != "multipart/mixed":
        return None
    parts = split_multipart(entity)
    if len(parts) == 3 and _is_blank_text(parts[0]):
        control = parse_entity(parts[1], canonical=True)
        payload = parse_entity(parts[2], canonical=True)
        if (
            control.content_type == "application/pgp-encrypted"
            and payload.content_type == "application/octet-stream"
            and b"-----BEGIN PGP MESSAGE-----" in payload.decoded_body()
        ):
            return "pgp-encrypted-payload", payload.decoded_body()
    if len(parts) == 2 and _is_blank_text(parts[0]):
        inner = parse_entity(parts[1], canonical=True)
        if classify(inner) == "pgp-encrypted":
            return "entity", parts[1]
    return None


def may_need_repair(entity: Entity) -> bool:
    """Whether :func:`_mangled_pgp` could repair ``entity`` (it reads the parts' bodies)."""
    if entity.content_type != "multipart/mixed":
        return False
    parts = split_multipart(entity)
    return len(parts) in (2, 3) and _is_blank_text(parts[0])


def _sniff_cms(der: bytes) -> str:
    from client.crypto.cms import content_info_type

    kind = content_info_type(der)
    if kind in {"enveloped-data", "authenveloped-data"}:
        return "smime-enveloped"
    if kind == "signed-data":
        return "smime-opaque"
    raise MalformedMessage(f"unsupported S/MIME content ({kind})")


def _text_entity(text: bytes) -> bytes:
    return (
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text
    )


def _peel(
    entity: Entity, kind: str, unwrap: Unwrapper, builder: ReportBuilder, now: datetime
) -> tuple[bytes, list[SignatureResult]]:
    """Process one root layer; return the inner entity bytes and its whole-message signatures."""
    if kind == "smime-sniff":
        kind = _sniff_cms(entity.decoded_body())
    if kind == "pgp-encrypted":
        pieces = part_entities(entity)  # spans of the message: no copy of the parts
        if len(pieces) < 2:
            raise MalformedMessage("a PGP/MIME encrypted message must have two parts")
        # armor sent as it is: read where it lies in the message, not copied out
        data, span = pieces[1].decoded_in_place()
        del pieces
        inner, layer, sigs = unwrap.pgp_decrypt(data, now=now, span=span)
        builder.layers.append(layer)
        return inner, sigs
    if kind == "smime-enveloped":
        inner, layer = unwrap.smime_decrypt(entity.decoded_body())
        builder.layers.append(layer)
        return inner, []
    if kind == "smime-opaque":
        inner, sigs = unwrap.smime_verify(entity.decoded_body(), None, now=now)
        return inner, sigs
    if kind in {"smime-signed", "pgp-signed"}:
        parts = split_multipart(entity)
        if len(parts) != 2:
            raise MalformedMessage("a multipart/signed message must have exactly two parts")
        signed, sig = parts[0], parse_entity(parts[1], canonical=True)
        if kind == "smime-signed":
            _, sigs = unwrap.smime_verify(sig.decoded_body(), signed, now=now)
        else:
            sigs = unwrap.pgp_verify_detached(signed, sig.decoded_body(), now=now)
        return signed, sigs
    if kind == "pgp-inline":
        # blank lines that an HTML editor turned into NBSP break the armor
        text = _NBSP_LINE.sub(b"", entity.decoded_body())
        plain, layer, sigs = unwrap.pgp_decrypt(text.strip(), now=now)
        builder.layers.append(layer)
        return _text_entity(plain), sigs
    if kind == "pgp-cleartext":
        text, sigs = unwrap.pgp_verify_cleartext(entity.decoded_body().strip(), now=now)
        return _text_entity(text), sigs
    raise MalformedMessage(f"unsupported protection ({entity.content_type})")


def _walk_rest(
    entity: Entity, path: str, depth: int, unwrap: Unwrapper, builder: ReportBuilder, now: datetime
) -> None:
    """Look through the remaining tree: report, never decrypt, nested protection."""
    if depth > MAX_DEPTH:
        raise MessageTooLarge("the message is nested too deeply")
    if not entity.content_type.startswith("multipart/"):
        kind = classify(entity) if path else None
        if kind in {"smime-enveloped", "smime-sniff", "pgp-inline"}:
            builder.warn(
                f"Part {path} is encrypted but is mixed with unencrypted content; it was not "
                "decrypted into this view (Efail protection). Open it as an attachment."
            )
        elif kind == "pgp-cleartext":
            builder.warn(
                f"Part {path} carries an inline OpenPGP signature that covers that part only; "
                "it was not checked."
            )
        elif kind is None and _has_inline_pgp(entity):
            builder.warn(
                f"Part {path or 'text'} contains OpenPGP blocks mixed with other text; they "
                "were not decrypted or verified (Efail/Johnny protection)."
            )
        return
    kind = classify(entity)
    if kind in {"pgp-encrypted", "unknown-encrypted"}:
        builder.warn(
            f"Part {path} is encrypted but is mixed with unencrypted content; it was not "
            "decrypted into this view (Efail protection)."
        )
        return
    parts = split_multipart(entity)
    if kind in {"smime-signed", "pgp-signed"} and len(parts) == 2:
        try:
            _, sigs = _peel(entity, kind, unwrap, builder, now)
        except MalformedMessage as exc:
            builder.warn(f"Part {path} carries a signature that could not be read: {exc}")
            sigs = []
        for s in sigs:
            builder.signatures.append(dataclasses.replace(s, part=path))
        builder.warn(f"Only part {path} of this message is signed; the rest is not covered.")
        parts = parts[:1]
    for i, raw in enumerate(parts, start=1):
        child = parse_entity(raw, canonical=True)
        _walk_rest(child, f"{path}.{i}" if path else str(i), depth + 1, unwrap, builder, now)


def _address(value: str | None) -> str | None:
    if not value:
        return None
    try:
        addrs = [a for _, a in email.utils.getaddresses([value]) if a]
    except RecursionError:  # email._parseaddr recurses per ':' (group syntax); tests/fuzz
        return None  # no single address: a signature cannot be matched to it
    return addrs[0].lower() if len(addrs) == 1 else None


def _check_signers(sigs: Sequence[SignatureResult], from_addr: str | None) -> list[SignatureResult]:
    out: list[SignatureResult] = []
    for s in sigs:
        emails = {e.lower() for e in s.signer_emails}
        if s.status == "good" and (from_addr is None or from_addr not in emails):
            detail = (
                f"signed by {s.signer or 'an unknown address'}, but the message says it is "
                f"from {from_addr or 'nobody'}"
            )
            s = dataclasses.replace(s, status="signer-mismatch", detail=detail)
        out.append(s)
    return out


def open_message(raw: bytes, unwrap: Unwrapper, *, now: datetime) -> OpenedMessage:
    """Peel every root cryptographic layer of ``raw`` and report what they proved."""
    top = parse_entity(raw)
    builder = ReportBuilder()
    entity = top
    root_sigs: list[SignatureResult] = []
    for _ in range(MAX_LAYERS + 1):
        kind = classify(entity)
        if kind is None:
            repaired = _mangled_pgp(entity)
            if repaired is not None:
                builder.warn("The message structure was damaged in transit and was repaired.")
                what, data = repaired
                if what == "entity":
                    entity = parse_entity(data, canonical=True)
                    continue
                inner, layer, sigs = unwrap.pgp_decrypt(data, now=now)
                builder.layers.append(layer)
                root_sigs.extend(sigs)
                entity = parse_entity(inner)
                continue
        if kind is None or kind.startswith("unknown"):
            break
        if len(builder.layers) + len(root_sigs) >= MAX_LAYERS:
            raise MessageTooLarge("the message has too many cryptographic layers")
        inner, sigs = _peel(entity, kind, unwrap, builder, now)
        root_sigs.extend(sigs)
        entity = parse_entity(inner)
    # Protected headers count only inside a layer that proved something: one we decrypted,
    # or one whose signature verified (an attacker can forge a bad or unknown signature).
    trusted = bool(builder.layers) or any(s.status == "good" for s in root_sigs)
    protected = read_protected(top, entity, builder, trusted=trusted)
    conclude(top, entity, builder, root_sigs, protected, unwrap, now)
    return OpenedMessage(
        message=_restore(top, entity, {n.lower() for n, _ in protected}),
        content=entity,
        report=builder.build(),
    )


def read_protected(
    top: Entity, entity: Entity, builder: ReportBuilder, *, trusted: bool
) -> list[tuple[str, str]]:
    """The protected header fields of the final root ``entity`` (noted in ``builder``)."""
    protected: list[tuple[str, str]] = []
    if entity is not top and trusted:
        scheme, protected = protected_headers_of(entity)
        if scheme is not None:
            builder.header_protection = "rfc9788" if scheme == "rfc9788" else "legacy"
            builder.protected_headers = protected
    return protected


def conclude(
    top: Entity,
    entity: Entity,
    builder: ReportBuilder,
    root_sigs: list[SignatureResult],
    protected: list[tuple[str, str]],
    unwrap: Unwrapper,
    now: datetime,
) -> None:
    """Match the whole-message signatures to the From address; look through the rest."""
    protected_from = [v for n, v in protected if n == "From"]
    from_values = protected_from or [str(v) for v in top.headers.get_all("From") or []]
    # several From fields (or addresses) cannot be matched to one signer (Johnny i3)
    from_addr = _address(from_values[0]) if len(from_values) == 1 else None
    builder.signatures[:0] = _check_signers(root_sigs, from_addr)
    _walk_rest(entity, "", 0, unwrap, builder, now)


def restored_head(top: Entity, inner: Entity, protected: list[tuple[str, str]]) -> bytes:
    """What :attr:`OpenedMessage.message` has before ``inner``'s body (``inner`` not top)."""
    names = {n.lower() for n, _ in protected}
    return _restore(top, inner, names, body=False)


def _restore(top: Entity, inner: Entity, protected_names: set[str], *, body: bool = True) -> bytes:
    """Outer message fields (protected ones from inside) + the inner entity."""
    lines: list[bytes] = []
    if inner is top:
        return top.raw
    for name, value in top.headers.items():
        if is_content_header(name) or name.lower() in protected_names:
            continue
        lines.append(f"{name}: {value}".encode("utf-8", "surrogateescape"))
    for name, value in inner.headers.items():
        lower = name.lower()
        if lower == "hp-outer":
            continue
        if lower in protected_names or is_content_header(name):
            lines.append(f"{name}: {value}".encode("utf-8", "surrogateescape"))
    if not any(line.lower().startswith(b"mime-version:") for line in lines):
        lines.append(b"MIME-Version: 1.0")
    if not body:
        return b"\r\n".join(lines) + b"\r\n\r\n"
    buf, (start, end) = inner.body_span()  # joined from a view: one copy of the body
    with memoryview(buf) as view:
        return b"".join([b"\r\n".join(lines), b"\r\n\r\n", view[start:end]])
