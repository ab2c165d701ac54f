"""Levels, the organisation policy and its schema, and the pure planner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from client.policy.errors import InvalidLevel, InvalidPolicy
from client.policy.levels import Level
from client.policy.mtasts import MtaStsRecord, parse_sts_policy
from client.policy.orgpolicy import DEFAULT_POLICY, SCHEMA, parse_policy
from client.policy.plan import (
    Draft,
    KeyStatus,
    Original,
    RecipientKeyStatus,
    TlsKnowledge,
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


# ------------------------------------------------------------ tls-required knowledge


def _sts(domain: str, mode: str, fetched: datetime = NOW, max_age: int = 86400) -> MtaStsRecord:
    body = f"version: STSv1\nmode: {mode}\nmx: mx.{domain}\nmax_age: {max_age}\n"
    return MtaStsRecord.from_policy(domain, "abc123", parse_sts_policy(body.encode()), fetched)


def _tls_plan(rcpts: list[str], tls: TlsKnowledge, **policy: object):  # type: ignore[no-untyped-def]
    org = parse_policy(
        {"version": 1, "minimum_level": "tls-required", "password_envelopes": False, **policy}
    )
    return plan(Draft("hi", "a@clinic.example"), rcpts, KeyStatus({}), org, NOW, tls=tls)


def test_tls_required_met_by_mta_sts_enforce_with_reason() -> None:
    tls = TlsKnowledge({"sts.example": _sts("sts.example", "enforce")})
    p = _tls_plan(["b@sts.example", "c@lab.example"], tls, partner_tls_domains=["lab.example"])
    assert not p.hold
    by = {r.address: r for r in p.recipients}
    assert by["b@sts.example"].method == "tls-required"
    assert by["b@sts.example"].why == "MTA-STS enforce (id abc123, until 2026-06-02T00:00Z)"
    assert by["c@lab.example"].why == "partner list"
    assert {g.method for g in p.groups} == {"tls-required"}


def test_tls_required_mta_sts_testing_expired_or_missing_fails_closed() -> None:
    stale = NOW - timedelta(days=2)
    tls = TlsKnowledge(
        {
            "test.example": _sts("test.example", "testing"),
            "old.example": _sts("old.example", "enforce", fetched=stale),
            "none.example": _sts("none.example", "none"),
        }
    )
    p = _tls_plan(["a@test.example", "b@old.example", "c@none.example", "d@x.example"], tls)
    assert p.hold and all(r.method is None for r in p.recipients)
    assert all(r.level is Level.ENCRYPTED for r in p.recipients)  # escalated
    whys = [r.why for r in p.recipients]
    assert "does not enforce" in whys[0] and "has expired" in whys[1]
    assert "does not enforce" in whys[2] and whys[3].startswith("not a verified-TLS domain,")


def test_user_partner_domains_count_only_when_the_policy_allows() -> None:
    tls = TlsKnowledge(user_partners=frozenset({"mine.example"}))
    assert _tls_plan(["b@mine.example"], tls).hold
    p = _tls_plan(["b@mine.example"], tls, user_may={"add_partner_domains": True})
    assert not p.hold and p.recipients[0].why == "partner list (added by you)"


# ------------------------------------------------------------------ reply / forward

SENDER = "a@clinic.example"
ENC_KEYS = KeyStatus(
    {
        a: RecipientKeyStatus(a, smime=True)
        for a in ("doc@lab.example", "nurse@lab.example", "x@other.example", "c@clinic.example")
    },
    frozenset({"smime"}),
)


def _reply(rcpts: list[str], original: Original, **rf: object):  # type: ignore[no-untyped-def]
    org = parse_policy({"version": 1, "internal_domains": ["clinic.example"], "reply_forward": rf})
    draft = Draft("Re: labs", SENDER, original=original)
    return plan(draft, rcpts, ENC_KEYS, org, NOW)


ENVELOPE_IN = Original("reply", "doc@lab.example", Level.ENCRYPTED, envelope=True)


def test_reply_to_protected_mail_is_encrypted_and_limited_to_sender_domain() -> None:
    p = _reply(["doc@lab.example", "nurse@lab.example", SENDER], ENVELOPE_IN)
    assert not p.hold and p.level is Level.ENCRYPTED
    assert any(r.rule == "reply-to-protected" for r in p.reasons)
    p = _reply(["doc@lab.example", "x@other.example"], ENVELOPE_IN)
    assert p.hold
    blocked = {r.address: r for r in p.recipients if r.method is None}
    assert list(blocked) == ["x@other.example"]
    assert "only to its sender's domain (lab.example)" in blocked["x@other.example"].why
    assert [f.action for f in p.fixes] == ["remove-recipient"]


def test_reply_rules_sender_internal_any() -> None:
    rcpts = ["doc@lab.example", "nurse@lab.example", "c@clinic.example", "x@other.example"]

    def blocked(rule: str) -> list[str]:
        p = _reply(rcpts, ENVELOPE_IN, envelope_replies=rule)
        return [r.address for r in p.recipients if r.method is None]

    assert blocked("sender") == rcpts[1:]
    assert blocked("sender-domain") == rcpts[2:]
    assert blocked("internal") == ["nurse@lab.example", "x@other.example"]
    assert blocked("any") == []


def test_reply_to_unprotected_mail_is_not_restricted() -> None:
    plain = Original("reply", "doc@lab.example", Level.TLS)
    p = _reply(["x@other.example"], plain)
    assert not p.hold and p.level is Level.TLS


def test_forward_of_protected_keeps_encryption_and_envelopes_stay_inside() -> None:
    fwd = Original("forward", "doc@lab.example", Level.ENCRYPTED, envelope=True)
    p = _reply(["c@clinic.example", "x@other.example"], fwd)
    assert p.level is Level.ENCRYPTED and any(r.rule == "forward-of-protected" for r in p.reasons)
    assert [r.address for r in p.recipients if r.method is None] == ["x@other.example"]
    assert "only inside the organisation" in p.recipients[1].why
    assert not _reply(["x@other.example"], fwd, forward_envelopes=True).hold
    smime_in = Original("forward", "doc@lab.example", Level.ENCRYPTED_SIGNED)
    p = _reply(["x@other.example"], smime_in)
    assert not p.hold and p.level is Level.ENCRYPTED and p.recipients[0].method == "smime"


def test_example_policy_reply_rules_and_user_overrides() -> None:
    p = parse_policy((REPO / "packaging/policy/example-clinic.json").read_bytes())
    assert p.reply_forward.envelope_replies == "sender-domain"
    assert not p.reply_forward.forward_envelopes and not p.user_may.add_partner_domains
