"""The content scanner: finds identifiers that make a message PHI (or payment/bank data).

Theory of operation
-------------------
Modelled on Microsoft Purview's sensitive-information types: each detector is a *pattern*
(shape), a *validator* (checksum or code list), *supporting keywords* within
:data:`PROXIMITY` characters on either side, and a *confidence* (low/medium/high) that
depends on which of those matched.

Speed (the scanner runs as the user types, and over whole attachments): candidates come from
two literal-prefix regex passes over a one-byte-per-character *class string* of the text
(:mod:`client.policy.shapes`); supporting keywords from one Hyperscan pass that indexes every
keyword occurrence (:mod:`client.policy.keywords`), so "a keyword within PROXIMITY" is one
bisection (:func:`~client.policy.keywords.near_in`). Candidates that are dropped unless a
keyword is near (5-digit numbers, ``ddd.dd``) are checked against the index as they are
found, before any validation; 3-digit numbers, far too common, are only looked for in the
windows around ICD keywords. Only candidates run Python code (validators: python-stdnum's
checks, inlined in :mod:`client.policy.checks` and held to python-stdnum by tests). For text
that is not ASCII (or without Hyperscan) keywords are searched per candidate in the
lower-cased text instead, as before; the findings are the same either way
(``tests/unit/test_scan_equivalence.py`` holds them to the earlier one-regex scanner). Text
is ``str``; offsets are Python string indices into it (for a message: into the decoded text
that :func:`client.policy.extract.message_text` builds).

=============  ===========================================  ====================================
type           validation                                   confidence
=============  ===========================================  ====================================
us-ssn         area not 000/666/9xx, group not 00, serial   formatted+kw high; formatted or
               not 0000, known-invalid list (python-stdnum)  9 digits+kw medium; 9 digits low
credit-card    Luhn (python-stdnum) + IIN range + length     +kw high; else medium
aba-routing    ABA checksum (python-stdnum) + Fed prefix     +kw high; else low
ndc            4-4-2, 5-3-2, 5-4-1, 5-4-2 dashed; 11 digits  dashed+kw high; 11 digits+kw
               (structure only: no FDA list is shipped)     medium; dashed alone low
icd-10-cm      the CMS code list (simple-icd-10-cm)          +kw high; dotted medium; else low
icd-9-cm       CMS v32 list (+ category prefixes)            ICD kw high; diagnosis kw medium
                                                            (dotted only); V/E dotted low
cpt            structure: 5 digits 00100-99607, 4 digits+F/T "CPT" kw high; billing kw medium;
               (the CPT list is AMA-licensed, not shipped)   never without a keyword
hcpcs          Level II: A-V (no D, F, I, N, O) + 4 digits   "HCPCS" kw high; billing/supply kw
                                                            medium; never without a keyword
=============  ===========================================  ====================================

Look-alikes are rejected by shape (dates, phone numbers, decimals with units) and, for the
weak types, by a label right before the number (order, invoice, room, zip, ...).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple

from client.policy import checks, shapes
from client.policy.codelists import icd9cm_codes, icd10cm_codes
from client.policy.keywords import KeywordIndex, ids_of, keyword_index, near_in

__all__ = [
    "DETECTOR_TYPES",
    "PROXIMITY",
    "Confidence",
    "Finding",
    "scan_text",
]

PROXIMITY = 300

DETECTOR_TYPES: tuple[str, ...] = (
    "us-ssn",
    "credit-card",
    "aba-routing",
    "ndc",
    "icd-9-cm",
    "icd-10-cm",
    "cpt",
    "hcpcs",
)


class Confidence(enum.Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return {"low": 0, "medium": 1, "high": 2}[self.value]

    @classmethod
    def parse(cls, text: str) -> Confidence:
        return cls(text)


class Finding(NamedTuple):
    """One identifier found: its type and where — never its value. Immutable (a named
    tuple: cheaper to make than a frozen dataclass, and the scanner makes thousands)."""

    type: str
    start: int
    end: int
    confidence: Confidence
    keyword: bool = False  # a supporting keyword was near

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence.value,
        }


# ----------------------------------------------------------------------------- shapes
# The candidate shapes (dashed/spaced digit groups, digit runs, dotted ICD-9 codes, letter +
# digit codes) and how they are found fast are in :mod:`client.policy.shapes`.

# Supporting keywords, lower case; a trailing "*" allows the word to go on ("diagnos*").
# Matched with str.find on the lower-cased text (C speed), whole words only.
_KEYWORDS: dict[str, tuple[str, ...]] = {
    "us-ssn": (
        "ssn",
        "ssns",
        "ss#",
        "ss #",
        "social security",
        "soc sec",
        "soc. sec",
        "ssa",
        "ssid",
        "taxpayer id",
    ),
    "credit-card": (
        "credit card",
        "card number",
        "card no",
        "card #",
        "cc#",
        "cc #",
        "visa",
        "mastercard",
        "master card",
        "amex",
        "american express",
        "discover",
        "jcb",
        "diners",
        "debit",
        "payment card",
        "card",
        "expir*",
        "exp date",
        "exp",
        "cvv",
        "cvv2",
        "cvc",
    ),
    "aba-routing": (
        "routing",
        "aba",
        "rtn",
        "transit number",
        "bank",
        "ach",
        "wire",
        "checking",
    ),
    "ndc": (
        "ndc",
        "ndcs",
        "national drug code*",
        "drug code*",
        "rx",
        "dispens*",
        "prescri*",
        "medication*",
        "package code",
    ),
    "icd-10-cm": ("icd*", "diagnos*", "dx", "diag", "condition code*"),
    "icd-9-cm": ("icd*", "diagnos*", "dx", "diag"),
    "cpt": (
        "cpt*",
        "current procedural terminology",
        "procedure code*",
        "billing code*",
        "billed",
        "charge code*",
        "e/m code*",
    ),
    "hcpcs": (
        "hcpcs",
        "level ii",
        "j-code*",
        "j code*",
        "supply code*",
        "billing code*",
        "billed",
        "dme",
        "procedure code*",
    ),
}
# keywords that name the type itself (raise confidence to high for the weak types)
_STRONG: dict[str, tuple[str, ...]] = {
    "icd-9-cm": ("icd*",),
    "icd-10-cm": ("icd*",),
    "cpt": ("cpt*", "current procedural terminology"),
    "hcpcs": ("hcpcs", "level ii"),
}
# a diagnosis label right before an undotted ICD-10-CM code ("Dx: I10", "diagnosis E66")
_DX_LABEL = re.compile(r"(?:\bdx|diagnos\w*|\bicd[\w-]*)\W{0,4}$", re.ASCII)

# a label right before a number that makes it something else ("order #", "zip", "room"):
# the label, up to 3 non-word characters, an optional "no." / "number" / "#" / "id" /
# "code", up to 3 more, then the number. It is matched *backwards* (a match at the start of
# the reversed, lower-cased 24 characters before the number) rather than searched for at
# their end: one attempt instead of 24.
_LABELS = (
    *("order", "invoice", "inv", "po", "ref", "reference", "ticket", "confirmation"),
    *("tracking", "zip", "zip code", "postal code", "phone", "tel", "fax", "room", "rm"),
    *("suite", "ste", "case", "claim", "acct", "extension", "ext", "lot", "batch", "serial"),
    *("model", "part", "sku", "item", "page", "version", "build", "flight"),
)
_NEGATIVE_LABEL_REVERSED = re.compile(
    r"\W{0,3}(?:\.?on|rebmun|mun|#|di|edoc)?\W{0,3}(?:"
    + "|".join(re.escape(w[::-1]) for w in _LABELS)
    + ")",
    re.ASCII,
)
_UNIT_AFTER = re.compile(
    r"\s?(?:mg|mcg|ml|mmol|meq|kg|g|lbs?|%|degrees|deg|units?|iu|bpm|mmhg|cm|mm|ng|"
    r"ms|sec|min|hours?|hrs?|days?|miles|km|dollars|usd|f|c)\b",
    re.ASCII,
)


# -------------------------------------------------------------------------- validators

_HCPCS_LETTERS = frozenset("ABCEGHJKLMPQRSTUV")


# ------------------------------------------------------------------------------ scanning


# a candidate: type, start, end, and its confidence without a keyword, with a (weak) keyword,
# with a strong keyword (None: dropped). A plain tuple: thousands are made per megabyte.
_Cand = tuple[str, int, int, Confidence | None, Confidence | None, Confidence | None]


_H, _M, _LOW = Confidence.HIGH, Confidence.MEDIUM, Confidence.LOW


def _negative_label(text: str, start: int) -> bool:
    back = text[start - 24 if start > 24 else 0 : start].lower()[::-1]
    match = _NEGATIVE_LABEL_REVERSED.match
    # as a forward search ending in "$", which also matches before a final newline
    return match(back) is not None or (back[:1] == "\n" and match(back, 1) is not None)


_STATE = re.compile(r"\b[A-Z]{2},?\s$", re.ASCII)


def _state_before(text: str, start: int) -> bool:
    """A US state abbreviation before a 5-digit number: a zip code ("IL 62704")."""
    return _STATE.search(text[start - 5 if start > 5 else 0 : start]) is not None


def _unit_after(text: str, end: int) -> bool:
    return _UNIT_AFTER.match(text[end : end + 12].lower()) is not None


class _DocWords:
    """Whether the whole document mentions any keyword of a type (lazily, once per type).

    Types that are never reported without a keyword (CPT, HCPCS, bare ICD-9 numbers) skip
    their candidates outright in documents that never name them.
    """

    def __init__(self, text: str, indexed: bool = False) -> None:
        self.text = text
        self.indexed = indexed  # keywords nearby are looked up in an index: skip this
        self._lowered: str | None = None
        self._seen: dict[str, bool] = {}

    @property
    def lowered(self) -> str:
        if self._lowered is None:
            self._lowered = self.text.lower()
        return self._lowered

    def mention(self, t: str) -> bool:
        if self.indexed:
            return True
        got = self._seen.get(t)
        if got is None:
            low = self.lowered
            got = any(w.rstrip("*") in low for w in _KEYWORDS[t])
            self._seen[t] = got
        return got


def _classify(text: str, kind: str, s: int, e: int, out: list[_Cand], doc: _DocWords) -> None:
    tok = text[s:e]
    if kind == "dash" or kind == "space":
        sep = "-" if kind == "dash" else " "
        groups = tok.split(sep)
        shape = tuple(map(len, groups))
        digits = "".join(groups)
        if shape == (3, 2, 4):
            if checks.ssn_ok(digits):
                out.append(("us-ssn", s, e, _M, _H, None))
            return
        if kind == "dash" and shape in ((4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2)):
            out.append(("ndc", s, e, _LOW, _H, None))
            return
        if kind == "dash" and shape == (4, 4, 1):
            if checks.rtn_ok(digits):
                out.append(("aba-routing", s, e, _LOW, _H, None))
            return
        card_shape = shape in ((4, 6, 5), (4, 6, 4)) or (len(shape) == 4 and shape[:3] == (4, 4, 4))
        if card_shape and 13 <= len(digits) <= 19 and checks.luhn_ok(digits):
            if checks.card_brand_ok(digits):
                out.append(("credit-card", s, e, _M, _H, None))
        return
    if kind == "digits":
        n = len(tok)
        if n == 9:
            if checks.ssn_ok(tok):
                out.append(("us-ssn", s, e, _LOW, _M, None))
            if checks.rtn_ok(tok) and not _negative_label(text, s):
                out.append(("aba-routing", s, e, _LOW, _H, None))
            return
        if n == 11:
            if not _negative_label(text, s):
                out.append(("ndc", s, e, None, _M, None))
            return
        if 13 <= n <= 19:
            if checks.luhn_ok(tok) and checks.card_brand_ok(tok):
                out.append(("credit-card", s, e, _M, _H, None))
            return
        if n == 5:
            if _negative_label(text, s) or _unit_after(text, e) or _state_before(text, s):
                return
            if not tok.isdigit() or 100 <= int(tok) <= 99607:
                out.append(("cpt", s, e, None, _M, _H))
            if tok in icd9cm_codes():
                out.append(("icd-9-cm", s, e, None, None, _H))
            return
        if n == 3:  # an ICD-9-CM category ("ICD-9 250")
            if text[s - 1 : s] == "(" or text[e : e + 1] == ")":  # (555) area codes
                return
            if tok in icd9cm_codes() and not _negative_label(text, s) and not _unit_after(text, e):
                out.append(("icd-9-cm", s, e, None, None, _H))
        return
    if kind == "dot":
        if _unit_after(text, e) or _negative_label(text, s):
            return
        if tok.replace(".", "") in icd9cm_codes():
            out.append(("icd-9-cm", s, e, None, _M, _H))
        return


def _alnum_cands(text: str, cls: bytes, out: list[_Cand], doc: _DocWords) -> None:
    """The candidates among codes that start with a capital and a digit (ICD-10-CM, ICD-9-CM
    V and E codes, HCPCS), straight from the shape pass (they are half of all candidates)."""
    icd10, icd9 = icd10cm_codes(), icd9cm_codes()
    ap = out.append
    for m in shapes.ALNUM.finditer(cls):
        s, e = m.span()
        tok = text[s:e]
        if "." in tok:
            code = tok.replace(".", "")
            if code in icd10:
                ap(("icd-10-cm", s, e, _M, _H, None))
            if tok[0] in "VE" and code in icd9:
                ap(("icd-9-cm", s, e, _LOW, _M, _H))
            continue  # not an HCPCS code
        if tok in icd10:
            low = text[s - 16 if s > 16 else 0 : s].lower()
            if ("dx" in low or "diagnos" in low or "icd" in low) and _DX_LABEL.search(low):
                ap(("icd-10-cm", s, e, _H, _H, None))
            else:  # "G20", "S500": too often something else unless an ICD keyword is near
                ap(("icd-10-cm", s, e, _LOW, _LOW, _H))
        first = tok[0]
        if first in "VE" and tok in icd9:
            ap(("icd-9-cm", s, e, None, _M, _H))
        if len(tok) == 5 and first in _HCPCS_LETTERS and tok[1:].isdigit() and doc.mention("hcpcs"):
            ap(("hcpcs", s, e, None, _M, _H))


def _word_at(lowered: str, i: int, j: int, prefix: bool) -> bool:
    if i > 0 and lowered[i - 1].isalnum():
        return False
    return prefix or j >= len(lowered) or not lowered[j].isalnum()


def _keyword_near(lowered: str, words: Sequence[str], start: int, end: int) -> bool:
    lo, hi = max(0, start - PROXIMITY), min(len(lowered), end + PROXIMITY)
    for word in words:
        prefix = word.endswith("*")
        w = word[:-1] if prefix else word
        i = lowered.find(w, lo, hi)
        while i >= 0:
            if _word_at(lowered, i, i + len(w), prefix):
                return True
            i = lowered.find(w, i + 1, hi)
    return False


# every keyword, each once (ids for the keyword index are positions in this tuple)
_WORDS: tuple[str, ...] = tuple(dict.fromkeys(w for ws in _KEYWORDS.values() for w in ws))
_IDS = ids_of(_WORDS, _KEYWORDS)
_STRONG_IDS = ids_of(_WORDS, _STRONG)
_NONE: frozenset[int] = frozenset()
_start = itemgetter(1)
# the candidates dropped without a keyword nearby, and the keywords that can save them:
# 3 digits (an ICD-9-CM category: "ICD" only), 5 digits or 4 digits + F/T (CPT, ICD-9-CM),
# ddd.dd (ICD-9-CM). Keeping only those with such a keyword nearby is exact, as their
# candidates (_classify) have no confidence without one.
_GATES: dict[str, tuple[tuple[str, ...], frozenset[int]]] = {
    "d3": (("icd-9-cm",), _STRONG_IDS["icd-9-cm"]),
    "d5": (("cpt", "icd-9-cm"), _IDS["cpt"] | _STRONG_IDS["icd-9-cm"]),
    "dot": (("icd-9-cm",), _IDS["icd-9-cm"]),
}


def _candidates(
    text: str, cls: bytes, index: KeywordIndex | None, doc: _DocWords
) -> list[tuple[int, int, str]]:
    """(start, end, shape) of every candidate that starts with digits (``cls``: the class
    string of ``text``); the 3-digit ones come last."""
    found: list[tuple[int, int, str]] = []
    ap = found.append
    spaced: list[tuple[int, int]] = []
    if index is not None:
        d5_keys, dot_keys = index.packed(_GATES["d5"][1]), index.packed(_GATES["dot"][1])
        for m in shapes.SHAPES.finditer(cls):
            kind = m.lastgroup
            s, e = m.span()
            if kind == "d5":
                # of 4 digits + a capital only F and T make a code
                if cls[e - 1] != 0x30 and text[e - 1] not in "FT":
                    continue
                if near_in(d5_keys, s - PROXIMITY, e + PROXIMITY):
                    ap((s, e, "digits"))
            elif kind == "dot":
                if near_in(dot_keys, s - PROXIMITY, e + PROXIMITY):
                    ap((s, e, "dot"))
            else:
                ap((s, e, kind or ""))
                if kind == "space":
                    spaced.append((s, e))
        wins = shapes.gated(*index.spans(_GATES["d3"][1]), PROXIMITY, len(text))
    else:
        d5 = any(doc.mention(t) for t in _GATES["d5"][0])
        dot = any(doc.mention(t) for t in _GATES["dot"][0])
        for m in shapes.SHAPES.finditer(cls):
            kind = m.lastgroup
            s, e = m.span()
            if kind == "d5":
                if d5 and (cls[e - 1] == 0x30 or text[e - 1] in "FT"):
                    ap((s, e, "digits"))
            elif kind != "dot" or dot:
                ap((s, e, kind or ""))
                if kind == "space":
                    spaced.append((s, e))
        wins = [(0, len(text))] if doc.mention("icd-9-cm") else []
    for s, e, kind in shapes.matches_in(shapes.SHORT3, cls, wins, spaced):
        if kind == "d3":  # spaced groups are found above
            found.append((s, e, "digits"))
    return found


def scan_text(text: str, *, types: Iterable[str] | None = None) -> tuple[Finding, ...]:
    """Every finding in ``text``, in order of position (values are never kept)."""
    wanted = frozenset(types) if types is not None else frozenset(DETECTOR_TYPES)
    data = text.encode("ascii") if text.isascii() else None
    cls = shapes.class_string(text, data)
    if b"0" not in cls:  # every candidate has a digit
        return ()
    index = keyword_index(text, _WORDS, data) if data is not None else None
    cands: list[_Cand] = []
    doc = _DocWords(text, index is not None)
    for s, e, kind in _candidates(text, cls, index, doc):
        _classify(text, kind, s, e, cands, doc)
    _alnum_cands(text, cls, cands, doc)
    cands.sort(key=_start)  # stable: a candidate's types keep their order
    if not wanted.issuperset(DETECTOR_TYPES):
        cands = [c for c in cands if c[0] in wanted]
    if not cands:
        return ()
    if index is None:
        return _resolve_searched(cands, doc)
    return _resolve_indexed(cands, index)


_new_finding = tuple.__new__  # Finding(...) without its Python-level __new__


def _resolve_indexed(cands: list[_Cand], index: KeywordIndex) -> tuple[Finding, ...]:
    """Confidence of each candidate from the keyword index."""
    out: list[Finding] = []
    ap, new, near, packed, p = out.append, _new_finding, near_in, index.packed, PROXIMITY
    tables: dict[str, tuple[list[int], list[int]]] = {}
    for t, s, e, bare, kw, strong in cands:
        got = tables.get(t)
        if got is None:
            got = tables[t] = (packed(_IDS[t]), packed(_STRONG_IDS.get(t, _NONE)))
        lo, hi = s - p, e + p  # no clipping: keywords lie in [0, len)
        if near(got[0], lo, hi):
            if strong is not None:
                conf = strong if near(got[1], lo, hi) else kw
            else:
                conf = kw
            if conf is not None:
                ap(new(Finding, (t, s, e, conf, True)))
        elif bare is not None:
            ap(new(Finding, (t, s, e, bare, False)))
    return tuple(out)


def _resolve_searched(cands: list[_Cand], doc: _DocWords) -> tuple[Finding, ...]:
    """Confidence of each candidate by searching its window of the lower-cased text."""
    out: list[Finding] = []
    lowered = doc.lowered
    for t, s, e, bare, kw, strong in cands:
        near = _keyword_near(lowered, _KEYWORDS[t], s, e)
        conf: Confidence | None
        if not near:
            conf = bare
        elif strong is not None and _keyword_near(lowered, _STRONG[t], s, e):
            conf = strong
        else:
            conf = kw
        if conf is not None:
            out.append(Finding(t, s, e, conf, near))
    return tuple(out)
