"""Scanner acceptance on generated text: recall and false positives per type.

The figures are printed (``pytest -s``) and asserted against the goals: 100 % recall on
checksum/code-list-valid identifiers with context (at the default threshold, medium),
no finding on invalid look-alikes, at most 1 % of neutral clinical paragraphs with a
finding at or above medium.
"""

from __future__ import annotations

from collections import Counter

import pytest

from client.policy.scan import DETECTOR_TYPES, Confidence, scan_text
from tests.helpers.phi_corpus import lookalikes, neutral, positives

N = 300


def _at_least_medium(c: Confidence) -> bool:
    return c.rank >= Confidence.MEDIUM.rank


def test_recall_per_type() -> None:
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    missed: list[str] = []
    for s in positives(N):
        total[s.type] += 1
        if any(
            f.type == s.type
            and (f.start, f.end) == (s.start, s.end)
            and _at_least_medium(f.confidence)
            for f in scan_text(s.text)
        ):
            hit[s.type] += 1
        else:
            missed.append(s.text)
    for t in DETECTOR_TYPES:
        print(f"recall {t}: {hit[t]}/{total[t]} = {100 * hit[t] / total[t]:.1f} %")
    assert not missed, missed[:5]


def test_lookalikes_are_not_findings() -> None:
    fp: Counter[str] = Counter()
    total: Counter[str] = Counter()
    bad: list[str] = []
    for s in lookalikes(N):
        total[s.type] += 1
        found = [
            f for f in scan_text(s.text) if f.type == s.type and f.start < s.end and s.start < f.end
        ]
        if found:
            fp[s.type] += 1
            bad.append(s.text)
    for t in DETECTOR_TYPES:
        print(f"look-alike false positives {t}: {fp[t]}/{total[t]}")
    assert not bad, bad[:5]


def test_neutral_prose_false_positive_rate() -> None:
    n = 3000
    any_medium: Counter[str] = Counter()
    any_low: Counter[str] = Counter()
    flagged = 0
    for text in neutral(n):
        findings = scan_text(text)
        medium = {f.type for f in findings if _at_least_medium(f.confidence)}
        flagged += bool(medium)
        for t in medium:
            any_medium[t] += 1
        for t in {f.type for f in findings}:
            any_low[t] += 1
    for t in DETECTOR_TYPES:
        print(f"neutral {t}: >=medium {any_medium[t]}/{n}, any (incl. low) {any_low[t]}/{n}")
    assert flagged / n <= 0.01


@pytest.mark.parametrize(
    "ssn",
    ["000-12-3456", "666-12-3456", "900-12-3456", "999-12-3456", "123-00-4567", "123-45-0000"],
)
def test_invalid_ssn_components(ssn: str) -> None:
    assert not [f for f in scan_text(f"SSN {ssn}") if f.type == "us-ssn"]


def test_ssn_confidence_levels() -> None:
    def conf(text: str) -> list[str]:
        return [f.confidence.value for f in scan_text(text) if f.type == "us-ssn"]

    assert conf("SSN 123-45-6789") == ["high"]
    assert conf("see 123-45-6789 above") == ["medium"]
    assert conf("social security number 123456789") == ["medium"]
    assert conf("reference 123456789 above") == ["low"]


def test_offsets_point_into_the_text() -> None:
    text = "Ünïcödé first — Dx: E11.9, card 4111-1111-1111-1111."
    got = {f.type: text[f.start : f.end] for f in scan_text(text)}
    assert got == {"icd-10-cm": "E11.9", "credit-card": "4111-1111-1111-1111"}


def test_dates_phones_orders_and_units_are_quiet() -> None:
    text = (
        "Diagnosis reviewed on 2024-01-15 and 01/15/2024; call (555) 123-4567 or 555-123-4567. "
        "Order number 84512 billed. Temp 100.8 F, glucose 250 mg/dL. CPT ZIP: Springfield, IL 62704."
    )
    assert [f for f in scan_text(text) if f.confidence.rank >= 1] == []


def test_types_filter() -> None:
    assert {f.type for f in scan_text("SSN 123-45-6789, dx E11.9", types=["icd-10-cm"])} == {
        "icd-10-cm"
    }


def test_empty_and_digitless_text() -> None:
    assert scan_text("") == ()
    assert scan_text("No identifiers here at all.") == ()
