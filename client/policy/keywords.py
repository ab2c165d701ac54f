"""Supporting-keyword occurrences for the scanner, found in one pass over the whole text.

Theory of operation
-------------------
The scanner asks, for each candidate, "is a keyword of this type within PROXIMITY
characters?". Answering that with ``str.find`` per keyword per candidate costs tens of
microseconds per candidate; instead :func:`keyword_index` finds every occurrence of every
keyword once, with Hyperscan (one multi-literal pass, case-insensitive), and
:meth:`KeywordIndex.near` answers by bisection.

An occurrence is what ``text.lower().find(word)`` would find where the word stands alone:
not preceded by an alphanumeric character and, unless the keyword ends with ``*`` (a
prefix), not followed by one; the Hyperscan patterns say both. This equals the lower-cased
search only for ASCII text, so :func:`keyword_index` returns ``None`` for other text (and
when Hyperscan is not installed): the scanner then searches each candidate's window itself.
"""

from __future__ import annotations

import functools
import re
import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping

try:
    import hyperscan
except ImportError:  # pragma: no cover - the fallback is the scanner's own search
    hyperscan = None  # type: ignore[assignment]

__all__ = ["KeywordIndex", "keyword_index", "near_in"]


class _Compiled:
    """One Hyperscan database for a tuple of keywords: pattern ``2 * i`` finds keyword ``i``
    ending at the end of the text or (a prefix keyword) anywhere; ``2 * i + 1`` finds it
    followed by a character that is not alphanumeric, which the match includes."""

    def __init__(self, words: tuple[str, ...]) -> None:
        assert hyperscan is not None
        self.words = words
        self.lengths = tuple(len(w.rstrip("*")) for w in words)
        pats: list[bytes] = []
        for w in words:
            core = re.escape(w.rstrip("*")).replace("\\ ", " ").encode("ascii")
            left = b"(?:^|[^A-Za-z0-9])" + core
            if w.endswith("*"):
                pats += [left, b"(?!)"]
            else:
                pats += [left + rb"\z", left + b"[^A-Za-z0-9]"]
        keep = [i for i, p in enumerate(pats) if p != b"(?!)"]
        self.db = hyperscan.Database()
        self.db.compile(
            expressions=[pats[i] for i in keep],
            ids=keep,
            elements=len(keep),
            flags=[hyperscan.HS_FLAG_CASELESS] * len(keep),
        )
        self.lock = threading.Lock()  # a database's scratch space serves one scan at a time


@functools.cache
def _compiled(words: tuple[str, ...]) -> _Compiled | None:
    if hyperscan is None:  # pragma: no cover
        return None
    return _Compiled(words)


class KeywordIndex:
    """Every keyword occurrence in one text; per set of keyword ids, sorted lazily.

    An occurrence is kept *packed* as one int, ``start << 8 | length`` (keywords are shorter
    than 256 characters), so a set's occurrences sort by start as plain ints do, and
    :func:`near_in` finds the first at or after ``lo`` by bisecting for ``lo << 8``.
    """

    def __init__(self, ends: list[list[int]], lengths: tuple[int, ...]) -> None:
        self._ends = ends  # per pattern id: where its matches end
        self._lengths = lengths
        self._sets: dict[frozenset[int], tuple[list[int], list[int]]] = {}
        self._packed: dict[frozenset[int], list[int]] = {}
        self._byword: dict[int, list[int]] = {}

    def packed(self, ids: frozenset[int]) -> list[int]:
        """The occurrences of the keywords ``ids``, packed and sorted, then a sentinel that
        starts after any text: the table :func:`near_in` reads."""
        got = self._packed.get(ids)
        if got is None:
            got = []
            for i in ids:
                got += self._keys(i)
            got.sort()  # a merge of sorted runs
            got.append(_SENTINEL)
            self._packed[ids] = got
        return got

    def spans(self, ids: frozenset[int]) -> tuple[list[int], list[int]]:
        """Starts (sorted) and ends of the occurrences of the keywords ``ids``."""
        got = self._sets.get(ids)
        if got is None:
            keys = self.packed(ids)[:-1]
            got = ([k >> 8 for k in keys], [(k >> 8) + (k & 255) for k in keys])
            self._sets[ids] = got
        return got

    def _keys(self, i: int) -> list[int]:
        """Occurrences of keyword ``i``, packed and sorted."""
        got = self._byword.get(i)
        if got is None:
            n = self._lengths[i]
            got = [(e - n) << 8 | n for e in self._ends[2 * i]]
            got += [(e - 1 - n) << 8 | n for e in self._ends[2 * i + 1]]
            got.sort()
            self._byword[i] = got
        return got

    def near(self, ids: frozenset[int], lo: int, hi: int) -> bool:
        """Whether a keyword with an id in ``ids`` lies wholly within ``[lo, hi)``."""
        starts, ends = self.spans(ids)
        k = bisect_left(starts, lo)
        n = len(starts)
        while k < n and starts[k] < hi:
            if ends[k] <= hi:
                return True
            k += 1
        return False


_SENTINEL = 1 << 70  # packed: starts after any text


def near_in(packed: list[int], lo: int, hi: int) -> bool:
    """:meth:`KeywordIndex.near` on a table from :meth:`KeywordIndex.packed` (the scanner's
    per-candidate question, so kept short: one bisection, and almost always one look)."""
    k = bisect_left(packed, lo << 8)
    key = packed[k]
    start = key >> 8
    while start < hi:  # the sentinel ends the loop
        if start + (key & 255) <= hi:
            return True
        k += 1
        key = packed[k]
        start = key >> 8
    return False


def keyword_index(
    text: str, words: tuple[str, ...], data: bytes | None = None
) -> KeywordIndex | None:
    """All occurrences of ``words`` (ids are indexes into it) in ``text``, or ``None`` when
    the text is not ASCII or Hyperscan is not available (``data``: ``text`` encoded as
    ASCII, if the caller has it)."""
    if data is None:
        if not text.isascii():
            return None
        data = text.encode("ascii")
    comp = _compiled(words)
    if comp is None:  # pragma: no cover
        return None
    ends: list[list[int]] = [[] for _ in range(2 * len(words))]
    add = [e.append for e in ends]  # the callback runs once per occurrence: keep it short

    def on_match(pid: int, _from: int, to: int, _flags: int, _ctx: object) -> None:
        add[pid](to)

    with comp.lock:
        comp.db.scan(data, match_event_handler=on_match)
    return KeywordIndex(ends, comp.lengths)


def ids_of(
    words: tuple[str, ...], wanted: Mapping[str, Iterable[str]]
) -> dict[str, frozenset[int]]:
    """For each key, the ids (indexes into ``words``) of its keywords."""
    pos = {w: i for i, w in enumerate(words)}
    return {k: frozenset(pos[w] for w in ws) for k, ws in wanted.items()}
