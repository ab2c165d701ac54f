"""The scanner as it was before the speed work (one combined ``re`` pass), frozen as an oracle.

Theory of operation
-------------------
:mod:`client.policy.scan` finds candidates with a class string, literal-prefix passes and a
Hyperscan keyword index; it must report exactly what this simple version reports (type,
start, end, confidence, keyword). ``tests/unit/test_scan_equivalence.py`` compares the two
on generated corpora and random text, and ``bench/scan.py`` prints the speed of both.
Not used by the product; do not change it except to follow a deliberate change of the
scanner's behaviour (then change both, and say so).

The original module docstring follows.

The content scanner: finds identifiers that make a message PHI (or payment/bank data).

Theory of operation
-------------------
Modelled on Microsoft Purview's sensitive-information types: each detector is a *pattern*
(shape), a *validator* (checksum or code list), *supporting keywords* within
:data:`PROXIMITY` characters on either side, and a *confidence* (low/medium/high) that
depends on which of those matched.

Speed comes from one pass of one combined regular expression (:data:`_CANDIDATES`) over the
text: every shape any detector knows, with word boundaries, so prose without digits costs
one C-level scan. Only the few candidates it yields run Python code (validators), and only
the stretches of text around candidates are searched for keywords (:func:`_keyword_hits`,
one more combined regex over the lower-cased windows). Text is ``str``; offsets are
Python string indices into it (for a message: into the decoded text that
:func:`client.policy.extract.message_text` builds).

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
from dataclasses import dataclass
from typing import Any

from stdnum import luhn
from stdnum.us import rtn as us_rtn
from stdnum.us import ssn as us_ssn

from client.policy.codelists import icd9cm_codes, icd10cm_codes

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


@dataclass(frozen=True)
class Finding:
    """One identifier found: its type and where — never its value."""

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

# The pattern starts with a plain character class so that the regex engine's fast prefix
# scan skips everything else; the left boundary is a lookbehind checked only after a digit
# follows (most capital letters in prose fail at that point, before any lookbehind).
_R = r"(?![\w/]|[.\-]\w)"  # right boundary: not inside a word, number, date or path
_B = r"(?<![\w./\-].)"  # left boundary, checked only once a second digit is seen
_CANDIDATES = re.compile(
    r"[0-9A-Z](?:"
    r"(?<=[0-9])(?=[0-9])" + _B + r"(?:"
    # dashed digit groups: SSN 3-2-4, NDC 4-4-2/5-3-2/5-4-1/5-4-2, ABA 4-4-1, cards 4-4-4-4, 4-6-5
    r"(?P<dash>\d{2,4}-\d{2,6}-\d{1,5}(?:-\d{1,7})?)"
    # space-separated groups: SSN 3 2 4, cards 4 4 4 4 (1-7), 4 6 5
    r"|(?P<space>\d{2,3} \d{2,6} \d{4,5}(?: \d{1,7})?)"
    # dotted ICD-9 (3 digits . 1-2)
    r"|(?P<dot>\d{2}\.\d{1,2})"
    # plain digit runs (3 to 19), or 4 digits + F/T (CPT category II/III)
    r"|(?P<digits>\d{2,18}|\d{3}[FT])"
    r")"
    # letter + digit + alnum (ICD-10-CM, ICD-9 V/E codes, HCPCS)
    r"|(?<=[A-Z])(?=[0-9])"
    + _B
    + r"(?P<alnum>\d[0-9A-Z](?:[0-9A-Z]?\.[0-9A-Z]{1,4}|[0-9A-Z]{1,4})?)"
    r")" + _R,
    re.ASCII,
)

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

_NEGATIVE_LABEL = re.compile(
    r"(?:order|invoice|inv|po|ref|reference|ticket|confirmation|tracking|zip|zip code|"
    r"postal code|phone|tel|fax|room|rm|suite|ste|case|claim|acct|extension|ext|"
    r"lot|batch|serial|model|part|sku|item|page|version|build|flight)"
    r"\W{0,3}(?:no\.?|number|num|#|id|code)?\W{0,3}$",
    re.ASCII,
)
_UNIT_AFTER = re.compile(
    r"\s?(?:mg|mcg|ml|mmol|meq|kg|g|lbs?|%|degrees|deg|units?|iu|bpm|mmhg|cm|mm|ng|"
    r"ms|sec|min|hours?|hrs?|days?|miles|km|dollars|usd|f|c)\b",
    re.ASCII,
)


# -------------------------------------------------------------------------- validators

_HCPCS_LETTERS = frozenset("ABCEGHJKLMPQRSTUV")


def _card_brand_ok(d: str) -> bool:
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    two, four, three, six = int(d[:2]), int(d[:4]), int(d[:3]), int(d[:6])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if four == 6011 or two == 65 or 644 <= three <= 649 or 622126 <= six <= 622925:
        return 16 <= n <= 19
    if 300 <= three <= 305 or two in (36, 38, 39) or four == 3095:
        return 14 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two == 62 or two == 81:  # UnionPay
        return 16 <= n <= 19
    if two in (50, 56, 57, 58, 63, 67):  # Maestro
        return 12 <= n <= 19
    return False


def _ssn_ok(d: str) -> bool:
    return us_ssn.is_valid(d)


def _rtn_ok(d: str) -> bool:
    two = int(d[:2])
    if not (two <= 12 or 21 <= two <= 32 or 61 <= two <= 72 or two == 80):
        return False
    return us_rtn.is_valid(d)


# ------------------------------------------------------------------------------ scanning


@dataclass(frozen=True)
class _Cand:
    type: str
    start: int
    end: int
    # confidence without keyword, with a (weak) keyword, with a strong keyword; None = drop
    bare: Confidence | None
    kw: Confidence | None
    strong: Confidence | None = None


_H, _M, _LOW = Confidence.HIGH, Confidence.MEDIUM, Confidence.LOW


def _negative_label(text: str, start: int) -> bool:
    return _NEGATIVE_LABEL.search(text[max(0, start - 24) : start].lower()) is not None


_STATE = re.compile(r"\b[A-Z]{2},?\s$", re.ASCII)


def _state_before(text: str, start: int) -> bool:
    """A US state abbreviation before a 5-digit number: a zip code ("IL 62704")."""
    return _STATE.search(text[max(0, start - 5) : start]) is not None


def _unit_after(text: str, end: int) -> bool:
    return _UNIT_AFTER.match(text[end : end + 12].lower()) is not None


class _DocWords:
    """Whether the whole document mentions any keyword of a type (lazily, once per type).

    Types that are never reported without a keyword (CPT, HCPCS, bare ICD-9 numbers) skip
    their candidates outright in documents that never name them.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._lowered: str | None = None
        self._seen: dict[str, bool] = {}

    @property
    def lowered(self) -> str:
        if self._lowered is None:
            self._lowered = self.text.lower()
        return self._lowered

    def mention(self, t: str) -> bool:
        got = self._seen.get(t)
        if got is None:
            low = self.lowered
            got = any(w.rstrip("*") in low for w in _KEYWORDS[t])
            self._seen[t] = got
        return got


def _classify(text: str, m: re.Match[str], out: list[_Cand], doc: _DocWords) -> None:
    kind = m.lastgroup
    s, e = m.span()
    tok = m.group()
    if kind == "dash" or kind == "space":
        sep = "-" if kind == "dash" else " "
        groups = tok.split(sep)
        shape = tuple(len(g) for g in groups)
        digits = "".join(groups)
        if shape == (3, 2, 4):
            if _ssn_ok(digits):
                out.append(_Cand("us-ssn", s, e, _M, _H))
            return
        if kind == "dash" and shape in ((4, 4, 2), (5, 3, 2), (5, 4, 1), (5, 4, 2)):
            out.append(_Cand("ndc", s, e, _LOW, _H))
            return
        if kind == "dash" and shape == (4, 4, 1):
            if _rtn_ok(digits):
                out.append(_Cand("aba-routing", s, e, _LOW, _H))
            return
        card_shape = shape in ((4, 6, 5), (4, 6, 4)) or (len(shape) == 4 and shape[:3] == (4, 4, 4))
        if card_shape and 13 <= len(digits) <= 19 and luhn.is_valid(digits):
            if _card_brand_ok(digits):
                out.append(_Cand("credit-card", s, e, _M, _H))
        return
    if kind == "digits":
        n = len(tok)
        if n == 9:
            if _ssn_ok(tok):
                out.append(_Cand("us-ssn", s, e, _LOW, _M))
            if _rtn_ok(tok) and not _negative_label(text, s):
                out.append(_Cand("aba-routing", s, e, _LOW, _H))
            return
        if n == 11:
            if not _negative_label(text, s):
                out.append(_Cand("ndc", s, e, None, _M))
            return
        if 13 <= n <= 19:
            if luhn.is_valid(tok) and _card_brand_ok(tok):
                out.append(_Cand("credit-card", s, e, _M, _H))
            return
        if n == 5:
            if not (doc.mention("cpt") or doc.mention("icd-9-cm")):
                return
            if _negative_label(text, s) or _unit_after(text, e) or _state_before(text, s):
                return
            if not tok.isdigit() or 100 <= int(tok) <= 99607:
                out.append(_Cand("cpt", s, e, None, _M, _H))
            if tok in icd9cm_codes():
                out.append(_Cand("icd-9-cm", s, e, None, None, _H))
            return
        if n == 3 and doc.mention("icd-9-cm"):  # an ICD-9-CM category ("ICD-9 250")
            if text[s - 1 : s] == "(" or text[e : e + 1] == ")":  # (555) area codes
                return
            if tok in icd9cm_codes() and not _negative_label(text, s) and not _unit_after(text, e):
                out.append(_Cand("icd-9-cm", s, e, None, None, _H))
        return
    if kind == "dot":
        if _unit_after(text, e) or _negative_label(text, s):
            return
        if tok.replace(".", "") in icd9cm_codes():
            out.append(_Cand("icd-9-cm", s, e, None, _M, _H))
        return
    # alnum
    code = tok.replace(".", "")
    dotted = "." in tok
    if code in icd10cm_codes():
        if dotted:
            out.append(_Cand("icd-10-cm", s, e, _M, _H))
        elif _DX_LABEL.search(text[max(0, s - 16) : s].lower()) is not None:
            out.append(_Cand("icd-10-cm", s, e, _H, _H))
        else:  # "G20", "S500": too often something else unless an ICD keyword is near
            out.append(_Cand("icd-10-cm", s, e, _LOW, _LOW, _H))
    first = tok[0]
    if first in "VE" and code in icd9cm_codes():
        out.append(_Cand("icd-9-cm", s, e, _LOW if dotted else None, _M, _H))
    if len(tok) == 5 and first in _HCPCS_LETTERS and tok[1:].isdigit() and doc.mention("hcpcs"):
        out.append(_Cand("hcpcs", s, e, None, _M, _H))


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


def scan_text(text: str, *, types: Iterable[str] | None = None) -> tuple[Finding, ...]:
    """Every finding in ``text``, in order of position (values are never kept)."""
    wanted = frozenset(types) if types is not None else frozenset(DETECTOR_TYPES)
    cands: list[_Cand] = []
    doc = _DocWords(text)
    for m in _CANDIDATES.finditer(text):
        _classify(text, m, cands, doc)
    cands = [c for c in cands if c.type in wanted]
    if not cands:
        return ()
    lowered = doc.lowered
    out: list[Finding] = []
    for c in cands:
        near = _keyword_near(lowered, _KEYWORDS[c.type], c.start, c.end)
        conf: Confidence | None
        if not near:
            conf = c.bare
        elif c.strong is not None and _keyword_near(lowered, _STRONG[c.type], c.start, c.end):
            conf = c.strong
        else:
            conf = c.kw
        if conf is not None:
            out.append(Finding(c.type, c.start, c.end, conf, near))
    return tuple(out)
