"""Exact-bytes MIME handling for cryptographic work.

Theory of operation
-------------------
Signatures cover exact bytes, so the parts of a ``multipart/signed`` body cannot go
through :mod:`email`'s parse-and-regenerate cycle, which refolds headers and rewrites
transfer encodings. This module works on bytes: it canonicalises line endings to CRLF
(RFC 5322/8551/3156 all sign the canonical CRLF form), splits an entity into its header
block and body, reads the header block with :mod:`email` (headers only, compat32, so
nothing is rewritten), and splits multipart bodies on their boundary exactly as RFC 2046
defines the delimiter (the CRLF before ``--boundary`` belongs to the delimiter).
Limits on size, part count and nesting keep hostile input bounded; violations raise
:class:`~client.errors.MalformedMessage` or :class:`~client.errors.MessageTooLarge`.
"""

from __future__ import annotations

import email
import email.errors
import email.message
import email.policy
import email.utils
import re
from collections.abc import Iterator
from dataclasses import dataclass

from client.errors import MalformedMessage, MessageTooLarge

__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "Entity",
    "b64_decode_lenient",
    "b64_lines",
    "b64_pieces",
    "filename_of",
    "parse_entity",
    "parse_tree",
    "split_multipart",
    "to_crlf",
]

MAX_DEPTH = 32
MAX_PARTS = 5000
MAX_HEADER_BYTES = 1 << 20

_HEADER_END = re.compile(rb"\r\n\r\n")
_FIELD_START = re.compile(rb"[!-9;-~]+[ \t]*:")  # RFC 5322 field name (+ obsolete WSP)


def to_crlf(data: bytes) -> bytes:
    """Canonical line endings: every bare LF (and bare CR) becomes CRLF.

    At most three C-speed passes (a look-behind regex is ~30x slower on large attachments);
    already-canonical data is returned as is.
    """
    if b"\r" not in data:  # LF only (or no line ends): one replace
        return data.replace(b"\n", b"\r\n") if b"\n" in data else data
    crlf = data.count(b"\r\n")
    if crlf == data.count(b"\n") == data.count(b"\r"):
        return data
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


_B64_LINE = 76
_B64_BLOCK = 57 * 16384  # input octets per encoding step (a whole number of lines)
_NOT_B64 = bytes(
    c
    for c in range(256)
    if c not in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
)


def b64_lines(data: bytes, eol: bytes = b"\r\n") -> bytes:
    """Base64 in 76-character lines, each ended by ``eol`` (RFC 2045), at C speed.

    Same output as ``base64.encodebytes`` (with ``eol`` for LF), but encoded in ~1 MiB steps
    and wrapped with slices, not one ``b2a_base64`` call per 57 octets (4x faster on a
    50 MB attachment, and no second full-size copy for the CRLF rewrite).
    """

    return b"".join(b64_pieces(data, eol))


def b64_pieces(data: bytes, eol: bytes = b"\r\n") -> list[bytes]:
    """:func:`b64_lines` as a list of ~1 MiB pieces (to join once with what surrounds it)."""
    import binascii

    view = memoryview(data)
    blocks: list[bytes] = []
    for start in range(0, len(view), _B64_BLOCK):
        enc = binascii.b2a_base64(view[start : start + _B64_BLOCK], newline=False)
        lines = [enc[i : i + _B64_LINE] for i in range(0, len(enc), _B64_LINE)]
        lines.append(b"")
        blocks.append(eol.join(lines))
    return blocks


def b64_decode_lenient(body: bytes) -> bytes:
    """Decode a base64 body as mail clients do: ignore non-alphabet octets, stop at ``=``.

    One ``translate`` pass removes line ends and junk (a character-class regex took 1.7 s
    on a 50 MB attachment); the usual well-formed case is decoded without another copy.
    """
    import binascii

    cleaned = body.translate(None, _NOT_B64)
    cut = cleaned.find(b"=")
    if cut >= 0 and not (
        len(cleaned) % 4 == 0
        and len(cleaned) - cut <= 2
        and cleaned.endswith(b"=" * (len(cleaned) - cut))
    ):
        cleaned = cleaned[:cut]
    if len(cleaned) % 4:
        cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return binascii.a2b_base64(cleaned)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage("a part's base64 encoding is damaged") from exc


@dataclass(frozen=True)
class Entity:
    """A MIME entity as exact CRLF bytes, with its header block parsed (read-only)."""

    raw: bytes
    header_block: bytes
    body: bytes
    headers: email.message.Message

    @property
    def content_type(self) -> str:
        return self.headers.get_content_type().lower()

    def param(self, name: str) -> str | None:
        value = self.headers.get_param(name, header="content-type")
        if value is None:
            return None
        if isinstance(value, tuple):  # RFC 2231 encoded parameter
            return str(email.utils.collapse_rfc2231_value(value))
        return str(value)

    def header(self, name: str) -> str | None:
        value = self.headers.get(name)
        return None if value is None else str(value)

    @property
    def transfer_encoding(self) -> str:
        return (self.header("Content-Transfer-Encoding") or "7bit").strip().lower()

    def decoded_body(self) -> bytes:
        """The body with its Content-Transfer-Encoding removed."""
        cte = self.transfer_encoding
        if cte == "base64":
            return b64_decode_lenient(self.body)
        if cte == "quoted-printable":
            import quopri

            return quopri.decodestring(self.body)
        return self.body

    def param_header(self) -> str:
        return self.header("Content-Type") or "text/plain"


#: Longest Content-Type / Content-Disposition accepted: the email package's parameter
#: parser is quadratic (a 60 KB field of ``;`` took > 10 s, found by fuzzing).
MAX_PARAM_FIELD = 8192
_PARAM_FIELD = re.compile(
    rb"(?im)^content-(?:type|disposition)[ \t]*:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*"
)


def parse_entity(data: bytes, *, canonical: bool = False) -> Entity:
    """Split ``data`` into header block and body; read the headers.

    ``canonical=True`` says ``data`` already has CRLF line endings.
    """
    raw = data if canonical else to_crlf(data)
    if raw.startswith(b"\r\n"):
        header_block, body = b"", raw[2:]
    elif not _FIELD_START.match(raw) and not raw.startswith(b"From "):  # mbox From_ line
        # content without a header section (``openssl cms -encrypt`` of a bare text, the
        # RFC 4134 examples): all of it is the body of a default text/plain entity
        header_block, body = b"", raw
    else:
        m = _HEADER_END.search(raw, 0, MAX_HEADER_BYTES + 4)
        if m is None:
            if len(raw) > MAX_HEADER_BYTES:
                raise MessageTooLarge("the header section is larger than 1 MiB")
            # headers only, no body
            header_block, body = raw.rstrip(b"\r\n"), b""
        else:
            header_block, body = raw[: m.start()], raw[m.end() :]
    for m in _PARAM_FIELD.finditer(header_block):  # before email's O(n²) param parser
        if len(m.group()) > MAX_PARAM_FIELD:
            raise MalformedMessage(f"a MIME header field is longer than {MAX_PARAM_FIELD} bytes")
    try:
        headers = email.message_from_bytes(header_block + b"\r\n\r\n", policy=email.policy.compat32)
    except Exception as exc:  # the email package raises a variety of errors on junk
        raise MalformedMessage("the message header could not be parsed") from exc
    return Entity(raw=raw, header_block=header_block, body=body, headers=headers)


def _delimiters(body: bytes, dash_boundary: bytes) -> Iterator[tuple[int, int, bool]]:
    """(start, end-of-line, is-close) of each delimiter line, found with ``bytes.find``.

    A delimiter is ``--boundary`` at the start of the body or after CRLF (the CRLF belongs
    to the delimiter), optionally ``--`` (close), then transport padding, then CRLF or the
    end of the body. Anything else after the boundary means it was only a prefix.
    """
    if body.startswith(dash_boundary):
        pos, begin = 0, 0
    else:
        pos = body.find(b"\r\n" + dash_boundary)
        begin = pos
        pos = pos + 2 if pos >= 0 else -1
    while pos >= 0:
        after = pos + len(dash_boundary)
        close = body.startswith(b"--", after)
        if close:
            after += 2
        eol = after
        while eol < len(body) and body[eol] in b" \t":
            eol += 1
        if eol == len(body) or body.startswith(b"\r\n", eol):
            yield begin, min(eol + 2, len(body)), close
        nxt = body.find(b"\r\n" + dash_boundary, after)
        begin = nxt
        pos = nxt + 2 if nxt >= 0 else -1


def split_multipart(entity: Entity) -> list[bytes]:
    """The exact bytes of each body part of a multipart entity (CRLF form)."""
    boundary = entity.param("boundary")
    if not boundary:
        raise MalformedMessage("a multipart part has no boundary")
    if len(boundary) > 200:
        raise MalformedMessage("a multipart boundary is too long")
    body = entity.body
    parts: list[bytes] = []
    start: int | None = None
    for begin, end, close in _delimiters(body, b"--" + boundary.encode("utf-8", "replace")):
        if start is not None:
            parts.append(body[start:begin])
            if len(parts) > MAX_PARTS:
                raise MessageTooLarge("the message has too many parts")
        if close:
            start = None
            break
        start = end
    if start is not None:
        # no close delimiter: take the rest (lenient, as mail clients are)
        parts.append(body[start:])
    if not parts:
        raise MalformedMessage("a multipart part has no body parts")
    return parts


#: Multipart boundaries a message may declare to be parsed for display (see parse_tree).
MAX_BOUNDARIES = 64
_BOUNDARY_PARAM = re.compile(rb"(?i)boundary\s*=")


def parse_tree(data: bytes) -> email.message.Message:
    """A whole MIME tree for *display* (walking leaves), parsed with the compat32 policy.

    Never use ``email.policy.default`` on received mail: its header-value parser is
    quadratic in the number of quote characters of a structured header (a 25 KB
    ``Content-Type`` of ``"`` took 8 s, found by tests/fuzz), and ``message_from_bytes``
    runs it while parsing. compat32 parses parameters with linear string operations; use
    :func:`filename_of` for a decoded attachment name. Raises MessageTooLarge for a tree
    nested deeper than the interpreter's stack (10,000 levels: tests/unit/test_bombs.py).
    """
    boundaries = len(_BOUNDARY_PARAM.findall(data))
    if boundaries > MAX_BOUNDARIES:
        # the feed parser tests every line against every open boundary: nesting x lines
        # (70,000 bare CRs under ~2,000 nested parts took 6 s, found by tests/fuzz)
        raise MessageTooLarge(
            f"the message declares {boundaries:,} multipart boundaries "
            f"(at most {MAX_BOUNDARIES} are shown)"
        )
    try:
        return email.message_from_bytes(data, policy=email.policy.compat32)
    except RecursionError as exc:  # the feed parser recurses once per multipart level
        raise MessageTooLarge("the message is nested too deeply") from exc


def filename_of(part: email.message.Message) -> str | None:
    """A part's file name with RFC 2231 and RFC 2047 encodings removed (compat32 parts)."""
    import email.header

    name = part.get_filename()
    if name is None:
        return None
    if "=?" not in name:
        return name
    try:
        return str(email.header.make_header(email.header.decode_header(name)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return name
