"""Open encrypted attachments of every kind Sealmail knows -- sans I/O.

Theory of operation
-------------------
:func:`detect` looks at the bytes (and the file name, only as a hint for vendor portals)
and returns an :class:`OpenKind`; :func:`open_bytes` detects, then decrypts fully in
memory and returns an :class:`Opened` (message text, files, details). Nothing is written
here: the caller saves the result with :mod:`client.envelope.output` only after
everything verified, so a wrong password or a tampered file leaves nothing behind::

    sealmail-envelope / sealmail-reply  our container (HTML page or raw)  -> format
    vendor-portal                       Proofpoint, Cisco, Microsoft, Zix, Virtru -> error
    pgp            PKESK (.pgp/.gpg/.asc) or a PGP/MIME .eml   -> pgpstream / open_raw
    gpg-symmetric  SKESK only (gpg -c)                          -> pgpstream(passwords)
    cms-password   CMS with a PasswordRecipientInfo (RFC 3211)  -> cms.decrypt(password)
    smime          CMS enveloped/authEnveloped/signed (.p7m, DER/PEM/base64) or an
                   S/MIME .eml                                  -> open_raw (keystore)
    unknown        anything else                                -> UnsupportedMessage

The password is asked for through a callback, only when the kind needs one.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from typing import Any

from client.crypto import cms, pgpstream
from client.crypto.keys import KeyAccess
from client.crypto.pgparmor import dearmor
from client.crypto.pgppackets import Tag, parse_packets
from client.crypto.recipes import open_raw
from client.envelope import format as fmt
from client.envelope import page, vendors
from client.errors import (
    BadPassword,
    DecryptionFailed,
    MalformedMessage,
    MessageError,
    UnsupportedMessage,
    UsageError,
    VendorEnvelope,
)
from client.mime.raw import decode_text, decoded_payload, filename_of, parse_tree

__all__ = ["OpenKind", "Opened", "PasswordSource", "detect", "open_bytes", "safe_name"]

PasswordSource = Callable[[], bytes | None]

_PEM_CMS = re.compile(rb"-----BEGIN (?:CMS|PKCS7)-----(.*?)-----END (?:CMS|PKCS7)-----", re.S)
_PGP_ARMOR = b"-----BEGIN PGP MESSAGE-----"
_MIME_START = re.compile(rb"\A(?:[!-9;-~]+:[^\r\n]*\r?\n(?:[ \t][^\r\n]*\r?\n)*)+\r?\n", re.S)


class OpenKind(enum.StrEnum):
    SEALMAIL_ENVELOPE = "sealmail-envelope"
    SEALMAIL_REPLY = "sealmail-reply"
    SMIME = "smime"
    PGP = "pgp"
    GPG_SYMMETRIC = "gpg-symmetric"
    CMS_PASSWORD = "cms-password"  # noqa: S105 (a kind name, not a password)
    VENDOR_PORTAL = "vendor-portal"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Opened:
    kind: OpenKind
    message: str | None = field(repr=False)
    files: tuple[fmt.Attachment, ...]
    details: dict[str, Any] = field(default_factory=dict)


# -- detection ---------------------------------------------------------------------------------


def _cms_der(data: bytes) -> bytes | None:
    """DER of a CMS ContentInfo given as DER, PEM or bare base64; None if it is not one."""
    candidates: list[bytes] = []
    if data[:1] == b"\x30":
        candidates.append(data)
    pem = _PEM_CMS.search(data) if b"-----BEGIN " in data[:4096] else None
    if pem is not None:
        candidates.append(_b64(pem.group(1)) or b"")
    elif data[:1] in b"MI" and re.fullmatch(rb"[A-Za-z0-9+/=\s]+", data[:4096]):
        candidates.append(_b64(data) or b"")
    for der in candidates:
        try:
            kind = cms.content_info_type(der)
        except MessageError:
            continue
        if kind in {"enveloped-data", "authenveloped-data", "signed-data"}:
            return der
    return None


def _b64(text: bytes) -> bytes | None:
    try:
        return base64.b64decode(re.sub(rb"\s+", b"", text), validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_password_cms(der: bytes) -> bool:
    try:
        kind = cms.content_info_type(der)
        if kind not in {"enveloped-data", "authenveloped-data"}:
            return False
        return any(d.startswith("pwri") for d in cms.describe_recipients(der))
    except MessageError:
        return False


def _pgp_kind(data: bytes) -> OpenKind | None:
    if not (data[:1] and data[0] & 0x80) and _PGP_ARMOR not in data[:4096]:
        return None
    try:
        tags = [p.tag for p in parse_packets(dearmor(data))]
    except MessageError:
        return None
    if Tag.PKESK in tags:
        return OpenKind.PGP
    if Tag.SKESK in tags or (tags and tags[0] == Tag.SED):
        return OpenKind.GPG_SYMMETRIC
    if tags and tags[0] in (Tag.SEIPD, Tag.AEAD):
        return OpenKind.PGP
    return None


def _mime(data: bytes) -> Message | None:
    if not _MIME_START.match(data[:65536]):
        return None
    return parse_tree(data)  # compat32: policy.default's header parser is quadratic


def _mime_kind(msg: Message) -> OpenKind | None:
    ctype = msg.get_content_type()
    protocol = str(msg.get_param("protocol", "") or "").lower()
    if ctype in {"application/pkcs7-mime", "application/x-pkcs7-mime"}:
        body = decoded_payload(msg)
        if isinstance(body, bytes) and _is_password_cms(body):
            return OpenKind.CMS_PASSWORD
        return OpenKind.SMIME
    if ctype == "multipart/signed" and "pkcs7-signature" in protocol:
        return OpenKind.SMIME
    if ctype == "multipart/encrypted" and protocol == "application/pgp-encrypted":
        return OpenKind.PGP
    return None


def detect(data: bytes, filename: str | None = None) -> OpenKind:
    """What kind of encrypted attachment ``data`` is (the name is only a vendor hint)."""
    if data.startswith(fmt.MAGIC) and len(data) > 9:
        return OpenKind.SEALMAIL_REPLY if data[9] == fmt.Kind.REPLY else OpenKind.SEALMAIL_ENVELOPE
    if page.is_envelope_page(data):
        try:
            container = page.peek(data)
        except MalformedMessage:
            return OpenKind.SEALMAIL_ENVELOPE  # opening it reports the damage
        if len(container) > 9 and container[9] == fmt.Kind.REPLY:
            return OpenKind.SEALMAIL_REPLY
        return OpenKind.SEALMAIL_ENVELOPE
    if vendors.recognise(data, filename) is not None:
        return OpenKind.VENDOR_PORTAL
    if not data:
        return OpenKind.UNKNOWN
    pgp = _pgp_kind(data)
    if pgp is not None:
        return pgp
    der = _cms_der(data)
    if der is not None:
        return OpenKind.CMS_PASSWORD if _is_password_cms(der) else OpenKind.SMIME
    msg = _mime(data)
    if msg is not None:
        return _mime_kind(msg) or OpenKind.UNKNOWN
    return OpenKind.UNKNOWN


# -- helpers -----------------------------------------------------------------------------------


def safe_name(name: str | None, fallback: str) -> str:
    """A file name that cannot leave the chosen directory or hide as a dot file."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join("_" if (ord(c) < 32 or ord(c) == 127) else c for c in base).strip()
    base = base.lstrip(".")[:200]
    return base or fallback


def _strip_ext(filename: str | None, exts: tuple[str, ...], fallback: str) -> str:
    name = safe_name(filename, "")
    lower = name.lower()
    for ext in exts:
        if lower.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name or fallback


def _need(password: PasswordSource, what: str) -> bytes:
    pw = password()
    if not pw:
        raise UsageError(
            f"this {what} is protected by a password",
            hint="Give the password with --password-fd N (or SEALMAIL_PASSPHRASE).",
        )
    return pw


def _walk_mime(content: bytes) -> tuple[str | None, list[fmt.Attachment]]:
    """The message text and the attachments of a decrypted MIME entity."""
    msg = parse_tree(content)
    text: str | None = None
    files: list[fmt.Attachment] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = decoded_payload(part)
        data = payload if isinstance(payload, bytes) else b""
        filename = filename_of(part)
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        if filename is None and disposition != "attachment" and ctype == "text/plain":
            if text is None:
                text = decode_text(part, data)
                continue
        fallback = "message.html" if ctype == "text/html" else f"part-{len(files) + 1}.bin"
        files.append(fmt.Attachment(safe_name(filename, fallback), data, ctype))
    return text, _dedupe(files)


def _dedupe(files: list[fmt.Attachment]) -> list[fmt.Attachment]:
    seen: set[str] = set()
    out: list[fmt.Attachment] = []
    for f in files:
        name = f.name
        n = 1
        while name.casefold() in seen:
            stem, dot, ext = f.name.rpartition(".")
            name = f"{stem} ({n}).{ext}" if dot and stem else f"{f.name} ({n})"
            n += 1
        seen.add(name.casefold())
        out.append(fmt.Attachment(name, f.data, f.media_type))
    return out


def _looks_mime(content: bytes) -> bool:
    head = content[:200].lower()
    return head.startswith((b"content-type:", b"mime-version:")) and bool(
        _MIME_START.match(content[:65536])
    )


def _content_result(
    kind: OpenKind, content: bytes, filename: str | None, exts: tuple[str, ...], **details: Any
) -> Opened:
    if _looks_mime(content):
        text, files = _walk_mime(content)
        return Opened(kind, text, tuple(files), details)
    name = _strip_ext(filename, exts, "decrypted.bin")
    return Opened(kind, None, (fmt.Attachment(name, content),), details)


# -- opening -----------------------------------------------------------------------------------


def _open_sealmail(data: bytes, password: PasswordSource) -> Opened:
    container = fmt.parse(data if data.startswith(fmt.MAGIC) else page.extract(data))
    kind = (
        OpenKind.SEALMAIL_REPLY if container.kind == fmt.Kind.REPLY else OpenKind.SEALMAIL_ENVELOPE
    )
    contents = fmt.open_container(container, _need(password, "envelope"))
    details = {
        "from": contents.sender,
        "to": contents.recipient,
        "subject": contents.subject,
        "created": contents.created,
        "id": contents.envelope_id,
        "in_reply_to": contents.in_reply_to,
    }
    files = _dedupe(
        [fmt.Attachment(safe_name(f.name, "attachment"), f.data) for f in contents.files]
    )
    return Opened(kind, contents.message, tuple(files), details)


def _open_vendor(data: bytes, filename: str | None) -> Opened:
    vendor = vendors.recognise(data, filename)
    assert vendor is not None
    raise VendorEnvelope(
        f"this is a {vendor.name} envelope; Sealmail cannot open it offline",
        hint=vendor.how_to_open,
    )


def _open_pgp_file(
    data: bytes, filename: str | None, keys: KeyAccess, password: PasswordSource, symmetric: bool
) -> Opened:
    if symmetric:
        pw = _need(password, "file")
        stream = pgpstream.decrypt(data, passwords=[pw])
    else:
        own = keys.pgp_secret_keys()
        stream = pgpstream.decrypt(
            data,
            secret_keys=[tsk for tsk, _ in own],
            key_passphrase=[pw for _, pw in own if pw is not None] or None,
        )
    details = {
        "cipher": stream.cipher,
        "integrity": stream.integrity,
        "compression": stream.compression,
        "signed": stream.signed,
        "signatures_checked": False,
    }
    kind = OpenKind.GPG_SYMMETRIC if symmetric else OpenKind.PGP
    exts = (".pgp", ".gpg", ".asc")
    name = stream.filename or _strip_ext(filename, exts, "decrypted.bin")
    if _looks_mime(stream.literal):
        return _content_result(kind, stream.literal, name, (), **details)
    return Opened(
        kind, None, (fmt.Attachment(safe_name(name, "decrypted.bin"), stream.literal),), details
    )


def _open_cms_password(der: bytes, filename: str | None, password: PasswordSource) -> Opened:
    pw = _need(password, "file")
    try:
        result = cms.decrypt(der, password=pw)
    except DecryptionFailed as exc:
        raise BadPassword(
            "the password is wrong (or the file is damaged)",
            hint="Check the password with the sender and try again.",
        ) from exc
    exts = (".p7m", ".p7", ".cms", ".der", ".pem", ".enc")
    return _content_result(
        OpenKind.CMS_PASSWORD,
        result.content,
        filename,
        exts,
        cipher=result.cipher,
        aead=result.aead,
    )


def _smime_wrap(der: bytes) -> bytes:
    kind = cms.content_info_type(der)
    smime_type = {"authenveloped-data": "authEnveloped-data"}.get(kind, kind)
    body = base64.encodebytes(der).replace(b"\n", b"\r\n")
    return (
        b"MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type="
        + smime_type.encode("ascii")
        + b'; name="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + body
    )


def _open_message(kind: OpenKind, raw: bytes, keys: KeyAccess, now: datetime) -> Opened:
    opened = open_raw(raw, keys, now=now)
    if not opened.report.encrypted and not opened.report.signed:
        raise UnsupportedMessage("the message is neither encrypted nor signed")
    text, files = _walk_mime(opened.message)
    return Opened(kind, text, tuple(files), {"report": opened.report.to_json()})


def open_bytes(
    data: bytes,
    *,
    keys: KeyAccess,
    password: PasswordSource,
    now: datetime,
    filename: str | None = None,
) -> Opened:
    """Detect and open ``data``; raises a ``SealmailError`` for anything it cannot open."""
    kind = detect(data, filename)
    if kind in (OpenKind.SEALMAIL_ENVELOPE, OpenKind.SEALMAIL_REPLY):
        return _open_sealmail(data, password)
    if kind is OpenKind.VENDOR_PORTAL:
        return _open_vendor(data, filename)
    if kind in (OpenKind.PGP, OpenKind.GPG_SYMMETRIC):
        msg = None if _pgp_kind(data) else _mime(data)
        if msg is not None:
            return _open_message(kind, data, keys, now)
        return _open_pgp_file(data, filename, keys, password, kind is OpenKind.GPG_SYMMETRIC)
    if kind in (OpenKind.SMIME, OpenKind.CMS_PASSWORD):
        der = _cms_der(data)
        if der is None:  # a whole S/MIME message (.eml)
            msg = _mime(data)
            if kind is OpenKind.CMS_PASSWORD and msg is not None:
                body = decoded_payload(msg)
                assert isinstance(body, bytes)
                return _open_cms_password(body, filename, password)
            return _open_message(kind, data, keys, now)
        if kind is OpenKind.CMS_PASSWORD:
            return _open_cms_password(der, filename, password)
        return _open_message(kind, _smime_wrap(der), keys, now)
    raise UnsupportedMessage(
        "this file is not an encrypted attachment Sealmail knows",
        hint="Sealmail opens its own envelopes, S/MIME (.p7m), OpenPGP (.pgp/.gpg/.asc), "
        "gpg -c and CMS password files. Ask the sender how the file was made.",
    )
