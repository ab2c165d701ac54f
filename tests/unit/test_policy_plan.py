"""Levels, the organisation policy and its schema, and the pure planner."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.policy.errors import InvalidLevel, InvalidPolicy
from client.policy.levels import Level
from client.policy.orgpolicy import DEFAULT_POLICY, SCHEMA, parse_policy
from client.policy.plan import (
    Draft,
    KeyStatus,
    RecipientKeyStatus,
    plan,
    strip_subject_tags,
)
from client.policy.scan import Confidence, Finding

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 6, 1, tzinfo=UTC)
SSN = Finding("us-ssn", 10, 21, Confidence.HIGH, True)


def test_levels_are_ordered() -> None:
    order = [
        Level.parse(x) for x in ["tls", "tls-required", "signed", "encrypted", "encrypted+signed"]
    ]
    assert order == sorted(order)
    assert Level.ENCRYPTED.raise_to(Level.TLS) is Level.ENCRYPTED
    assert Level.ENCRYPTED.with_signature() is Level.ENCRYPTED_SIGNED
    assert Level.ENCRYPTED_SIGNED.encrypts and Level.ENCRYPTED_SIGNED.signs
    with pytest.raises(InvalidLevel):
        Level.parse("plain")


def test_published_schema_matches_code() -> None:
    published = json.loads((REPO / "client/policy/policy.schema.json").read_text())
    assert published == SCHEMA


def test_example_clinic_policy_validates() -> None:
    p = parse_policy((REPO / "packaging/policy/example-clinic.json").read_bytes())
    assert p.has_verified_tls("x@lab.example") and p.is_internal("y@dept.clinic.example")
    assert p.detectors["cpt"].threshold is Confidence.HIGH


def test_invalid_policy_lists_every_problem() -> None:
    with pytest.raises(InvalidPolicy) as err:
        parse_policy(
            b'{"version": 1, "minimum_level": "plain", "detectors": {"x": {}}, "extra": 1}'
        )
    assert len(err.value.problems) == 3
    assert any(p.startswith("$.minimum_level") for p in err.value.problems)
    with pytest.raises(InvalidPolicy):
        parse_policy(b"not json")
    with pytest.raises(InvalidPolicy):
        parse_policy(b'{"name": "no version"}')


def _keys(**kw: tuple[bool, bool]) -> KeyStatus:
    return KeyStatus(
        {a.replace("_", "@") + ".example": RecipientKeyStatus(a, s, p) for a, (s, p) in kw.items()},
        frozenset({"smime", "pgp"}),
    )


def _plan(draft: Draft, rcpts: list[str], keys: KeyStatus, **policy: object):  # type: ignore[no-untyped-def]
    return plan(draft, rcpts, keys, parse_policy({"version": 1, **policy}), NOW)


def test_user_cannot_lower_below_policy() -> None:
    d = Draft("hi", "a@x.example", user_level=Level.TLS)
    p = _plan(
        d,
        ["b@y.example"],
        KeyStatus({}),
        minimum_level="tls-required",
        partner_tls_domains=["y.example"],
    )
    assert p.level is Level.TLS_REQUIRED
    assert any(r.rule == "user-level-ignored" for r in p.reasons)
    assert p.recipients[0].method == "tls-required"


def test_tls_required_escalates_for_non_partners() -> None:
    d = Draft("hi", "a@x.example")
    keys = KeyStatus({"c@z.example": RecipientKeyStatus("c@z.example", pgp=True)})
    p = _plan(d, ["c@z.example"], keys, minimum_level="tls-required", password_envelopes=False)
    assert p.recipients[0].method == "pgp" and p.recipients[0].level is Level.ENCRYPTED


def test_finding_below_threshold_does_not_raise() -> None:
    d = Draft("hi", "a@x.example", findings=(Finding("cpt", 0, 5, Confidence.MEDIUM),))
    p = _plan(d, ["b@y.example"], KeyStatus({}), detectors={"cpt": {"threshold": "high"}})
    assert p.level is Level.TLS and not p.hold


def test_fail_closed_whole_message_and_fixes() -> None:
    d = Draft("hi", "a@x.example", findings=(SSN,))
    keys = KeyStatus({"b@y.example": RecipientKeyStatus("b@y.example", smime=True)})
    p = _plan(d, ["b@y.example", "c@z.example"], keys, password_envelopes=False)
    assert p.hold
    assert [r.method for r in p.recipients] == ["smime", None]
    assert {f.action for f in p.fixes} == {"import-key", "remove-recipient"}
    assert p.to_json()["decision"] == "hold"


def test_groups_per_method_and_preference() -> None:
    d = Draft("[Encrypt] hi", "a@x.example")
    keys = KeyStatus(
        {
            "b@y.example": RecipientKeyStatus("b@y.example", smime=True, pgp=True),
            "c@z.example": RecipientKeyStatus("c@z.example", pgp=True),
            "d@w.example": RecipientKeyStatus("d@w.example"),
        },
        frozenset({"pgp", "smime"}),
    )
    p = _plan(
        d, ["b@y.example", "c@z.example", "d@w.example"], keys, method_preference=["pgp", "smime"]
    )
    assert p.level is Level.ENCRYPTED and p.subject == "hi" and p.tags == ("[Encrypt]",)
    assert {g.method: g.recipients for g in p.groups} == {
        "pgp": ("b@y.example", "c@z.example"),
        "envelope": ("d@w.example",),
    }


def test_signed_needs_sender_key_for_method() -> None:
    d = Draft("hi", "a@x.example", user_level=Level.ENCRYPTED_SIGNED)
    keys = KeyStatus(
        {"b@y.example": RecipientKeyStatus("b@y.example", smime=True)}, frozenset({"pgp"})
    )
    p = _plan(d, ["b@y.example"], keys, password_envelopes=False)
    assert p.hold and "signing" in p.recipients[0].why


def test_unreadable_attachment_fails_closed() -> None:
    d = Draft("hi", "a@x.example", unreadable=("scan.tiff",))
    assert _plan(d, ["b@y.example"], KeyStatus({})).level is Level.ENCRYPTED
    assert (
        _plan(d, ["b@y.example"], KeyStatus({}), unscannable_attachments="ignore").level
        is Level.TLS
    )


def test_subject_tags_case_insensitive_anywhere() -> None:
    assert (
        strip_subject_tags("Re: labs [SECURE] for Friday", DEFAULT_POLICY.subject_tags)
        == "Re: labs for Friday"
    )


def test_no_recipients_is_hold() -> None:
    assert _plan(Draft("x", None), [], KeyStatus({})).hold
