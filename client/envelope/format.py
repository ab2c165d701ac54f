"""The Sealmail envelope container, version 1 -- sans I/O.

Theory of operation
-------------------
An envelope is a binary *container* (specified in ``docs/ENVELOPE-FORMAT.md``) that the
HTML page carries as base64; this module builds and reads the container and never touches
a file, a clock or a random source of its own (``now`` and ``rng`` are parameters)::

    prefix  = MAGIC(8) | version(1) | kind(1) | header_len(u16 BE) | header (JSON, UTF-8)
    body    = chunk_0 | chunk_1 | ... | chunk_last          (each = AES-256-GCM ct | tag)
    master  = PBKDF2-HMAC-SHA-256(NFKC(password).strip(), salt, iterations, 32)
    key     = HKDF-SHA-256(master, salt="", info="sealmail-envelope v1 key", 32)
    check   = HKDF-SHA-256(master, salt="", info="sealmail-envelope v1 check", 32)
    nonce_i = nonce_prefix(7) | i (u32 BE) | final (1 octet: 1 for the last chunk, else 0)
    aad     = prefix                               (the whole header is authenticated)

The plaintext is ``u32 BE manifest length | manifest JSON | file data...`` split into
``chunk_size`` pieces (the last one 0..chunk_size octets, flagged final), so truncation,
reordering and splicing are detected. ``check`` in the header tells a wrong password
(check mismatch) from a modified file (a chunk tag fails) without trying to decrypt.

Errors: wrong password -> ``BadPassword``; a chunk tag fails -> ``TamperedMessage``;
broken framing/header/manifest -> ``MalformedMessage``; a newer version ->
``UnsupportedMessage``; sizes over the limits -> ``MessageTooLarge``; misuse ->
``UsageError``.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import json
import struct
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from client.errors import (
    BadPassword,
    MalformedMessage,
    MessageTooLarge,
    TamperedMessage,
    UnsupportedMessage,
    UsageError,
)

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_ITERATIONS",
    "MAGIC",
    "MAX_ITERATIONS",
    "MAX_PLAINTEXT",
    "MIN_ITERATIONS",
    "VERSION",
    "Attachment",
    "Container",
    "Contents",
    "Kind",
    "normalize_password",
    "open_container",
    "parse",
    "seal",
]

MAGIC = b"\x89SMENV\r\n"
VERSION = 1
CHUNK_SIZE = 1 << 20
DEFAULT_ITERATIONS = 600_000
MIN_ITERATIONS = 600_000
MAX_ITERATIONS = 10_000_000
MAX_HEADER = 4096
MAX_MANIFEST = 16 * 1024 * 1024
MAX_PLAINTEXT = 256 * 1024 * 1024
MAX_FILES = 1000
TAG_SIZE = 16
SALT_SIZE = 16
NONCE_PREFIX_SIZE = 7
_PREFIX = struct.Struct(">8sBBH")
_INFO_KEY = b"sealmail-envelope v1 key"
_INFO_CHECK = b"sealmail-envelope v1 check"
_HEADER_KEYS = frozenset(
    {"kdf", "iterations", "salt", "cipher", "chunk_size", "nonce_prefix", "check"}
)

Rng = Callable[[int], bytes]


class Kind(enum.IntEnum):
    ENVELOPE = 1  # made by Sealmail for a recipient
    REPLY = 2  # made by the envelope page for the original sender


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    data: bytes = field(repr=False)
    media_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class Contents:
    """What an envelope holds once opened."""

    kind: Kind
    message: str = field(repr=False)
    files: tuple[Attachment, ...]
    sender: str | None = None
    recipient: str | None = None
    subject: str | None = None
    created: str | None = None
    envelope_id: str | None = None
    in_reply_to: str | None = None


@dataclass(frozen=True, slots=True)
class Container:
    """A parsed (not yet decrypted) container."""

    kind: Kind
    iterations: int
    salt: bytes
    chunk_size: int
    nonce_prefix: bytes
    check: bytes
    prefix: bytes = field(repr=False)
    body: bytes = field(repr=False)

    @property
    def chunk_count(self) -> int:
        sealed = self.chunk_size + TAG_SIZE
        return max(1, -(-len(self.body) // sealed))


def normalize_password(password: str | bytes) -> bytes:
    """NFKC, surrounding white space removed, UTF-8 (the page does the same)."""
    if isinstance(password, bytes):
        try:
            password = password.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UsageError("the password must be UTF-8 text") from exc
    text = unicodedata.normalize("NFKC", password).strip()
    if not text:
        raise UsageError("the password must not be empty")
    return text.encode("utf-8")


def _keys(password: str | bytes, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    # hashlib's PBKDF2 (OpenSSL, as cryptography's) releases the GIL while it runs: the
    # 600,000 iterations (~100 ms) no longer hold up the app's GUI thread
    master = hashlib.pbkdf2_hmac("sha256", normalize_password(password), salt, iterations, 32)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=_INFO_KEY).derive(master)
    check = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=_INFO_CHECK).derive(master)
    return key, check


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if final else 0)


def _take(rng: Rng, n: int) -> bytes:
    out = rng(n)
    if len(out) != n:
        raise UsageError("rng returned the wrong number of octets")
    return out


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedMessage(f"envelope header: {what} is not a string")
    try:
        out = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"envelope header: {what} is not base64") from exc
    if len(out) != size:
        raise MalformedMessage(f"envelope header: {what} has the wrong length")
    return out


# -- building ---------------------------------------------------------------------------------


def _manifest(
    message: str,
    files: Sequence[Attachment],
    *,
    sender: str | None,
    recipient: str | None,
    subject: str | None,
    now: datetime,
    envelope_id: str,
    in_reply_to: str | None,
) -> bytes:
    doc = {
        "message": message,
        "files": [{"name": f.name, "size": len(f.data), "type": f.media_type} for f in files],
        "from": sender,
        "to": recipient,
        "subject": subject,
        "created": now.isoformat(),
        "id": envelope_id,
        "in_reply_to": in_reply_to,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def seal(
    message: str,
    files: Sequence[Attachment],
    password: str | bytes,
    *,
    now: datetime,
    rng: Rng,
    kind: Kind = Kind.ENVELOPE,
    sender: str | None = None,
    recipient: str | None = None,
    subject: str | None = None,
    in_reply_to: str | None = None,
    iterations: int = DEFAULT_ITERATIONS,
    chunk_size: int = CHUNK_SIZE,
) -> bytes:
    """Encrypt a message and attachments into a container (bytes)."""
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise UsageError(f"iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}")
    if not 1024 <= chunk_size <= 16 * CHUNK_SIZE:
        raise UsageError("chunk_size must be between 1 KiB and 16 MiB")
    if len(files) > MAX_FILES:
        raise UsageError(f"at most {MAX_FILES} attachments")
    for f in files:
        _check_name(f.name, UsageError)
    manifest = _manifest(
        message,
        files,
        sender=sender,
        recipient=recipient,
        subject=subject,
        now=now,
        envelope_id=_take(rng, 16).hex(),
        in_reply_to=in_reply_to,
    )
    if len(manifest) > MAX_MANIFEST:
        raise UsageError("the message text is too long")
    plaintext = b"".join([struct.pack(">I", len(manifest)), manifest, *(f.data for f in files)])
    if len(plaintext) > MAX_PLAINTEXT:
        raise UsageError(f"an envelope holds at most {MAX_PLAINTEXT // 2**20} MiB")
    salt = _take(rng, SALT_SIZE)
    nonce_prefix = _take(rng, NONCE_PREFIX_SIZE)
    key, check = _keys(password, salt, iterations)
    header = json.dumps(
        {
            "kdf": "pbkdf2-sha256",
            "iterations": iterations,
            "salt": _b64(salt),
            "cipher": "aes-256-gcm",
            "chunk_size": chunk_size,
            "nonce_prefix": _b64(nonce_prefix),
            "check": _b64(check),
        },
        separators=(",", ":"),
    ).encode("ascii")
    prefix = _PREFIX.pack(MAGIC, VERSION, int(kind), len(header)) + header
    aead = AESGCM(key)
    count = max(1, -(-len(plaintext) // chunk_size))
    out = [prefix]
    for i in range(count):
        piece = plaintext[i * chunk_size : (i + 1) * chunk_size]
        out.append(aead.encrypt(_nonce(nonce_prefix, i, i == count - 1), piece, prefix))
    return b"".join(out)


# -- reading ----------------------------------------------------------------------------------


def parse(data: bytes) -> Container:
    """Parse a container's framing and header; nothing is decrypted."""
    if len(data) < _PREFIX.size:
        raise MalformedMessage("the envelope is too short")
    magic, version, kind, header_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise MalformedMessage("not a Sealmail envelope")
    if version != VERSION:
        raise UnsupportedMessage(
            f"envelope format version {version} is not supported",
            hint="Update Sealmail to open envelopes made by a newer version.",
        )
    if kind not in (k.value for k in Kind):
        raise MalformedMessage("unknown envelope kind")
    if not 0 < header_len <= MAX_HEADER or _PREFIX.size + header_len > len(data):
        raise MalformedMessage("the envelope header is damaged")
    end = _PREFIX.size + header_len
    try:
        header = json.loads(data[_PREFIX.size : end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedMessage("the envelope header is damaged") from exc
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        raise MalformedMessage("the envelope header has unexpected fields")
    if header["kdf"] != "pbkdf2-sha256" or header["cipher"] != "aes-256-gcm":
        raise UnsupportedMessage("the envelope uses an unknown KDF or cipher")
    iterations, chunk_size = header["iterations"], header["chunk_size"]
    if type(iterations) is not int or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise MalformedMessage("the envelope's iteration count is out of range")
    if type(chunk_size) is not int or not 1024 <= chunk_size <= 16 * CHUNK_SIZE:
        raise MalformedMessage("the envelope's chunk size is out of range")
    body = data[end:]
    if len(body) < TAG_SIZE:
        raise MalformedMessage("the envelope holds no encrypted data")
    if len(body) > MAX_PLAINTEXT + TAG_SIZE * (MAX_PLAINTEXT // chunk_size + 1):
        raise MessageTooLarge("the envelope exceeds the size limit")
    last = len(body) % (chunk_size + TAG_SIZE)
    if 0 < last < TAG_SIZE:
        raise MalformedMessage("the envelope was truncated")
    return Container(
        kind=Kind(kind),
        iterations=iterations,
        salt=_unb64(header["salt"], SALT_SIZE, "salt"),
        chunk_size=chunk_size,
        nonce_prefix=_unb64(header["nonce_prefix"], NONCE_PREFIX_SIZE, "nonce_prefix"),
        check=_unb64(header["check"], 32, "check"),
        prefix=data[:end],
        body=body,
    )


def _check_name(name: object, error: type[Exception]) -> str:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 255
        or name in {".", ".."}
        or any(c in name for c in "/\\\x00")
        or any(unicodedata.category(c) == "Cc" for c in name)
    ):
        raise error(f"invalid attachment name {name!r}")
    return name


def _opt_str(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedMessage(f"envelope manifest: {key} is not text")
    return value


def _contents(kind: Kind, plaintext: bytes) -> Contents:
    if len(plaintext) < 4:
        raise MalformedMessage("the envelope content is damaged")
    (mlen,) = struct.unpack_from(">I", plaintext)
    if mlen > MAX_MANIFEST or 4 + mlen > len(plaintext):
        raise MalformedMessage("the envelope manifest is damaged")
    try:
        doc = json.loads(plaintext[4 : 4 + mlen].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedMessage("the envelope manifest is damaged") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("message"), str):
        raise MalformedMessage("the envelope manifest has no message")
    entries = doc.get("files")
    if not isinstance(entries, list) or len(entries) > MAX_FILES:
        raise MalformedMessage("the envelope manifest's file list is damaged")
    files: list[Attachment] = []
    offset = 4 + mlen
    seen: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict):
            raise MalformedMessage("the envelope manifest's file list is damaged")
        name = _check_name(entry.get("name"), MalformedMessage)
        size = entry.get("size")
        media = entry.get("type", "application/octet-stream")
        if type(size) is not int or size < 0 or offset + size > len(plaintext):
            raise MalformedMessage("the envelope manifest's file sizes are wrong")
        if not isinstance(media, str):
            raise MalformedMessage("the envelope manifest's file type is damaged")
        if name.casefold() in seen:
            raise MalformedMessage(f"the envelope holds two files named {name!r}")
        seen.add(name.casefold())
        files.append(Attachment(name, plaintext[offset : offset + size], media))
        offset += size
    if offset != len(plaintext):
        raise MalformedMessage("the envelope holds data its manifest does not describe")
    return Contents(
        kind=kind,
        message=doc["message"],
        files=tuple(files),
        sender=_opt_str(doc, "from"),
        recipient=_opt_str(doc, "to"),
        subject=_opt_str(doc, "subject"),
        created=_opt_str(doc, "created"),
        envelope_id=_opt_str(doc, "id"),
        in_reply_to=_opt_str(doc, "in_reply_to"),
    )


def open_container(container: Container | bytes, password: str | bytes) -> Contents:
    """Decrypt and check a container. Nothing is returned unless every chunk verified."""
    c = container if isinstance(container, Container) else parse(container)
    key, check = _keys(password, c.salt, c.iterations)
    if not hmac.compare_digest(check, c.check):
        raise BadPassword(
            "the password is wrong",
            hint="Check the password with the sender (it was given to you by phone or SMS).",
        )
    aead = AESGCM(key)
    sealed = c.chunk_size + TAG_SIZE
    count = c.chunk_count
    parts: list[bytes] = []
    for i in range(count):
        piece = c.body[i * sealed : (i + 1) * sealed]
        try:
            parts.append(aead.decrypt(_nonce(c.nonce_prefix, i, i == count - 1), piece, c.prefix))
        except InvalidTag as exc:
            raise TamperedMessage("the envelope was modified after it was sealed") from exc
    return _contents(c.kind, b"".join(parts))
