"""A message as a stream of pieces: canonical line ends, header split, 7-bit check.

Theory of operation
-------------------
Protecting a 50 MB message file must not hold the file (or three copies of it) in
memory. These helpers work on an iterable of pieces (file reads of ~1 MiB) and keep
only a few octets between pieces:

* :func:`crlf_pieces` is :func:`client.mime.raw.to_crlf` of the concatenation, piece by
  piece: a CR at the end of a piece waits for the next one, so a CR LF split across two
  reads stays one line end.
* :func:`split_header` finds the blank line that ends the header section and returns the
  header block and the body pieces that follow.
* :func:`part_spans` finds the body parts of a multipart body as
  :func:`client.mime.raw.split_multipart` does (same delimiter rules, same spans), with
  only a window of the body in memory; :func:`span_pieces` then yields a span's octets
  from a fresh pass.
* :class:`Hollow` keeps a *skeleton* of a long entity: every run of base64-alphabet
  lines longer than ``min_run`` is cut out and one marker line put in its place. The
  runs are whole lines with no line starting ``-`` and no blank line, so the skeleton
  has the same delimiter lines, header sections and tree as the entity; only long
  encoded bodies shrink. The caller checks where the markers landed.
* :class:`SevenBitCheck` sees the body go past and says whether it can be signed as it
  is: ASCII, no line over 998 octets, no space or tab before a line end, no line starting
  with ``From ``. That is :func:`client.mime.compose._seven_bit_safe` of the whole body,
  which implies it for every part, so :func:`client.mime.compose.prepare` would leave
  such a body unchanged; the streaming path only runs when it holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from client.mime.raw import MAX_LINE, short_lines, to_crlf

__all__ = [
    "Hollow",
    "SevenBitCheck",
    "coalesce",
    "crlf_pieces",
    "part_spans",
    "span_pieces",
    "split_header",
]

_PATTERNS = (b" \r\n", b"\t\r\n", b"\r\nFrom ")
_TAIL = max(map(len, _PATTERNS)) - 1


def _unsafe_inside(piece: bytes) -> bool:
    """Whether one of :data:`_PATTERNS` lies in ``piece``. A line that ends in a blank needs
    a blank: one memchr pass for each (base64 bodies, most of a large message, have
    none) spares the two slower three-octet searches."""
    return (
        b"\r\nFrom " in piece
        or (b" " in piece and b" \r\n" in piece)
        or (b"\t" in piece and b"\t\r\n" in piece)
    )


def crlf_pieces(pieces: Iterable[bytes], changed: list[bool] | None = None) -> Iterator[bytes]:
    """``to_crlf(b"".join(pieces))``, in pieces (empty pieces are skipped). If ``changed``
    is given, True is appended to it whenever a line end had to be rewritten."""
    held = b""
    for piece in pieces:
        data = held + piece if held else piece
        held = b""
        if data.endswith(b"\r"):
            held, data = b"\r", data[:-1]
        if data:
            out = to_crlf(data)
            if out is not data and changed is not None:
                changed.append(True)
            yield out
    if held:
        if changed is not None:
            changed.append(True)
        yield b"\r\n"


def coalesce(pieces: Iterable[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    """The same octets in pieces of at least ``size`` (but the last): short pieces are
    joined, long ones pass as they are (per-piece work stays per megabyte)."""
    held: list[bytes] = []
    count = 0
    for piece in pieces:
        if not held and len(piece) >= size:
            yield piece
            continue
        held.append(piece)
        count += len(piece)
        if count >= size:
            yield b"".join(held)
            held, count = [], 0
    if held:
        yield b"".join(held)


def split_header(pieces: Iterable[bytes], *, limit: int) -> tuple[bytes, Iterator[bytes]] | None:
    """(header block, body pieces) of a canonical stream split at its first blank line,
    or None when there is no blank line within ``limit`` octets."""
    it = iter(pieces)
    buf = bytearray()
    for piece in it:
        start = max(0, len(buf) - 3)
        buf += piece
        at = buf.find(b"\r\n\r\n", start)
        if at >= 0:
            return bytes(buf[:at]), _body(bytes(buf[at + 4 :]), it)
        if len(buf) > limit:
            return None
    return None


def _body(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


class SevenBitCheck:
    """Feed the canonical body with :meth:`update`; then read :attr:`safe` and
    :attr:`length`."""

    def __init__(self) -> None:
        self.safe = True
        self.length = 0
        self._tail = b"\r\n"  # the body starts a line: "From " at offset 0 counts too
        self._line = 0  # length of the line still open at the end of what was seen
        self._cr = False  # what was seen ends in CR (pieces may split a CR LF)

    def update(self, piece: bytes) -> None:
        self.length += len(piece)
        if not self.safe or not piece:
            return
        seam = self._tail + piece[:_TAIL]
        if not piece.isascii() or any(p in seam for p in _PATTERNS) or _unsafe_inside(piece):
            self.safe = False
            return
        self._tail = (self._tail + piece[-_TAIL:])[-_TAIL:]
        if self._cr:  # the previous piece ended in CR: a line end if this one starts LF
            if piece.startswith(b"\n"):
                self._line, piece = 0, piece[1:]
            else:
                self._line += 1
        self._cr = piece.endswith(b"\r")
        if self._cr:
            piece = piece[:-1]
        first = piece.find(b"\r\n")
        if first < 0:
            self._line += len(piece)
        else:
            if self._line + first > MAX_LINE or not short_lines(piece):
                self.safe = False
                return
            self._line = len(piece) - piece.rfind(b"\r\n") - 2
        if self._line > MAX_LINE:
            self.safe = False


class _Window:
    """Random access to a stream near a moving position: ``buf`` holds the stream from
    offset ``base``; reads pull more pieces, searches drop what lies behind them."""

    def __init__(self, pieces: Iterable[bytes]) -> None:
        self._it = iter(pieces)
        self.buf, self.base, self.eof = b"", 0, False

    def _more(self) -> bool:
        for piece in self._it:
            if piece:
                self.buf += piece
                return True
        self.eof = True
        return False

    def length(self) -> int:
        """The length of the whole stream (reads, and forgets, the rest)."""
        total = self.base + len(self.buf)
        self.buf, self.base = b"", total
        for piece in self._it:
            total += len(piece)
        self.base, self.eof = total, True
        return total

    def byte(self, pos: int) -> int | None:
        """The octet at ``pos``, or None past the end."""
        while pos - self.base >= len(self.buf):
            if not self._more():
                return None
        return self.buf[pos - self.base]

    def startswith(self, prefix: bytes, pos: int) -> bool:
        while pos + len(prefix) - self.base > len(self.buf) and self._more():
            pass
        return self.buf.startswith(prefix, pos - self.base)

    def find(self, sub: bytes, start: int) -> int:
        """The offset of ``sub`` at or after ``start``, or -1; forgets what is before."""
        while True:
            at = self.buf.find(sub, max(start - self.base, 0))
            if at >= 0:
                return self.base + at
            keep = max(start, self.base + len(self.buf) - (len(sub) - 1))
            self.buf, self.base = self.buf[keep - self.base :], keep
            if not self._more():
                return -1


def part_spans(
    body: Iterable[bytes], boundary: str, *, max_parts: int
) -> list[tuple[int, int]] | None:
    """``raw._part_spans`` of a multipart body given as canonical pieces: the (start, end)
    offsets of each body part. None when there are none or more than ``max_parts`` (the
    in-memory parser then raises its error)."""
    dash = b"--" + boundary.encode("utf-8", "replace")
    w = _Window(body)
    spans: list[tuple[int, int]] = []
    start: int | None = None
    if w.startswith(dash, 0):
        pos, begin = 0, 0
    else:
        begin = w.find(b"\r\n" + dash, 0)
        pos = begin + 2 if begin >= 0 else -1
    closed = False
    while pos >= 0:
        after = pos + len(dash)
        close = w.startswith(b"--", after)
        if close:
            after += 2
        eol = after
        while (octet := w.byte(eol)) is not None and octet in b" \t":
            eol += 1
        at_end = w.byte(eol) is None
        if at_end or w.startswith(b"\r\n", eol):
            end = eol if at_end else eol + 2
            if start is not None:
                spans.append((start, begin))
                if len(spans) > max_parts:
                    return None
            if close:
                start, closed = None, True
                break
            start = end
        begin = w.find(b"\r\n" + dash, after)
        pos = begin + 2 if begin >= 0 else -1
    total = w.length()  # reads the stream to its end (the epilogue), so the pass is whole
    if start is not None and not closed:
        spans.append((start, total))
    return spans or None


def span_pieces(body: Iterable[bytes], spans: list[tuple[int, int]]) -> Iterator[tuple[int, bytes]]:
    """(index, octets) of each span of the stream ``body``, in order (spans ascending and
    not overlapping; an empty or inverted span yields nothing)."""
    k, offset = 0, 0
    for piece in body:
        end = offset + len(piece)
        while k < len(spans):
            a, b = spans[k]
            if b <= a:
                k += 1
                continue
            if a >= end:
                break
            lo, hi = max(a, offset), min(b, end)
            if lo < hi:
                yield k, piece[lo - offset : hi - offset]
            if b > end:
                break
            k += 1
        offset = end
        if k >= len(spans):
            return


_B64_RUN = re.compile(rb"(?:(?<=\n)|\A)(?:[A-Za-z0-9+/=]{1,998}\r\n)+")


class Hollow:
    """Feed a canonical stream with :meth:`update`; :meth:`skeleton` is the stream with each
    run of base64-alphabet lines of at least ``min_run`` octets replaced by ``marker``
    (a CRLF-terminated line of base64 alphabet); :attr:`holes` counts them."""

    def __init__(self, marker: bytes, min_run: int = 1 << 16) -> None:
        if not marker.endswith(b"\r\n") or not _B64_RUN.fullmatch(marker):
            raise ValueError("the marker must be one base64-alphabet line")
        self._marker, self._min = marker, min_run
        self._out: list[bytes] = []
        self._open = b""  # the last, unfinished line (a run may still reach into it)
        self._in_hole = False  # the last thing kept is a marker (a run may continue it)
        self._pending: list[bytes] = []
        self._size = 0
        self.holes = 0

    _STEP = 1 << 20  # runs are looked for in steps this long, whatever the pieces' size

    def update(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._size += len(piece)
        if self._size >= self._STEP:
            self._flush()

    def _flush(self) -> None:
        data = b"".join([self._open, *self._pending])
        self._pending, self._size = [], 0
        cut = data.rfind(b"\n") + 1  # complete lines only
        self._open = data[cut:]
        if cut:
            self._lines(data, cut)

    def _lines(self, data: bytes, end: int) -> None:
        pos = 0
        for m in _B64_RUN.finditer(data, 0, end):
            a, b = m.span()
            if b - a < self._min and not (a == 0 and self._in_hole):
                continue
            if a > pos:
                self._out.append(data[pos:a])
                self._in_hole = False
            if not self._in_hole:
                self._out.append(self._marker)
                self.holes += 1
                self._in_hole = True
            pos = b
        if pos < end:
            self._out.append(data[pos:end])
            self._in_hole = False

    def skeleton(self) -> bytes:
        """The skeleton of everything fed so far (the unfinished last line is kept)."""
        self._flush()
        return b"".join([*self._out, self._open])
