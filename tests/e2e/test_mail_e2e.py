"""End to end against real Dovecot + the aiosmtpd submission server (tests/servers)."""

from __future__ import annotations

import json
import os
import threading
import uuid
from pathlib import Path

import pytest

from client.services import Session
from client.transport.accounts import Account
from client.transport.imap import CHUNK, connect, header_items
from tests.conftest import Cli
from tests.servers.rig import MailRig

ALICE, BOB = "alice@example.test", "bob@example.test"


def _add_account(cli: Cli, rig: MailRig, user: str, security: str = "tls") -> None:
    r, w = os.pipe()
    os.write(w, rig.password(user).encode() + b"\n")
    os.close(w)
    imap_port = rig.imaps_port if security == "tls" else rig.imap_port
    smtp_port = rig.smtps_port if security == "tls" else rig.smtp_port
    try:
        cli.ok(
            "account",
            "add",
            "--email",
            user,
            "--imap",
            f"127.0.0.1:{imap_port}",
            "--smtp",
            f"127.0.0.1:{smtp_port}",
            "--security",
            security,
            "--ca-file",
            str(rig.ca_file),
            "--password-fd",
            str(r),
            pass_fds=(r,),
        )
    finally:
        os.close(r)


def _message(sender: str, to: str, subject: str, body: str, extra: str = "") -> bytes:
    mid = f"<{uuid.uuid4().hex}@example.test>"
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n{extra}"
        f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_cli_account_send_sync_receive(
    mail_rig: MailRig, cli_factory, tmp_path: Path, security: str
) -> None:
    alice, bob = cli_factory(f"alice-{security}"), cli_factory(f"bob-{security}")
    _add_account(alice, mail_rig, ALICE, security)
    _add_account(bob, mail_rig, BOB, security)
    listed = json.loads(alice.ok("account", "list", "--json").text)
    assert listed[0]["email"] == ALICE and "password" not in json.dumps(listed)
    assert mail_rig.password(ALICE).encode() not in (alice.profile / "accounts.json").read_bytes()

    msg = _message(ALICE, BOB, "Lab results", "Potassium 4.1 mmol/L")
    f = tmp_path / f"msg-{security}.eml"
    f.write_bytes(msg)
    res = json.loads(alice.ok("send", str(f), "--json").text)
    assert res["state"] == "done", res
    mid = res["message_id"]

    assert mid in mail_rig.message_ids(BOB)
    assert mail_rig.message_ids(ALICE, "Sent").count(mid) == 1
    assert mid not in mail_rig.message_ids(ALICE)  # the witness copy moved to Sent

    reports = json.loads(bob.ok("sync", "--json").text)
    inbox = next(r for r in reports if r["folder"] == "INBOX")
    assert inbox["total"] >= 1
    again = json.loads(bob.ok("sync", "--json").text)
    assert next(r for r in again if r["folder"] == "INBOX")["action"] in (
        "unchanged",
        "incremental",
    )
    out = json.loads(alice.ok("outbox", "list", "--json").text)
    assert [e["state"] for e in out if e["message_id"] == mid] == ["done"]


def _session(profile: Path) -> Session:
    from keystore.store import Keystore

    return Session(Keystore.open(profile, passphrase="test profile passphrase"))


def _account(rig: MailRig, user: str) -> Account:
    return Account(
        email=user,
        imap_host="127.0.0.1",
        imap_port=rig.imaps_port,
        imap_security="tls",
        smtp_host="127.0.0.1",
        smtp_port=rig.smtp_port,
        smtp_security="starttls",
        username=user,
        ca_file=str(rig.ca_file),
    )


def test_read_reply_move_delete_drafts_idle(mail_rig: MailRig, tmp_path: Path) -> None:
    a = _session(tmp_path / "a")
    b = _session(tmp_path / "b")
    try:
        a.account_add(_account(mail_rig, ALICE), mail_rig.password(ALICE).encode())
        b.account_add(_account(mail_rig, BOB), mail_rig.password(BOB).encode())
        bob_acc = b.accounts().get()

        # IDLE: bob waits, alice sends
        with b.account_imap(bob_acc) as idle:
            idle.select("INBOX")
            first = _message(ALICE, BOB, "Referral", "Please see the patient on Monday.")
            sent = a.send(first)
            assert sent.state.value == "done"
            seen = idle.idle_wait(timeout=10)
            assert any(b"EXISTS" in r for r in seen), seen

        # read: sync, list from cache, fetch the body on demand, cache it as received
        b.sync()
        cache = b.cache()
        listing = cache.list(BOB, "INBOX")
        row = next(m for m in listing if m.message_id == sent.message_id)
        assert row.subject == "Referral" and not row.seen
        with b.account_imap(bob_acc) as imap:
            imap.select("INBOX")
            body = imap.fetch_body(row.uid)
            assert b"Please see the patient" in body
            cache.put_body(BOB, "INBOX", row.uid, body)
            imap.add_flags([row.uid], ["\\Seen"])
        b.sync()
        assert next(m for m in cache.list(BOB, "INBOX") if m.uid == row.uid).seen

        # reply
        reply = _message(
            BOB,
            ALICE,
            "Re: Referral",
            "Monday works.",
            extra=f"In-Reply-To: {sent.message_id}\r\nReferences: {sent.message_id}\r\n",
        )
        r = b.send(reply)
        assert r.state.value == "done"
        a.sync()
        got = [m for m in a.cache().list(ALICE, "INBOX") if m.message_id == r.message_id]
        assert got and got[0].in_reply_to == sent.message_id

        # move, then delete
        with b.account_imap(bob_acc) as imap:
            imap.select("INBOX")
            imap.move([row.uid], "Archive")
            imap.select("Archive")
            moved = imap.search_message_id(sent.message_id)
            assert moved
            imap.delete(moved)
            assert not imap.search_message_id(sent.message_id)
        b.sync()
        assert all(m.message_id != sent.message_id for m in cache.list(BOB, "INBOX"))
        assert all(m.message_id != sent.message_id for m in cache.list(BOB, "Archive"))

        # drafts: APPEND with \\Draft, visible after sync
        draft = _message(BOB, ALICE, "draft", "unfinished")
        with b.account_imap(bob_acc) as imap:
            uid = imap.append("Drafts", draft, flags=["\\Draft"])
            assert uid
        b.sync()
        assert any(m.subject == "draft" for m in cache.list(BOB, "Drafts"))
        assert r.message_id in mail_rig.message_ids(BOB, "Sent")
        cache.close()
    finally:
        a.close()
        b.close()


def test_uidvalidity_change_resets_cache(mail_rig: MailRig, tmp_path: Path) -> None:
    s = _session(tmp_path / "c")
    try:
        user = "carol@example.test"
        s.account_add(_account(mail_rig, user), mail_rig.password(user).encode())
        acc = s.accounts().get()
        folder = f"Proj{uuid.uuid4().hex[:6]}"
        with s.account_imap(acc) as imap:
            imap.create_folder(folder)
            imap.append(folder, _message(user, user, "one", "1"))
        s.sync()
        cache = s.cache()
        before = cache.folder(user, folder)
        assert before is not None and cache.count(user, folder) == 1
        with s.account_imap(acc) as imap:  # delete + recreate: a new UIDVALIDITY
            imap.client.delete_folder(folder)
            imap.create_folder(folder)
            imap.append(folder, _message(user, user, "two", "2"))
        reports = {r.folder: r for r in s.sync()}
        assert reports[folder].action == "reset"
        assert [m.subject for m in cache.list(user, folder)] == ["two"]
        cache.close()
    finally:
        s.close()


def test_fetch_headers_matches_imapclient_and_stops_cleanly(mail_rig: MailRig) -> None:
    """The header sync reads what imapclient reads, across chunks, and an early stop is clean."""
    user = "carol@example.test"
    folder = f"Hdr{uuid.uuid4().hex[:6]}"
    odd = [
        b"Subject: =?utf-8?q?Bl=C3=BCtwerte?=\r\nFrom: a@example.test\r\n\r\nx\r\n",
        b"Subject: folded\r\n over two lines\r\nContent-Type: multipart/signed; p=1\r\n\r\nx\r\n",
        "Subject: 8-bit ü\r\nTo: b@example.test\r\n\r\nx\r\n".encode(),
        b"X-Only: no listed fields at all\r\n\r\nx\r\n",
    ]
    msgs = odd + [_message(user, user, f"n{i}", "b") for i in range(CHUNK + 100 - len(odd))]
    s = connect(
        "127.0.0.1",
        mail_rig.imaps_port,
        security="tls",
        username=user,
        password=mail_rig.password(user),
        ca_file=str(mail_rig.ca_file),
    )
    ref = mail_rig.imap(user)
    try:
        s.create_folder(folder)
        s.multiappend(folder, msgs)
        s.select(folder)
        uids = s.uids()
        assert len(uids) == len(msgs) > CHUNK
        s.add_flags(uids[::7], ["\\Flagged", "$Label1"])
        got = list(s.fetch_headers(uids))

        ref.normalise_times = False
        ref.select_folder(folder, readonly=True)
        key = header_items(True)[-2].replace(".PEEK", "").encode()
        want = []
        for i in range(0, len(uids), CHUNK):
            data = ref.fetch(uids[i : i + CHUNK], list(header_items(True)))
            for uid in sorted(data):
                d = data[uid]
                want.append(
                    (
                        uid,
                        {f.decode() for f in d[b"FLAGS"]} - {"\\Recent"},
                        d[b"RFC822.SIZE"],
                        d[b"INTERNALDATE"].isoformat(),
                        d[b"MODSEQ"][0],
                        d[key],
                    )
                )
        assert [
            (r.uid, set(r.flags) - {"\\Recent"}, r.size, r.internaldate, r.modseq, r.headers)
            for r in got
        ] == want
        assert got[1].content_type == "multipart/signed" and got[3].content_type == "text/plain"

        # an early stop waits for the command in flight; the connection stays in step
        it = s.fetch_headers(uids)
        first = [next(it).uid for _ in range(3)]
        it.close()
        assert first == uids[:3]
        assert not [t for t in threading.enumerate() if t.name == "imap-fetch-headers"]
        s.noop()
        assert s.uids() == uids
        # duplicates and UIDs that do not exist (an empty FETCH answer)
        assert [r.uid for r in s.fetch_headers([uids[0], uids[0], 10**9])] == [uids[0]]
        assert list(s.fetch_headers([10**9])) == []
    finally:
        ref.logout()
        s.close()
