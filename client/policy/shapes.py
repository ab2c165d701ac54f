"""Candidate shapes for the scanner: where a number or code could be an identifier.

Theory of operation
-------------------
Python's ``re`` scans a character class (``[0-9A-Z]``) at tens of MB/s, but a literal
prefix at GB/s. So the text is first mapped, one byte per character, to a *class string*
(``bytes.translate``, C speed): digits become ``0``, capitals ``A``, other word characters
``a``; ``.``, ``/``, ``-`` and space stay; everything else (including every non-ASCII
character, which ``re.ASCII`` never treats as a word character or digit) becomes ``,``.
Offsets are unchanged. Every shape a detector knows begins with three digits (``000``) or
a capital and a digit (``A0``), so each pass below starts with a literal and the regex
engine only wakes up there.

A candidate's shape depends only on the few characters around it (left boundary: the
character before is not a word character, ``.``, ``/`` or ``-``; right boundary: not
followed by a word character or ``/``, nor by ``.``/``-`` and a word character), so passes
can run separately and over parts of the text:

* :data:`SHAPES` (whole text): dashed and spaced digit groups, runs of 9 to 19 digits, and
  5-digit runs, 4 digits and a letter, ``ddd.d(d)``, which become findings only with a
  keyword nearby (the scanner checks that per match);
* :data:`ALNUM` (whole text): a capital, a digit, then up to 5 code characters (ICD-10-CM,
  ICD-9-CM V/E codes, HCPCS);
* :data:`SHORT3` (3-digit runs, far too common to take them all), only in the windows
  around ICD keywords (:func:`gated`, :func:`matches_in`).

Spaced groups ("123 45 6789") are the one shape with another candidate's start inside it;
a match that begins inside one found by :data:`SHAPES` is dropped, as a single left-to-right
pass would never have seen it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable

__all__ = [
    "ALNUM",
    "SHAPES",
    "SHORT3",
    "class_string",
    "gated",
    "matches_in",
    "merge",
]


def _table() -> bytes:
    t = bytearray(b"," * 256)
    for ch in range(ord("0"), ord("9") + 1):
        t[ch] = ord("0")
    for ch in range(ord("A"), ord("Z") + 1):
        t[ch] = ord("A")
    for ch in range(ord("a"), ord("z") + 1):
        t[ch] = ord("a")
    for ch in b"_":
        t[ch] = ord("a")
    for ch in b"./- ":
        t[ch] = ch
    return bytes(t)


_TABLE = _table()


def class_string(text: str, data: bytes | None = None) -> bytes:
    """One class byte per character of ``text`` (non-ASCII characters become ``,``);
    ``data``: ``text`` encoded as ASCII, if the caller has it."""
    if data is None:
        data = text.encode("ascii", "replace")
    return data.translate(_TABLE)


# right boundary: not inside a word, number, date or path
_R = rb"(?![0Aa/]|[.\-][0Aa])"
# left boundary after the first three characters: the character before them is not a word
# character, ".", "/" or "-"
_L3 = rb"(?<![0Aa./\-]...)"
_DASH = rb"(?P<dash>0{0,2}-0{2,6}-0{1,5}(?:-0{1,7})?)"  # 3-5 digits - 2-6 - 1-5 [- 1-7]
_SPACE = rb"(?P<space>0? 0{2,6} 0{4,5}(?: 0{1,7})?)"  # 3-4 digits, 2-6, 4-5 [1-7]

# dashed and spaced digit groups, runs of 9 to 19 digits, and the shapes that become
# findings only with a keyword nearby (the scanner filters them): 5 digits or 4 digits and a
# capital (d5; the scanner keeps only F and T), ddd.d(d) (dot). At any start at most one
# alternative can match (runs are whole), so one pass finds what separate passes would.
SHAPES = re.compile(
    b"000"
    + _L3
    + b"(?:"
    + _DASH
    + b"|"
    + _SPACE
    + rb"|(?P<digits>0{6,16})|(?P<dot>\.0{1,2})|(?P<d5>00|0A))"
    + _R
)
# (3 digits: d3) only in the windows around an ICD keyword; a spaced group, which starts the
# same way, takes precedence, as in one pass.
SHORT3 = re.compile(b"000" + _L3 + b"(?:" + _SPACE + b"|(?P<d3>))" + _R)
ALNUM = re.compile(
    rb"A0(?<![0Aa./\-]..)(?P<alnum>[0A](?:[0A]?\.[0A]{1,4}|[0A]{1,4})?)" + _R,
)

_LONGEST = 32  # longer than any candidate and its right boundary


def matches_in(
    pattern: re.Pattern[bytes],
    cls: bytes,
    windows: Iterable[tuple[int, int]],
    spaced: list[tuple[int, int]],
) -> list[tuple[int, int, str]]:
    """(start, end, kind) of each match that starts in one of ``windows`` (sorted, disjoint
    ``[lo, hi)``), as a whole-text pass would find it: ``spaced`` are the spaced-group
    candidates of the whole text (sorted); no pass starts or finds a match inside one."""
    out: list[tuple[int, int, str]] = []
    n = len(cls)
    starts = [s for s, _ in spaced]
    for lo, hi in windows:
        k = bisect_right(starts, lo) - 1
        if k >= 0 and spaced[k][0] < lo < spaced[k][1]:
            lo = spaced[k][1]
        for m in pattern.finditer(cls, lo, min(n, hi + _LONGEST)):
            s = m.start()
            if s >= hi:
                break
            k = bisect_right(starts, s) - 1
            if k >= 0 and spaced[k][0] < s < spaced[k][1]:
                continue
            out.append((s, m.end(), m.lastgroup or ""))
    return out


def gated(starts: list[int], ends: list[int], reach: int, n: int) -> list[tuple[int, int]]:
    """Windows of candidate starts that put a token of up to 6 characters within ``reach``
    of a keyword at one of the spans ``starts[i], ends[i]``: merged, sorted ``[lo, hi)``."""
    back, ahead = reach + 6, reach + 1
    return merge([(e - back, s + ahead) for s, e in zip(starts, ends, strict=True)], n=n)


def merge(*window_lists: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """The union of window lists, sorted, merged and clipped to ``[0, n)``."""
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(w for ws in window_lists for w in ws):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    if out:
        out[0] = (max(0, out[0][0]), out[0][1])
        out[-1] = (out[-1][0], min(n, out[-1][1]))
    return out
