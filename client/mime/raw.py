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
import email.parser
import email.policy
import email.utils
import functools
import re
import struct
from collections.abc import Callable, Iterable, Iterator

from client.errors import MalformedMessage, MessageTooLarge

__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "Entity",
    "b64_decode_lenient",
    "b64_lines",
    "b64_pieces",
    "b64_stream",
    "check_foldable",
    "decode_text",
    "decoded_payload",
    "dot_stuff",
    "filename_of",
    "header_section",
    "headers_of",
    "leaves",
    "parse_entity",
    "parse_message",
    "parse_tree",
    "part_entities",
    "regroup",
    "split_multipart",
    "to_crlf",
]

MAX_DEPTH = 32
MAX_PARTS = 5000
MAX_HEADER_BYTES = 1 << 20


class _EndOfLine:
    """``email.feedparser.NLCRE_eol`` (``(\\r\\n|\\r|\\n)\\Z``) searched from two characters
    before the end: the same match, but not a scan of the whole string.

    The feed parser searches it over the whole payload of a multipart's last part (only the
    final line end can match); on a 33 MB base64 attachment that single ``search`` held the
    GIL for 300-400 ms, nine times per send, freezing the app (issue 8). Installed once,
    at import: the stdlib module keeps its behaviour, only faster
    (tests/unit/test_render_leaves.py compares both on generated strings).
    """

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def search(self, string: str, pos: int = 0) -> re.Match[str] | None:
        return self.pattern.search(string, max(pos, len(string) - 2))

    def match(self, string: str, pos: int = 0) -> re.Match[str] | None:
        return self.pattern.match(string, pos)


def _install_end_of_line() -> None:
    import email.feedparser

    current = getattr(email.feedparser, "NLCRE_eol", None)  # not in typeshed
    if isinstance(current, re.Pattern) and current.pattern == r"(\r\n|\r|\n)\Z":
        setattr(email.feedparser, "NLCRE_eol", _EndOfLine(current))  # noqa: B010


_install_end_of_line()


def header_section(data: bytes) -> bytes:
    """The header lines of ``data`` (up to the first empty line), without reading the body."""
    if data.startswith((b"\r\n", b"\n")):  # no header section at all
        return b""
    end = -1
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep, 0, MAX_HEADER_BYTES + 4)
        if at >= 0 and (end < 0 or at < end):
            end = at
    if end < 0 and len(data) > MAX_HEADER_BYTES:
        raise MessageTooLarge("the header section is larger than 1 MiB")
    return data[:end] if end >= 0 else data


def headers_of(
    data: bytes, policy: email.policy.Policy = email.policy.compat32
) -> email.message.Message:
    """The header section of ``data`` only, parsed; the body is not read.

    For the sender, recipients and Message-ID of a message that may carry 25 MB of
    attachments: parsing the whole message for them cost seconds.
    """
    return email.message_from_bytes(header_section(data) + b"\r\n\r\n", policy=policy)


def parse_message(
    data: bytes, policy: email.policy.Policy = email.policy.compat32
) -> email.message.Message:
    """``email.message_from_bytes(data, policy=policy)``, fed in windows (see WINDOW).

    ``message_from_bytes`` decodes the whole message to one str and copies it into a
    StringIO first: two single C calls of ~30 and ~60 ms on a 33 MB message. The feed
    parser is incremental, so feeding it windows gives the same tree.
    """
    parser = email.parser.BytesFeedParser(policy=policy)
    for i in _windows(len(data)):
        parser.feed(data[i : i + WINDOW])
    return parser.close()


_HEADER_END = re.compile(rb"\r\n\r\n")
_FIELD_START = re.compile(rb"[!-9;-~]+[ \t]*:")  # RFC 5322 field name (+ obsolete WSP)


#: Octets per C-level pass over a large body. A single ``bytes`` method call holds the GIL
#: from start to end, and the app's GUI thread waits for it: on a 27 MB message one
#: ``count`` took 40 ms and one ``a2b_base64`` 150 ms. Working in windows of this size
#: keeps every call to a few milliseconds at the same total cost.
WINDOW = 1 << 20


def _windows(size: int) -> range:
    return range(0, size, WINDOW)


def _count(data: bytes, sub: bytes) -> int:
    """``data.count(sub)`` for a one-octet ``sub``, in windows."""
    if len(data) <= WINDOW:
        return data.count(sub)
    return sum(data.count(sub, i, i + WINDOW) for i in _windows(len(data)))


def _count_crlf(data: bytes) -> int:
    if len(data) <= WINDOW:
        return data.count(b"\r\n")
    total = 0
    for i in _windows(len(data)):
        total += data.count(b"\r\n", i, i + WINDOW)
        if data[i + WINDOW - 1 : i + WINDOW + 1] == b"\r\n":  # one split across the seam
            total += 1
    return total


MAX_LINE = 998  # RFC 5322 2.1.1: octets in a line, without its CRLF
# a line of 999+ octets after a line end (its CR counts: 1000 non-LF octets)
_LONG_LINE = re.compile(rb"\n[^\n]{%d}" % (MAX_LINE + 2))


def short_lines(data: bytes) -> bool:
    """No CRLF-delimited line of canonical ``data`` is longer than 998 octets. One regex
    pass per window (see WINDOW): a third of the time of splitting into lines."""
    n = len(data)
    if n <= MAX_LINE:
        return True
    if data.find(b"\r\n", 0, MAX_LINE + 2) < 0:  # the first line
        return False
    if n - data.rfind(b"\n") - 1 > MAX_LINE:  # the last one, if it has no CRLF
        return False
    search = _LONG_LINE.search
    return not any(search(data, i, i + WINDOW + MAX_LINE + 2) for i in _windows(n))


def dot_stuff(raw: bytes) -> bytes:
    """SMTP DATA (RFC 5321 4.5.2): CRLF line ends, a ``.`` doubled at the start of a line,
    a final CRLF; in windows (see WINDOW) that never end on a line break."""
    data = to_crlf(raw)
    if data.startswith(b"."):
        data = b"." + data
    data = _by_windows(data, lambda w: w.replace(b"\r\n.", b"\r\n.."), b"\r\n")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def to_crlf(data: bytes) -> bytes:
    """Canonical line endings: every bare LF (and bare CR) becomes CRLF.

    At most three C-speed passes (a look-behind regex is ~30x slower on large attachments),
    in windows (see WINDOW); already-canonical data is returned as is.
    """
    if data.find(b"\r") < 0:  # LF only (or no line ends)
        if data.find(b"\n") < 0:
            return data
        return _by_windows(data, lambda w: w.replace(b"\n", b"\r\n"))
    crlf = _count_crlf(data)
    if crlf == _count(data, b"\n") == _count(data, b"\r"):
        return data
    return _by_windows(
        data, lambda w: w.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    )


def _by_windows(data: bytes, change: Callable[[bytes], bytes], after: bytes = b"\r") -> bytes:
    """``change(data)`` applied window by window; no window ends on an octet of ``after``
    (by default CR, so never between a CR and its LF)."""
    if len(data) <= WINDOW:
        return change(data)
    out: list[bytes] = []
    start = 0
    while start < len(data):
        end = min(start + WINDOW, len(data))
        while end < len(data) and data[end - 1] in after:
            end += 1  # never end a window on a CR: it may start a CR LF
        out.append(change(data[start:end]))
        start = end
    return b"".join(out)


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
        whole = len(enc) // _B64_LINE
        lines = list(_line_cutter(whole).unpack_from(enc)) if whole else []
        if len(enc) > whole * _B64_LINE:
            lines.append(enc[whole * _B64_LINE :])
        lines.append(b"")
        blocks.append(eol.join(lines))
    return blocks


@functools.lru_cache(maxsize=8)
def _line_cutter(lines: int) -> struct.Struct:
    """Cuts ``lines`` base64 lines off a buffer in one C call (a slice per line in Python
    cost 40% more on a 50 MB attachment)."""
    return struct.Struct(f"{_B64_LINE}s" * lines)


def b64_stream(pieces: Iterable[bytes], eol: bytes = b"\r\n") -> Iterator[bytes]:
    """:func:`b64_lines` of the concatenation of ``pieces``, in ~1 MiB pieces: the input is
    re-cut into whole-line blocks, so the output is the same whatever the cuts."""
    for block in regroup(pieces, _B64_BLOCK):
        yield from b64_pieces(block, eol)


def regroup(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Re-cut a stream of pieces into ``size``-octet steps (the last may be shorter)."""
    buf = bytearray()
    for piece in pieces:
        view = memoryview(piece)
        if not buf and len(view) >= size:
            whole = len(view) - len(view) % size
            for start in range(0, whole, size):
                yield bytes(view[start : start + size])
            view = view[whole:]
        buf += view
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def b64_decode_lenient(body: bytes, lo: int = 0, hi: int | None = None) -> bytes:
    """Decode a base64 body as mail clients do: ignore non-alphabet octets, stop at ``=``.

    ``translate`` removes line ends and junk (a character-class regex took 1.7 s on a 50 MB
    attachment); cleaning and decoding run in windows (see WINDOW). ``body[lo:hi]`` is
    decoded, window by window: an entity's span of a message buffer needs no copy first.
    """
    import binascii

    hi = len(body) if hi is None else hi
    out: list[bytes] = []
    carry = b""
    tail: bytes | None = None
    for i in range(lo, hi, WINDOW):
        cleaned = carry + body[i : min(i + WINDOW, hi)].translate(None, _NOT_B64)
        if b"=" in cleaned:  # padding or junk: settle the rest as a whole (rare, short)
            tail = cleaned + body[i + WINDOW : hi].translate(None, _NOT_B64)
            break
        whole = len(cleaned) - len(cleaned) % 4
        try:
            out.append(binascii.a2b_base64(cleaned[:whole]))
        except (binascii.Error, ValueError) as exc:
            raise MalformedMessage("a part's base64 encoding is damaged") from exc
        carry = cleaned[whole:]
    out.append(_b64_last(carry if tail is None else tail))
    return out[0] if len(out) == 1 else b"".join(out)


def _b64_last(cleaned: bytes) -> bytes:
    """Decode the last cleaned stretch: valid padding kept, anything from a stray ``=`` on
    dropped, a short final group padded."""
    import binascii

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


def b64_decode_stream(pieces: Iterable[bytes], *, tail_limit: int = WINDOW) -> Iterator[bytes]:
    """:func:`b64_decode_lenient` of the concatenated ``pieces``, decoded as they come.

    Once an ``=`` is seen the rest is settled as a whole, as the in-memory decoder does;
    more than ``tail_limit`` octets after it raise MessageTooLarge (padding is the last
    thing in a real body).
    """
    import binascii

    carry = b""
    tail: bytes | None = None
    for piece in pieces:
        cleaned = piece.translate(None, _NOT_B64)
        if tail is not None:
            tail += cleaned
            if len(tail) > tail_limit:
                raise MessageTooLarge("base64 data continues after its padding")
            continue
        cleaned = carry + cleaned
        if b"=" in cleaned:
            tail = cleaned
            continue
        whole = len(cleaned) - len(cleaned) % 4
        try:
            out = binascii.a2b_base64(cleaned[:whole])
        except (binascii.Error, ValueError) as exc:
            raise MalformedMessage("a part's base64 encoding is damaged") from exc
        carry = cleaned[whole:]
        if out:
            yield out
    last = _b64_last(carry if tail is None else tail)
    if last:
        yield last


def qp_decode(body: bytes) -> bytes:
    """Quoted-printable decoding (``quopri.decodestring``), in windows cut after CRLF."""
    import binascii

    if len(body) <= WINDOW:
        return binascii.a2b_qp(body)
    out: list[bytes] = []
    start = 0
    while start < len(body):
        end = body.find(b"\n", min(start + WINDOW, len(body)) - 1)
        end = len(body) if end < 0 else end + 1
        out.append(binascii.a2b_qp(body[start:end]))
        start = end
    return b"".join(out)


class Entity:
    """A MIME entity as exact CRLF bytes, with its header block parsed (read-only).

    The entity is a span of a buffer it may share with its parent and siblings; ``raw``
    and ``body`` are copied out only when asked for (a 25 MB attachment's leaf costs no
    copy until its data is wanted: each fresh 34 MB copy held the GIL for 20-45 ms).
    """

    def __init__(
        self,
        buf: bytes,
        start: int,
        body_start: int,
        end: int,
        header_block: bytes,
        headers: email.message.Message,
    ) -> None:
        self._buf, self._start, self._body_start, self._end = buf, start, body_start, end
        self.header_block, self.headers = header_block, headers

    # a slice of the whole buffer is the buffer itself (CPython returns ``bytes`` as is)
    @functools.cached_property
    def raw(self) -> bytes:
        return self._buf[self._start : self._end]

    @functools.cached_property
    def body(self) -> bytes:
        return self._buf[self._body_start : self._end]

    @property
    def body_size(self) -> int:
        return self._end - self._body_start

    def body_span(self) -> tuple[bytes, tuple[int, int]]:
        """The buffer the body lies in and its (start, end) there: the body without a copy.
        The body starts a line (it follows the header's blank line)."""
        return self._buf, (self._body_start, self._end)

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
            if "body" in self.__dict__:  # already copied out: decode that
                return b64_decode_lenient(self.body)
            return b64_decode_lenient(self._buf, self._body_start, self._end)
        if cte == "quoted-printable":
            return qp_decode(self.body)
        return self.body

    def decoded_in_place(self) -> tuple[bytes, tuple[int, int] | None]:
        """:meth:`decoded_body` as (data, span): where no transfer encoding is undone, the
        message buffer and the body's span in it (no copy); otherwise the decoded body and
        None."""
        if self.transfer_encoding in ("base64", "quoted-printable"):
            return self.decoded_body(), None
        return self.body_span()

    def param_header(self) -> str:
        return self.header("Content-Type") or "text/plain"


#: Longest Content-Type / Content-Disposition accepted: the email package's parameter
#: parser is quadratic (a 60 KB field of ``;`` took > 10 s, found by fuzzing).
MAX_PARAM_FIELD = 8192
_PARAM_FIELD = re.compile(
    rb"(?im)^content-(?:type|disposition)[ \t]*:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*"
)


#: Longest parameter name (``attribute`` before ``=``) a field to be *re-folded* may have:
#: the email package's RFC 2231 folder loops forever when a name leaves less room on a
#: 78-character line than one percent-encoded character needs (found by the differential
#: protect fuzzer). Real names are short (``filename*12*``); parsing for display does not
#: fold and does not use this.
MAX_PARAM_NAME = 40
_PARAM_NAME = re.compile(rb";[ \t\r\n]*([^=;]*)")


def check_foldable(header_block: bytes) -> None:
    """Refuse (MalformedMessage) Content-Type/Content-Disposition fields the email
    package cannot fold back: longer than MAX_PARAM_FIELD, or with a parameter name
    longer than MAX_PARAM_NAME. Call before regenerating headers with :mod:`email`."""
    for m in _PARAM_FIELD.finditer(header_block):
        field = m.group()
        if len(field) > MAX_PARAM_FIELD:
            raise MalformedMessage(f"a MIME header field is longer than {MAX_PARAM_FIELD} bytes")
        for name in _PARAM_NAME.findall(field):
            if len(name.strip()) > MAX_PARAM_NAME:
                raise MalformedMessage(
                    "a Content-Type or Content-Disposition parameter is malformed",
                    hint="Save the message again from your mail program, then protect it.",
                )


def parse_entity(data: bytes, *, canonical: bool = False) -> Entity:
    """Split ``data`` into header block and body; read the headers.

    ``canonical=True`` says ``data`` already has CRLF line endings.
    """
    raw = data if canonical else to_crlf(data)
    return _parse_span(raw, 0, len(raw))


def _parse_span(buf: bytes, lo: int, hi: int) -> Entity:
    """The entity in ``buf[lo:hi]`` (CRLF form), without copying its body."""
    if buf.startswith(b"\r\n", lo, hi):
        header_end, body_start = lo, lo + 2
    elif not _FIELD_START.match(buf, lo, hi) and not buf.startswith(b"From ", lo, hi):
        # content without a header section (``openssl cms -encrypt`` of a bare text, the
        # RFC 4134 examples; an mbox From_ line is a header): all of it is the body of a
        # default text/plain entity
        header_end, body_start = lo, lo
    else:
        m = _HEADER_END.search(buf, lo, min(hi, lo + MAX_HEADER_BYTES + 4))
        if m is None:
            if hi - lo > MAX_HEADER_BYTES:
                raise MessageTooLarge("the header section is larger than 1 MiB")
            # headers only, no body
            header_end = hi
            while header_end > lo and buf[header_end - 1] in b"\r\n":
                header_end -= 1
            body_start = hi
        else:
            header_end, body_start = m.start(), m.end()
    header_block = buf[lo:header_end]
    for m in _PARAM_FIELD.finditer(header_block):  # before email's O(n²) param parser
        if len(m.group()) > MAX_PARAM_FIELD:
            raise MalformedMessage(f"a MIME header field is longer than {MAX_PARAM_FIELD} bytes")
    try:
        headers = email.message_from_bytes(header_block + b"\r\n\r\n", policy=email.policy.compat32)
    except Exception as exc:  # the email package raises a variety of errors on junk
        raise MalformedMessage("the message header could not be parsed") from exc
    return Entity(buf, lo, body_start, hi, header_block, headers)


def _delimiters(
    buf: bytes, dash_boundary: bytes, lo: int, hi: int
) -> Iterator[tuple[int, int, bool]]:
    """(start, end-of-line, is-close) of each delimiter line in the body ``buf[lo:hi]``,
    found with ``bytes.find`` (positions in ``buf``).

    A delimiter is ``--boundary`` at the start of the body or after CRLF (the CRLF belongs
    to the delimiter), optionally ``--`` (close), then transport padding, then CRLF or the
    end of the body. Anything else after the boundary means it was only a prefix.
    """
    if buf.startswith(dash_boundary, lo, hi):
        pos, begin = lo, lo
    else:
        pos = buf.find(b"\r\n" + dash_boundary, lo, hi)
        begin = pos
        pos = pos + 2 if pos >= 0 else -1
    while pos >= 0:
        after = pos + len(dash_boundary)
        close = buf.startswith(b"--", after, hi)
        if close:
            after += 2
        eol = after
        while eol < hi and buf[eol] in b" \t":
            eol += 1
        if eol == hi or buf.startswith(b"\r\n", eol, hi):
            yield begin, min(eol + 2, hi), close
        nxt = buf.find(b"\r\n" + dash_boundary, after, hi)
        begin = nxt
        pos = nxt + 2 if nxt >= 0 else -1


def _part_spans(entity: Entity) -> list[tuple[int, int]]:
    """(start, end) in the entity's buffer of each body part of a multipart entity."""
    boundary = entity.param("boundary")
    if not boundary:
        raise MalformedMessage("a multipart part has no boundary")
    if len(boundary) > 200:
        raise MalformedMessage("a multipart boundary is too long")
    buf, lo, hi = entity._buf, entity._body_start, entity._end
    spans: list[tuple[int, int]] = []
    start: int | None = None
    dash = b"--" + boundary.encode("utf-8", "replace")
    for begin, end, close in _delimiters(buf, dash, lo, hi):
        if start is not None:
            spans.append((start, begin))
            if len(spans) > MAX_PARTS:
                raise MessageTooLarge("the message has too many parts")
        if close:
            start = None
            break
        start = end
    if start is not None:
        # no close delimiter: take the rest (lenient, as mail clients are)
        spans.append((start, hi))
    if not spans:
        raise MalformedMessage("a multipart part has no body parts")
    return spans


def split_multipart(entity: Entity) -> list[bytes]:
    """The exact bytes of each body part of a multipart entity (CRLF form)."""
    return [entity._buf[a:b] for a, b in _part_spans(entity)]


def part_entities(entity: Entity) -> list[Entity]:
    """The body parts of a multipart entity, parsed, sharing its buffer (no copies)."""
    return [_parse_span(entity._buf, a, b) for a, b in _part_spans(entity)]


def leaves(data: bytes) -> Iterator[Entity]:
    """The leaf entities of a message, in order, for display: what the feed parser's
    ``walk()`` yields minus the containers, found with :func:`split_multipart`.

    Linear and in windows (no stdlib feed parser: on a 27 MB message it held the GIL for
    330 ms in one regex search, freezing the app). ``message/rfc822`` parts are entered; a
    multipart that cannot be split (no boundary, no parts) is yielded as a leaf, as the
    feed parser leaves it. More than MAX_DEPTH levels or MAX_PARTS leaves: MessageTooLarge.
    """
    count = 0

    def visit(entity: Entity, depth: int) -> Iterator[Entity]:
        nonlocal count
        if depth > MAX_DEPTH:
            raise MessageTooLarge("the message is nested too deeply")
        ctype = entity.content_type
        if ctype.startswith("multipart/"):
            try:
                spans = _part_spans(entity)
            except MalformedMessage:
                spans = None
            if spans is not None:
                for a, b in spans:
                    yield from visit(_parse_span(entity._buf, a, b), depth + 1)
                return
        elif ctype == "message/rfc822" and entity.transfer_encoding in ("7bit", "8bit", "binary"):
            yield from visit(_parse_span(entity._buf, entity._body_start, entity._end), depth + 1)
            return
        count += 1
        if count > MAX_PARTS:
            raise MessageTooLarge("the message has too many parts")
        yield entity

    yield from visit(parse_entity(data), 0)


#: Multipart boundaries a message may declare to be parsed for display (see parse_tree).
MAX_BOUNDARIES = 64
_BOUNDARY_PARAM = re.compile(rb"(?i)boundary\s*=")


def _count_boundary_params(data: bytes) -> int:
    """``len(_BOUNDARY_PARAM.findall(data))`` in windows (one regex call over 27 MB held
    the GIL 180 ms); a window is searched 64 octets past its end for a match that starts
    inside it, so only a parameter with more than ~50 spaces before its ``=`` across a
    window seam goes uncounted (the count is a guard, not a parse)."""
    total = 0
    for i in _windows(len(data)):
        stop = i + WINDOW
        total += sum(1 for m in _BOUNDARY_PARAM.finditer(data, i, stop + 64) if m.start() < stop)
    return total


def parse_tree(data: bytes) -> email.message.Message:
    """A whole MIME tree for *display* (walking leaves), parsed with the compat32 policy.

    Never use ``email.policy.default`` on received mail: its header-value parser is
    quadratic in the number of quote characters of a structured header (a 25 KB
    ``Content-Type`` of ``"`` took 8 s, found by tests/fuzz), and ``message_from_bytes``
    runs it while parsing. compat32 parses parameters with linear string operations; use
    :func:`filename_of` for a decoded attachment name. Raises MessageTooLarge for a tree
    nested deeper than the interpreter's stack (10,000 levels: tests/unit/test_bombs.py).
    """
    boundaries = _count_boundary_params(data)
    if boundaries > MAX_BOUNDARIES:
        # the feed parser tests every line against every open boundary: nesting x lines
        # (70,000 bare CRs under ~2,000 nested parts took 6 s, found by tests/fuzz)
        raise MessageTooLarge(
            f"the message declares {boundaries:,} multipart boundaries "
            f"(at most {MAX_BOUNDARIES} are shown)"
        )
    try:
        return parse_message(data)
    except RecursionError as exc:  # the feed parser recurses once per multipart level
        raise MessageTooLarge("the message is nested too deeply") from exc


def decoded_payload(part: email.message.Message) -> bytes | None:
    """``part.get_payload(decode=True)``, with base64 and quoted-printable decoded in
    windows (see WINDOW): the stdlib decodes a 33 MB attachment in three single C calls
    (``splitlines``, ``join``, ``a2b_base64``) that held the GIL ~250 ms. Same bytes for
    well-formed encodings; a damaged one falls back to the stdlib's own answer."""
    if part.is_multipart():
        return None
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    payload = part.get_payload()
    if cte not in ("base64", "quoted-printable") or not isinstance(payload, str):
        result = part.get_payload(decode=True)
        return result if isinstance(result, bytes) else None
    try:
        # non-ASCII octets come back from get_payload() as U+FFFD (the email package
        # decodes surrogates with "replace"), which do not encode: the stdlib's answer then
        data = payload.encode("ascii", "surrogateescape")
        return b64_decode_lenient(data) if cte == "base64" else qp_decode(data)
    except (MalformedMessage, UnicodeError):
        result = part.get_payload(decode=True)
        return result if isinstance(result, bytes) else None


def decode_text(part: email.message.Message, data: bytes) -> str:
    """A text part's decoded body as ``str``: its charset (UTF-8 when none is named or the
    name is unknown), undecodable octets replaced."""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:  # an unknown charset name
        return data.decode("utf-8", "replace")


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
