"""The scanner's inlined checksum validators equal python-stdnum's on ASCII digit strings.

:mod:`client.policy.checks` checks SSNs, ABA routing numbers and the Luhn digit without
python-stdnum's cleaning and exceptions (they cost more than the checks); these tests hold
them to ``stdnum``'s ``is_valid`` on edge cases and on random digit strings (Hypothesis).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.us import rtn as us_rtn
from stdnum.us import ssn as us_ssn

from client.policy import checks, scan

_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


def test_ssn_edge_cases() -> None:
    cases = ["078051120", "457555462", "219099999", "000123456", "666123456", "900123456"]
    cases += ["123004567", "123450000", "123456789", "665999999", "899999999", "001010001"]
    for d in cases:
        assert checks.ssn_ok(d) == us_ssn.is_valid(d), d
    assert not checks.ssn_ok("078051120") and checks.ssn_ok("123456789")


@given(_digits)
@settings(max_examples=1000, deadline=None)
def test_ssn_matches_stdnum(d: str) -> None:
    assert checks.ssn_ok(d) == us_ssn.is_valid(d)


@given(_digits)
@settings(max_examples=1000, deadline=None)
def test_rtn_matches_stdnum(d: str) -> None:
    two = int(d[:2])
    fed = two <= 12 or 21 <= two <= 32 or 61 <= two <= 72 or two == 80
    assert checks.rtn_ok(d) == (fed and us_rtn.is_valid(d))


def test_rtn_known_numbers() -> None:
    assert checks.rtn_ok("021000021") and checks.rtn_ok("011000015")
    assert not checks.rtn_ok("021000022") and not checks.rtn_ok("991000021")


@given(st.text(alphabet="0123456789", min_size=1, max_size=19))
@settings(max_examples=1000, deadline=None)
def test_luhn_matches_stdnum(d: str) -> None:
    assert checks.luhn_ok(d) == luhn.is_valid(d)


def test_luhn_known_numbers() -> None:
    assert checks.luhn_ok("4111111111111111") and checks.luhn_ok("378282246310005")
    assert not checks.luhn_ok("4111111111111112")


_label_text = st.lists(
    st.one_of(
        st.sampled_from(["order", "Zip Code", "postal code", "inv", "ext", "#", "no.", "No"]),
        st.sampled_from(["number", "id", "code", "PO", "reorder", "room", "Flight"]),
        st.text(alphabet=" .:#-\n\t/()abcxyz0\u0130\u212a", min_size=1, max_size=4),
    ),
    max_size=8,
).map("".join)


@given(_label_text)
@settings(max_examples=1500, deadline=None)
def test_negative_label_matches_forward_search(before: str) -> None:
    """The backwards match of a label ("order #", "zip") before a number answers as the
    forward search of the scanner before the speed work."""
    from tests.helpers import scan_reference as ref

    text = before + "12345"
    start = len(before)
    assert scan._negative_label(text, start) == ref._negative_label(text, start)


def test_negative_label_examples() -> None:
    for before in ("Order #", "zip code: ", "Room ", "PO no. ", "order      \n"):
        assert scan._negative_label(before + "12345", len(before)), before
    for before in ("CPT ", "billed ", "dx: ", "order        \n"):
        assert not scan._negative_label(before + "12345", len(before)), before
