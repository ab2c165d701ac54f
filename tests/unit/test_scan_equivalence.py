"""The fast scanner reports exactly what the simple one-regex scanner reported.

:mod:`tests.helpers.scan_reference` is the scanner before the speed work, frozen. Every
finding's type, start, end, confidence and keyword flag must match, on the acceptance
corpora, on mixed mail, on non-ASCII text (where keyword lookups take the other path), with
a ``types`` filter, and on random text built from digits, separators, capitals and
keywords (Hypothesis).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.policy import scan
from tests.helpers import scan_reference as ref
from tests.helpers.phi_corpus import lookalikes, mail_text, mixed_text, neutral, positives


def _key(findings: Any) -> list[tuple[str, int, int, str, bool]]:
    return [(f.type, f.start, f.end, f.confidence.value, f.keyword) for f in findings]


def _same(text: str, types: list[str] | None = None) -> int:
    want = _key(ref.scan_text(text, types=types))
    got = _key(scan.scan_text(text, types=types))
    assert got == want, text[:300]
    return len(got)


def test_acceptance_corpora_identical() -> None:
    texts = [s.text for s in positives(150)] + [s.text for s in lookalikes(150)]
    texts += list(neutral(500))
    assert sum(_same(t) for t in texts) > 1000


@pytest.mark.parametrize("make", [mail_text, mixed_text], ids=["mail", "dense"])
def test_mixed_text_identical(make: Any) -> None:
    text = make(400_000)
    assert _same(text) > 100
    assert _same(text, ["cpt", "icd-9-cm", "us-ssn"]) > 10


def test_non_ascii_text_identical() -> None:
    text = mail_text(200_000).replace("Maria", "Mar\u00eda").replace("Patel", "P\u00e2tel")
    assert not text.isascii()
    assert _same(text) > 50
    # characters whose lower case differs in length or is ASCII (the old search used
    # text.lower() with the text's offsets)
    assert _same("\u0130\u0130 SSN 123-45-6789 BAN\u212a routing 021000021 \u212aCPT 99213") >= 2


def test_digit_free_and_empty_text() -> None:
    assert scan.scan_text("") == ()
    assert scan.scan_text("No numbers here, ICD or CPT or SSN.") == ()


_KEYWORDS = [
    *sorted({w.rstrip("*") for ws in ref._KEYWORDS.values() for w in ws}),
    "ICD-9",
    "CPT",
    "HCPCS",
    "Dx:",
    "IL ",
    "order #",
    "mg",
    "(",
    ")",
]
_piece = st.one_of(
    st.text(alphabet="0123456789", min_size=1, max_size=20),
    st.text(alphabet="0123456789 -./_#:\n", min_size=1, max_size=12),
    st.text(alphabet="ABEFGJHTVXZ0123456789.", min_size=1, max_size=8),
    st.sampled_from(_KEYWORDS),
    st.sampled_from(_KEYWORDS).map(str.upper),
    st.text(alphabet="abcxyz \u00e9\u212a", min_size=1, max_size=6),
)


@given(st.lists(_piece, min_size=1, max_size=40).map("".join))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_random_text_identical(text: str) -> None:
    _same(text)


def test_keyword_index_in_use() -> None:
    """ASCII text takes the indexed path (Hyperscan installed); other text the fallback."""
    from client.policy.keywords import keyword_index

    index = keyword_index("SSN 123-45-6789; ssns, xssn, ssn_", scan._WORDS)
    assert index is not None
    ssn = frozenset({scan._WORDS.index("ssn")})
    assert index.spans(ssn) == ([0, 29], [3, 32])
    assert index.near(ssn, 0, 3) and not index.near(ssn, 1, 28)
    assert keyword_index("Mar\u00eda SSN 123-45-6789", scan._WORDS) is None


@given(
    st.lists(_piece, min_size=1, max_size=30).map("".join),
    st.lists(st.tuples(st.integers(-20, 400), st.integers(0, 400)), min_size=1, max_size=20),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_near_in_answers_as_near(text: str, windows: list[tuple[int, int]]) -> None:
    """The scanner's lookup on packed occurrences equals the plain scan (``near``)."""
    from client.policy.keywords import keyword_index, near_in

    text = text.encode("ascii", "replace").decode("ascii")
    index = keyword_index(text, scan._WORDS)
    assert index is not None
    for ids in (*scan._IDS.values(), *scan._STRONG_IDS.values()):
        table = index.packed(ids)
        assert len(table) == len(index.spans(ids)[0]) + 1
        for lo, width in windows:
            hi = lo + width
            assert near_in(table, lo, hi) == index.near(ids, lo, hi), (text, lo, hi)


def test_without_hyperscan_identical() -> None:
    """Without Hyperscan (not installed) the scanner searches keywords itself: same findings."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys; sys.modules['hyperscan'] = None\n"
        "from client.policy import scan, keywords\n"
        "from tests.helpers import scan_reference as ref\n"
        "from tests.helpers.phi_corpus import mail_text\n"
        "assert keywords.hyperscan is None\n"
        "text = mail_text(150_000)\n"
        "key = lambda fs: [(f.type, f.start, f.end, f.confidence.value, f.keyword) for f in fs]\n"
        "got, want = key(scan.scan_text(text)), key(ref.scan_text(text))\n"
        "assert got == want and len(got) > 50, len(got)\n"
        "print(len(got))\n"
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) > 50
