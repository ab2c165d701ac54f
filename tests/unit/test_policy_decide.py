"""End to end through the real keystore and crypto: scan → plan → protect → audit.

Keys are generated in a temporary profile on the headless passphrase path (the ``fail``
keyring backend and a profile passphrase), as on a machine without an OS keyring.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.policy.decide import Hold, ProtectedCopy, decide_and_protect, replace_subject
from client.policy.levels import Level
from client.policy.orgpolicy import DEFAULT_POLICY, parse_policy
from client.services import Session
from keystore.store import Keystore

NOW = datetime.now(UTC)
ALICE = "alice@clinic.example"
PHI = "Patient SSN 123-45-6789; follow-up next week.\n"


def _msg(to: str, subject: str = "Labs", body: str = PHI) -> bytes:
    return (
        f"From: Alice <{ALICE}>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <m1@clinic.example>\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
        f"\r\n{body}"
    ).encode()


@pytest.fixture
def session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    store = Keystore.open(tmp_path / "alice", passphrase="alice profile passphrase")
    s = Session(store)
    s.keys_generate(ALICE, name="Alice", kind="pgp", now=NOW)
    s.keys_generate(ALICE, name="Alice", kind="smime", now=NOW)
    yield s
    s.close()


def _contact(tmp_path: Path, session: Session, email_addr: str, kind: str) -> Session:
    other = Session(Keystore.open(tmp_path / email_addr, passphrase="contact passphrase"))
    info = other.keys_generate(email_addr, name=None, kind=kind, now=NOW)  # type: ignore[arg-type]
    session.keys_import(
        other.keys_export(info.fingerprint),
        passphrase=lambda: None,
        trust=kind == "smime",
        now=NOW,
    )
    return other


def test_ssn_without_recipient_key_is_held_with_fixes(session: Session) -> None:
    raw = _msg("bob@partner.example")
    policy = parse_policy({"version": 1, "password_envelopes": False})
    result = decide_and_protect(raw, session, policy, now=NOW, rng=os.urandom)
    assert isinstance(result, Hold)
    assert result.plan.level is Level.ENCRYPTED
    assert any(r.rule == "finding" and r.type == "us-ssn" for r in result.plan.reasons)
    actions = {f.action for f in result.fixes}
    assert {"import-key", "remove-recipient"} <= actions
    assert "123-45-6789" not in json.dumps(result.to_json())
    verified = session.audit_verify()
    assert verified.ok and verified.records[-1].decision == "hold"
    assert "123-45-6789" not in session.audit_log.path.read_text()


def test_envelope_needed_but_unavailable_is_held(session: Session) -> None:
    result = decide_and_protect(
        _msg("bob@partner.example"), session, DEFAULT_POLICY, now=NOW, rng=os.urandom
    )
    assert isinstance(result, Hold)
    assert "use-envelope" in {f.action for f in result.fixes}


def test_envelope_hook_is_called_for_keyless_recipients(session: Session) -> None:
    calls: list[tuple[str, ...]] = []

    def maker(raw: bytes, recipients: object, *, now: datetime, rng: object) -> bytes:
        calls.append(tuple(recipients))  # type: ignore[arg-type]
        return b"ENVELOPE"

    result = decide_and_protect(
        _msg("bob@partner.example"),
        session,
        DEFAULT_POLICY,
        now=NOW,
        rng=os.urandom,
        envelope=maker,
    )
    assert isinstance(result, list)
    assert [(c.method, c.message) for c in result] == [("envelope", b"ENVELOPE")]
    assert calls == [("bob@partner.example",)]


def test_with_key_goes_out_encrypted_and_decrypts(tmp_path: Path, session: Session) -> None:
    bob = _contact(tmp_path, session, "bob@partner.example", "pgp")
    result = decide_and_protect(
        _msg("bob@partner.example"), session, DEFAULT_POLICY, now=NOW, rng=os.urandom
    )
    assert isinstance(result, list) and len(result) == 1
    (copy,) = result
    assert copy.method == "pgp" and copy.level is Level.ENCRYPTED
    assert b"123-45-6789" not in copy.message
    opened = bob.message_open(copy.message, now=NOW, require="encrypted")
    assert b"123-45-6789" in opened.message
    # the sender's own key is a recipient too (Sent copy)
    assert b"123-45-6789" in session.message_open(copy.message, now=NOW).message


def test_secure_tag_encrypts_and_is_removed(tmp_path: Path, session: Session) -> None:
    bob = _contact(tmp_path, session, "bob@partner.example", "smime")
    raw = _msg("bob@partner.example", subject="[SECURE] Results for Friday", body="Hello.\n")
    result = decide_and_protect(raw, session, DEFAULT_POLICY, now=NOW, rng=os.urandom)
    assert isinstance(result, list)
    (copy,) = result
    assert copy.method == "smime" and copy.level is Level.ENCRYPTED
    opened = bob.message_open(copy.message, now=NOW, require="encrypted")
    inner = email.message_from_bytes(opened.message, policy=email.policy.default)
    assert inner["Subject"] == "Results for Friday"
    assert b"[SECURE]" not in copy.message and b"[secure]" not in opened.message.lower()


def test_mixed_recipients_one_copy_per_method(tmp_path: Path, session: Session) -> None:
    _contact(tmp_path, session, "bob@partner.example", "pgp")
    _contact(tmp_path, session, "carol@lab.example", "smime")
    raw = _msg("bob@partner.example, carol@lab.example")
    result = decide_and_protect(raw, session, DEFAULT_POLICY, now=NOW, rng=os.urandom)
    assert isinstance(result, list)
    by_method = {c.method: c.recipients for c in result}
    assert by_method == {"pgp": ("bob@partner.example",), "smime": ("carol@lab.example",)}
    assert all(isinstance(c, ProtectedCopy) and b"123-45-6789" not in c.message for c in result)


def test_no_phi_goes_over_tls_and_user_can_raise(tmp_path: Path, session: Session) -> None:
    _contact(tmp_path, session, "bob@partner.example", "pgp")
    raw = _msg("bob@partner.example", body="See you Tuesday.\n")
    result = decide_and_protect(raw, session, DEFAULT_POLICY, now=NOW, rng=os.urandom)
    assert isinstance(result, list) and [c.method for c in result] == ["tls"]
    assert result[0].message == raw
    raised = decide_and_protect(
        raw, session, DEFAULT_POLICY, level=Level.ENCRYPTED_SIGNED, now=NOW, rng=os.urandom
    )
    assert isinstance(raised, list) and raised[0].level is Level.ENCRYPTED_SIGNED
    opened = session.message_open(raised[0].message, now=NOW)
    assert opened.report.encrypted and opened.report.signed


def test_audit_chain_verifies_and_detects_tampering(tmp_path: Path, session: Session) -> None:
    _contact(tmp_path, session, "bob@partner.example", "pgp")
    for subject in ("one", "two", "three"):
        decide_and_protect(
            _msg("bob@partner.example", subject=subject),
            session,
            DEFAULT_POLICY,
            now=NOW,
            rng=os.urandom,
        )
    log = session.audit_log
    assert session.audit_verify().ok and session.audit_verify().count == 3
    assert (log.path.stat().st_mode & 0o777) == 0o600
    lines = log.path.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[1])
    assert record["reasons"][-1]["type"] == "us-ssn" and "value" not in json.dumps(record)
    log.path.write_bytes(lines[0] + lines[1].replace(b'"pgp"', b'"tls"') + lines[2])
    assert not session.audit_verify().ok  # edited
    log.path.write_bytes(lines[0] + lines[2])
    assert not session.audit_verify().ok  # deleted
    log.path.write_bytes(lines[1] + lines[0] + lines[2])
    assert not session.audit_verify().ok  # reordered
    log.path.write_bytes(lines[0] + lines[1])
    assert not session.audit_verify().ok  # tail truncated (the head remembers 3)
    log.path.write_bytes(b"".join(lines))
    assert session.audit_verify().ok


def test_replace_subject_keeps_other_bytes() -> None:
    raw = b"From: a@b.example\r\nSubject: [secure] x\r\n y\r\nTo: c@d.example\r\n\r\nbody\r\n"
    out = replace_subject(raw, "x y")
    assert out == b"From: a@b.example\r\nSubject: x y\r\nTo: c@d.example\r\n\r\nbody\r\n"
    assert b"=?utf-8?" in replace_subject(raw, "Befund für Müller")


# ------------------------------------------- facts from the profile: cache, TLS knowledge


def _cache_original(session: Session, mid: str, content_type: str, body: bytes) -> None:
    from client.transport.imap import HeaderRecord

    headers = f"From: Doc <doc@lab.example>\r\nMessage-ID: {mid}\r\nSubject: labs\r\n".encode()
    cache = session.cache()
    try:
        cache.put_headers(
            ALICE,
            "INBOX",
            [HeaderRecord(7, (), len(body), None, None, headers, content_type)],
        )
        cache.put_body(ALICE, "INBOX", 7, body)
    finally:
        cache.close()


def _envelope_body() -> bytes:
    return (
        b"From: doc@lab.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nDoc sent you a secure message.\r\n--b\r\n"
        b'Content-Type: text/html\r\nContent-Disposition: attachment; filename="secure-message.html"'
        b"\r\n\r\n<html></html>\r\n--b--\r\n"
    )


def test_reply_to_cached_envelope_is_limited_to_the_senders_domain(
    tmp_path: Path, session: Session
) -> None:
    _cache_original(session, "<orig@lab.example>", "multipart/mixed", _envelope_body())
    _contact(tmp_path, session, "doc@lab.example", "pgp")
    _contact(tmp_path, session, "x@other.example", "pgp")
    reply = _msg("doc@lab.example, x@other.example", "Re: labs", "Thanks.\n").replace(
        b"Message-ID:", b"In-Reply-To: <orig@lab.example>\r\nMessage-ID:"
    )
    result = decide_and_protect(reply, session, DEFAULT_POLICY, now=NOW, rng=os.urandom)
    assert isinstance(result, Hold)
    assert result.plan.level is Level.ENCRYPTED  # no PHI, but the original was protected
    assert any(r.rule == "reply-to-protected" for r in result.plan.reasons)
    assert [r.address for r in result.plan.recipients if r.method is None] == ["x@other.example"]
    assert "sender's domain (lab.example)" in result.reason
    # only the sender's domain: goes out, encrypted
    ok = decide_and_protect(
        reply.replace(b", x@other.example", b""), session, DEFAULT_POLICY, now=NOW, rng=os.urandom
    )
    assert isinstance(ok, list) and [c.method for c in ok] == ["pgp"]
    plan_json = session.policy_plan(reply, DEFAULT_POLICY, level=None, now=NOW).to_json()
    assert plan_json["decision"] == "hold"


def test_forward_of_cached_encrypted_mail_stays_encrypted(tmp_path: Path, session: Session) -> None:
    _cache_original(session, "<enc@lab.example>", "application/pkcs7-mime", b"x" * 40)
    _contact(tmp_path, session, "x@other.example", "smime")
    fwd = _msg("x@other.example", "Fwd: labs", "See below.\n").replace(
        b"Message-ID:", b"X-Forwarded-Message-Id: <enc@lab.example>\r\nMessage-ID:"
    )
    result = decide_and_protect(fwd, session, DEFAULT_POLICY, now=NOW, rng=os.urandom)
    assert isinstance(result, list) and [(c.method, c.level) for c in result] == [
        ("smime", Level.ENCRYPTED)
    ]


def test_mta_sts_knowledge_in_the_profile_meets_tls_required(session: Session) -> None:
    from client.policy.mtasts import MtaStsRecord, parse_sts_policy

    policy = parse_policy(
        {"version": 1, "minimum_level": "tls-required", "password_envelopes": False}
    )
    raw = _msg("bob@partner.example", body="See you Tuesday.\n")
    assert isinstance(decide_and_protect(raw, session, policy, now=NOW, rng=os.urandom), Hold)
    body = b"version: STSv1\nmode: enforce\nmx: mx.partner.example\nmax_age: 604800\n"
    record = MtaStsRecord.from_policy("partner.example", "i1", parse_sts_policy(body), NOW)
    session.tls_store().put_mta_sts(record)
    result = decide_and_protect(raw, session, policy, now=NOW, rng=os.urandom)
    assert isinstance(result, list)
    assert [(c.method, c.require_tls) for c in result] == [("tls-required", True)]
    assert session.audit_verify().records[-1].methods == {"bob@partner.example": "tls-required"}
