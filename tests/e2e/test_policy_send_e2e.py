"""`sealmail send` applies the protection policy, fails closed — checked on the real rig.

Every test asserts on what the servers actually got: the submission server's accepted
transactions (``rig.submission.accepted``: envelope and every byte of DATA) and the
Dovecot mailboxes (``rig.imap``). Leaks are checked by searching every byte the
submission server received for the plaintext marker. The rig is private to this module
(five users), so its ``accepted`` list holds only this module's traffic.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.servers.rig import MailRig

ALICE, BOB, CAROL, DAVE, ERIN = (
    f"{u}@example.test" for u in ("alice", "bob", "carol", "dave", "erin")
)
SSN = "123-45-6789"


@pytest.fixture(scope="module")
def rig() -> Iterator[MailRig]:
    users = {
        u: f"{u.split('@')[0]}-imap-secret-{i}Q"
        for i, u in enumerate((ALICE, BOB, CAROL, DAVE, ERIN))
    }
    r = MailRig.start(users=users)
    try:
        yield r
    finally:
        r.stop()


# ---------------------------------------------------------------------------- helpers


def _pipe(data: bytes) -> int:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def _account(cli: Cli, rig: MailRig, user: str) -> None:
    fd = _pipe(rig.password(user).encode() + b"\n")
    try:
        cli.ok(
            "account", "add", "--email", user,
            "--imap", f"127.0.0.1:{rig.imaps_port}",
            "--smtp", f"127.0.0.1:{rig.smtps_port}",
            "--security", "tls",
            "--ca-file", str(rig.ca_file),
            "--password-fd", str(fd),
            pass_fds=(fd,),
        )  # fmt: skip
    finally:
        os.close(fd)


def _policy(tmp_path: Path, **fields: Any) -> dict[str, str]:
    p = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.json"
    p.write_text(json.dumps({"version": 1, **fields}))
    return {"SEALMAIL_POLICY": str(p)}


def _message(to: str, subject: str, body: str, *, cc: str = "", bcc: str = "") -> tuple[str, bytes]:
    mid = f"<{uuid.uuid4().hex}@example.test>"
    extra = (f"Cc: {cc}\r\n" if cc else "") + (f"Bcc: {bcc}\r\n" if bcc else "")
    raw = (
        f"From: Alice Doe <{ALICE}>\r\nTo: {to}\r\n{extra}Subject: {subject}\r\n"
        f"Message-ID: {mid}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    return mid, raw.encode()


def _send(
    cli: Cli, tmp_path: Path, raw: bytes, env: dict[str, str], *args: str
) -> tuple[int, dict[str, Any], str]:
    f = tmp_path / f"m-{uuid.uuid4().hex[:6]}.eml"
    f.write_bytes(raw)
    res = cli("send", str(f), "--json", *args, env=env)
    return res.returncode, json.loads(res.text), res.stderr


def _received(rig: MailRig, start: int) -> list[Any]:
    return list(rig.submission.accepted[start:])


def _wire_bytes(rig: MailRig) -> bytes:
    return b"\n".join(a.data for a in rig.submission.accepted)


def _mails(rig: MailRig, user: str, mid: str, folder: str = "INBOX") -> list[bytes]:
    c = rig.imap(user)
    try:
        c.select_folder(folder, readonly=True)
        uids = c.search(["HEADER", "Message-ID", mid])
        data = c.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return [bytes(data[u][b"BODY[]"]) for u in sorted(data)]
    finally:
        c.logout()


def _key(owner: Cli, user: str, kind: str) -> Path:
    info = json.loads(owner.ok("keys", "generate", "--email", user, "--kind", kind, "--json").text)
    out = owner.profile.parent / f"{user}-{kind}.pub"
    owner.ok("keys", "export", info["fingerprint"], "-o", str(out))
    return out


def _decrypt(cli: Cli, tmp_path: Path, raw: bytes) -> tuple[bytes, dict[str, Any]]:
    f = tmp_path / f"in-{uuid.uuid4().hex[:6]}.eml"
    f.write_bytes(raw)
    out = tmp_path / f"out-{uuid.uuid4().hex[:6]}.eml"
    report = json.loads(cli.ok("message", "decrypt", str(f), "-o", str(out), "--json").text)
    return out.read_bytes(), report


def _alice(cli_factory: Any, rig: MailRig, name: str, *, keys: bool = True) -> Cli:
    alice = cli_factory(name)
    _account(alice, rig, ALICE)
    if keys:
        alice.ok("keys", "generate", "--email", ALICE, "--kind", "pgp")
        alice.ok("keys", "generate", "--email", ALICE, "--kind", "smime")
    return alice


# ------------------------------------------------------------------------------ tests


def test_a_phi_without_key_envelopes_disabled_is_held_then_released(
    rig: MailRig, cli_factory: Any, tmp_path: Path
) -> None:
    alice = _alice(cli_factory, rig, "alice-a", keys=False)
    env = _policy(tmp_path, password_envelopes=False)
    marker = f"held-marker-{uuid.uuid4().hex}"
    mid, raw = _message(BOB, "Labs", f"Patient SSN {SSN}, {marker}.")
    start = len(rig.submission.accepted)
    rc, res, err = _send(alice, tmp_path, raw, env)

    assert rc == 13, (res, err)
    assert res["state"] == "held" and res["hold"]["reason"]
    actions = {f["action"] for f in res["fixes"]}
    assert {"import-key", "remove-recipient"} <= actions and "use-envelope" not in actions
    assert "import-key" in err or "fix:" in err
    # nothing reached the server: no transaction, no byte of the body
    assert _received(rig, start) == []
    assert marker.encode() not in _wire_bytes(rig) and SSN.encode() not in _wire_bytes(rig)
    assert _mails(rig, BOB, mid) == [] and _mails(rig, ALICE, mid) == []
    listed = json.loads(alice.ok("outbox", "list", "--json").text)
    (entry,) = [e for e in listed if e["message_id"] == mid]
    assert entry["state"] == "held" and entry["fixes"] and entry["copies"] == []

    # the user fixes it (imports bob's key) and releases: planned again, goes out encrypted
    bob = cli_factory("bob-a")
    alice.ok("keys", "import", str(_key(bob, BOB, "pgp")))
    rel = alice("outbox", "release", mid, "--json", env=env)
    assert rel.returncode == 0, rel.stderr
    assert json.loads(rel.text)["copies"][0]["method"] == "pgp"
    (got,) = _mails(rig, BOB, mid)
    assert marker.encode() not in _wire_bytes(rig)
    plain, _ = _decrypt(bob, tmp_path, got)
    assert marker.encode() in plain


def test_b_phi_without_key_goes_as_password_envelope(
    rig: MailRig, cli_factory: Any, tmp_path: Path
) -> None:
    alice = _alice(cli_factory, rig, "alice-b", keys=False)
    env = _policy(tmp_path, password_envelopes=True)
    marker = f"envelope-marker-{uuid.uuid4().hex}"
    mid, raw = _message(DAVE, "Referral for J. Smith", f"SSN {SSN}; {marker}")
    start = len(rig.submission.accepted)
    rc, res, err = _send(alice, tmp_path, raw, env)

    assert rc == 0, (res, err)
    assert [c["method"] for c in res["copies"]] == ["envelope"]
    password = res["envelope_passwords"][DAVE]
    assert password in err  # told once, to phone it
    (tx,) = _received(rig, start)
    assert set(tx.rcpt_tos) == {DAVE, ALICE} and tx.tls
    wire = _wire_bytes(rig)
    for secret in (marker, SSN, password, "J. Smith"):
        assert secret.encode() not in wire, secret
    (got,) = _mails(rig, DAVE, mid)
    msg = email.message_from_bytes(got, policy=email.policy.default)
    assert "Referral" not in str(msg["Subject"])
    (att,) = [p for p in msg.iter_attachments() if p.get_filename() == "secure-message.html"]
    page = tmp_path / "secure-message.html"
    page.write_bytes(
        att.get_content().encode() if isinstance(att.get_content(), str) else att.get_content()
    )

    dave = cli_factory("dave-b")
    fd = _pipe(password.encode())
    try:
        opened = json.loads(
            dave.ok(
                "envelope", "open", str(page), "--password-fd", str(fd), "--json", pass_fds=(fd,)
            ).text
        )
    finally:
        os.close(fd)
    assert marker in opened["message"] and opened["details"]["subject"] == "Referral for J. Smith"
    # remembered for dave in alice's secret store; the Sent copy is there, once
    assert len(_mails(rig, ALICE, mid, "Sent")) == 1 and _mails(rig, ALICE, mid) == []


def test_c_recipient_with_pgp_key_gets_encrypted_copy(
    rig: MailRig, cli_factory: Any, tmp_path: Path
) -> None:
    alice = _alice(cli_factory, rig, "alice-c")
    carol = cli_factory("carol-c")
    alice.ok("keys", "import", str(_key(carol, CAROL, "pgp")))
    marker = f"pgp-marker-{uuid.uuid4().hex}"
    mid, raw = _message(CAROL, "Discharge summary", f"SSN {SSN} {marker}")
    start = len(rig.submission.accepted)
    rc, res, err = _send(alice, tmp_path, raw, _policy(tmp_path))

    assert rc == 0, (res, err)
    assert [c["method"] for c in res["copies"]] == ["pgp"]
    assert len(_received(rig, start)) == 1
    assert marker.encode() not in _wire_bytes(rig) and b"Discharge" not in _wire_bytes(rig)
    (got,) = _mails(rig, CAROL, mid)
    assert email.message_from_bytes(got, policy=email.policy.default)["Subject"] == "[...]"
    plain, _ = _decrypt(carol, tmp_path, got)
    assert marker.encode() in plain and b"Discharge summary" in plain
    # the Sent copy is encrypted too, and alice can read it
    (sent,) = _mails(rig, ALICE, mid, "Sent")
    assert marker.encode() not in sent
    assert marker.encode() in _decrypt(alice, tmp_path, sent)[0]


def test_d_secure_tag_encrypts_and_is_removed(
    rig: MailRig, cli_factory: Any, tmp_path: Path
) -> None:
    alice = _alice(cli_factory, rig, "alice-d")
    carol = cli_factory("carol-d")
    alice.ok("keys", "import", str(_key(carol, CAROL, "pgp")))
    marker = f"tag-marker-{uuid.uuid4().hex}"
    mid, raw = _message(CAROL, "[Secure] Friday rota", f"No identifiers here. {marker}")
    rc, res, err = _send(alice, tmp_path, raw, _policy(tmp_path))

    assert rc == 0, (res, err)
    assert [c["method"] for c in res["copies"]] == ["pgp"]
    wire = _wire_bytes(rig)
    assert marker.encode() not in wire and b"[secure]" not in wire.lower()
    (got,) = _mails(rig, CAROL, mid)
    plain, _ = _decrypt(carol, tmp_path, got)
    inner = email.message_from_bytes(plain, policy=email.policy.default)
    assert inner["Subject"] == "Friday rota" and b"[secure]" not in plain.lower()


def test_e_mixed_recipients_each_get_only_their_copy(
    rig: MailRig, cli_factory: Any, tmp_path: Path
) -> None:
    alice = _alice(cli_factory, rig, "alice-e")
    bob, carol = cli_factory("bob-e"), cli_factory("carol-e")
    alice.ok("keys", "import", "--trust", str(_key(bob, BOB, "smime")))
    alice.ok("keys", "import", str(_key(carol, CAROL, "pgp")))
    marker = f"mixed-marker-{uuid.uuid4().hex}"
    mid, raw = _message(BOB, "Case conference", f"SSN {SSN} {marker}", cc=CAROL, bcc=ERIN)
    start = len(rig.submission.accepted)
    rc, res, err = _send(alice, tmp_path, raw, _policy(tmp_path, password_envelopes=True))

    assert rc == 0, (res, err)
    assert sorted((c["method"], tuple(c["recipients"])) for c in res["copies"]) == [
        ("envelope", (ERIN,)),
        ("pgp", (CAROL,)),
        ("smime", (BOB,)),
    ]
    txs = _received(rig, start)
    assert sorted(tuple(sorted(t.rcpt_tos)) for t in txs) == sorted(
        tuple(sorted((r, ALICE))) for r in (BOB, CAROL, ERIN)
    )
    wire = _wire_bytes(rig)
    assert marker.encode() not in wire and b"Bcc:" not in wire and b"bcc:" not in wire.lower()
    for t in txs:
        if ERIN not in t.rcpt_tos:
            assert ERIN.encode() not in t.data  # the Bcc recipient is named nowhere
    (to_bob,) = _mails(rig, BOB, mid)
    (to_carol,) = _mails(rig, CAROL, mid)
    (to_erin,) = _mails(rig, ERIN, mid)
    assert marker.encode() in _decrypt(bob, tmp_path, to_bob)[0]
    assert marker.encode() in _decrypt(carol, tmp_path, to_carol)[0]
    assert b"secure-message.html" in to_erin and marker.encode() not in to_erin
    for m in (to_bob, to_carol):
        assert ERIN.encode() not in m
    # bob's copy is S/MIME only, carol's OpenPGP only: no one can open another's copy
    assert b"pkcs7-mime" in to_bob.lower() and b"pgp-encrypted" in to_carol.lower()
    # one Sent copy (readable by alice), no witness left in her INBOX
    (sent,) = _mails(rig, ALICE, mid, "Sent")
    assert marker.encode() in _decrypt(alice, tmp_path, sent)[0]
    assert _mails(rig, ALICE, mid) == []
    listed = json.loads(alice.ok("outbox", "list", "--json").text)
    (entry,) = [e for e in listed if e["message_id"] == mid]
    assert entry["state"] == "done" and all(c["done"] for c in entry["copies"])


def test_f_audit_verifies_and_detects_an_edited_record(
    rig: MailRig, cli_factory: Any, tmp_path: Path
) -> None:
    alice = _alice(cli_factory, rig, "alice-f", keys=False)
    _, held = _message(BOB, "Labs", f"SSN {SSN}")
    assert _send(alice, tmp_path, held, _policy(tmp_path, password_envelopes=False))[0] == 13
    _, plain = _message(BOB, "Lunch", "See you at noon.")
    assert _send(alice, tmp_path, plain, _policy(tmp_path))[0] == 0
    exported = json.loads(alice.ok("audit", "export", "--json").text)
    assert exported["verified"] and SSN not in json.dumps(exported)
    assert [r["decision"] for r in exported["records"]] == ["hold", "send"]
    assert exported["records"][0]["methods"] == {BOB: None}
    assert alice("audit", "verify", "--json").returncode == 0

    log = alice.profile / "audit.log"
    data = log.read_bytes()
    assert b'"hold"' in data
    log.write_bytes(data.replace(b'"hold"', b'"send"', 1))
    broken = alice("audit", "verify", "--json")
    assert broken.returncode == 14, broken.text


def test_g_tls_only_message_to_internal_domain_goes_as_plain_tls(
    rig: MailRig, cli_factory: Any, tmp_path: Path
) -> None:
    alice = _alice(cli_factory, rig, "alice-g", keys=False)
    env = _policy(tmp_path, internal_domains=["example.test"], minimum_level="tls-required")
    marker = f"tls-marker-{uuid.uuid4().hex}"
    mid, raw = _message(BOB, "Rota", f"Ward round moved to 9:30. {marker}")
    start = len(rig.submission.accepted)
    rc, res, err = _send(alice, tmp_path, raw, env)

    assert rc == 0, (res, err)
    assert [c["method"] for c in res["copies"]] == ["tls-required"]
    (tx,) = _received(rig, start)
    assert tx.tls and "REQUIRETLS" in tx.mail_options
    assert marker.encode() in tx.data and b"X-Sealmail" not in tx.data
    (got,) = _mails(rig, BOB, mid)
    assert marker.encode() in got
    assert len(_mails(rig, ALICE, mid, "Sent")) == 1
