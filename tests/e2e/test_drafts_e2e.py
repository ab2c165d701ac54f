"""Drafts on real Dovecot: saved by APPEND, replaced, reopened, deleted; never in the clear
when protected (encrypted to the sender's own key), refused without an own key."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.drafts import DRAFT_HEADER, DraftNeedsOwnKey, draft_id_of
from client.policy.orgpolicy import DEFAULT_POLICY
from client.services import Session
from client.transport.accounts import Account
from tests.conftest import Cli
from tests.servers.rig import MailRig

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
SSN = "536-90-4399"


def _session(profile: Path, rig: MailRig, user: str) -> Session:
    from keystore.store import Keystore

    s = Session(Keystore.open(profile, passphrase="test profile passphrase"))
    s.org_policy = DEFAULT_POLICY
    s.account_add(
        Account(
            email=user,
            imap_host="127.0.0.1",
            imap_port=rig.imaps_port,
            imap_security="tls",
            smtp_host="127.0.0.1",
            smtp_port=rig.smtps_port,
            smtp_security="tls",
            username=user,
            ca_file=str(rig.ca_file),
        ),
        rig.password(user).encode(),
    )
    return s


def _draft(sender: str, subject: str, body: str, *, bcc: str = "") -> bytes:
    extra = f"Bcc: {bcc}\r\n" if bcc else ""
    return (
        f"From: {sender}\r\nTo: nobody@elsewhere.example\r\n{extra}Subject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.test>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def _server_drafts(rig: MailRig, user: str, draft_id: str) -> list[bytes]:
    """Every stored version of ``draft_id`` exactly as the server holds it."""
    c = rig.imap(user)
    try:
        c.select_folder("Drafts", readonly=True)
        uids = c.search(["HEADER", DRAFT_HEADER, draft_id])
        data = c.fetch(uids, ["BODY.PEEK[]", "FLAGS"]) if uids else {}
        for d in data.values():
            assert b"\\Draft" in d[b"FLAGS"]
        return [bytes(d[b"BODY[]"]) for _, d in sorted(data.items())]
    finally:
        c.logout()


@pytest.mark.parametrize(("user", "kind"), [(ALICE, "pgp"), (BOB, "smime")])
def test_protected_draft_is_encrypted_to_own_key_replaced_reopened_deleted(
    mail_rig: MailRig, tmp_path: Path, user: str, kind: str
) -> None:
    s = _session(tmp_path / "p", mail_rig, user)
    try:
        s.keys_generate(user, name=None, kind=kind, now=datetime.now(UTC))  # type: ignore[arg-type]
        marker = f"marker-{uuid.uuid4().hex[:10]}"
        first = _draft(user, f"Patient {marker}", f"SSN {SSN} for {marker}", bcc=CAROL)
        saved = s.drafts_save(first)
        assert saved.encrypted and saved.uid and saved.replaced == ()
        (stored,) = _server_drafts(mail_rig, user, saved.draft_id)
        assert SSN.encode() not in stored and marker.encode() not in stored
        assert CAROL.encode() not in stored and b"nobody@elsewhere" not in stored
        assert draft_id_of(stored) == saved.draft_id

        # a new version replaces the old one (same id), still encrypted
        second = _draft(user, f"Patient {marker}", f"SSN {SSN}, second version", bcc=CAROL)
        again = s.drafts_save(second, draft_id=saved.draft_id)
        assert again.replaced == (saved.uid,) and again.uid != saved.uid
        (stored2,) = _server_drafts(mail_rig, user, saved.draft_id)
        assert SSN.encode() not in stored2 and b"second version" not in stored2

        # reopened exactly as written (Bcc kept), decrypted in memory only
        opened = s.drafts_open(saved.draft_id)
        assert draft_id_of(opened) == saved.draft_id
        assert b"second version" in opened and f"Bcc: {CAROL}".encode() in opened
        listed = [d for d in s.drafts_list() if d.draft_id == saved.draft_id]
        assert [(d.encrypted, d.subject) for d in listed] == [(True, "")]

        assert s.drafts_delete(saved.draft_id) == [again.uid]
        assert _server_drafts(mail_rig, user, saved.draft_id) == []
    finally:
        s.close()


def test_protected_draft_without_own_key_is_refused_and_not_stored(
    mail_rig: MailRig, tmp_path: Path
) -> None:
    s = _session(tmp_path / "c", mail_rig, CAROL)
    try:
        marker = uuid.uuid4().hex
        draft_id = uuid.uuid4().hex
        with pytest.raises(DraftNeedsOwnKey) as err:
            s.drafts_save(_draft(CAROL, marker, f"SSN {SSN}"), draft_id=draft_id)
        assert "own key" in err.value.hint
        assert _server_drafts(mail_rig, CAROL, draft_id) == []
        assert marker not in json.dumps([d.to_json() for d in s.drafts_list()])
    finally:
        s.close()


def test_plain_draft_is_stored_as_written(mail_rig: MailRig, tmp_path: Path) -> None:
    s = _session(tmp_path / "c2", mail_rig, CAROL)
    try:
        raw = _draft(CAROL, "Lunch on Friday?", "Shall we meet at noon?")
        saved = s.drafts_save(raw)
        assert not saved.encrypted
        (stored,) = _server_drafts(mail_rig, CAROL, saved.draft_id)
        assert b"Shall we meet at noon?" in stored
        assert s.drafts_open(saved.draft_id) == stored
        s.drafts_delete(saved.draft_id)
    finally:
        s.close()


def test_cli_draft_save_and_list(mail_rig: MailRig, cli: Cli, tmp_path: Path) -> None:
    r, w = os.pipe()
    os.write(w, mail_rig.password(CAROL).encode() + b"\n")
    os.close(w)
    try:
        cli.ok(
            "account", "add", "--email", CAROL, "--imap", f"127.0.0.1:{mail_rig.imaps_port}",
            "--smtp", f"127.0.0.1:{mail_rig.smtps_port}", "--security", "tls",
            "--ca-file", str(mail_rig.ca_file), "--password-fd", str(r), pass_fds=(r,),
        )  # fmt: skip
    finally:
        os.close(r)
    f = tmp_path / "d.eml"
    f.write_bytes(_draft(CAROL, "Rota", "Who covers Monday?"))
    saved = json.loads(cli.ok("draft", "save", str(f), "--json").text)
    assert saved["encrypted"] is False and len(saved["draft_id"]) == 32
    listed = json.loads(cli.ok("draft", "list", "--json").text)
    assert any(d["draft_id"] == saved["draft_id"] and d["subject"] == "Rota" for d in listed)
    f.write_bytes(_draft(CAROL, "Rota", f"SSN {SSN}"))
    refused = cli("draft", "save", str(f), "--id", saved["draft_id"])
    assert refused.returncode != 0 and "own key" in refused.stderr
    (still,) = _server_drafts(mail_rig, CAROL, saved["draft_id"])  # the old version stays
    assert SSN.encode() not in still
    cli.ok("draft", "delete", saved["draft_id"])
