"""Disk full: the outbox, a key import, an envelope's output directory and the cache.

The disk is "full" for a child process through ``RLIMIT_FSIZE`` (see
:mod:`tests.faults.faultkit`): the kernel fails every write past the limit with ``EFBIG``,
exactly where a full disk fails with ``ENOSPC``; ``/dev/full`` gives a real ``ENOSPC`` for
standard output. Each case checks the typed error (``StorageError``, exit 74, or the
command's own typed error) and that nothing was lost or half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import uuid
from pathlib import Path

from client.transport.accounts import Account
from client.transport.outbox import Outbox
from keystore.profile import open_profile
from tests.faults.faultkit import (
    CuttingProxy,
    add_account,
    assert_typed_failure,
    big_message,
    flush_until_done,
    fsize_limit,
    leftovers,
    outbox_state,
    run_cli,
)
from tests.servers.rig import MailRig

ALICE, BOB, CAROL = "alice@example.test", "bob@example.test", "carol@example.test"
KEY = "johnny-you-are-fired/assets/public-keys/eve@bigcorporation.asc"
MB = 1 << 20


def _profile_with_proxies(rig: MailRig, tmp: Path, imap: CuttingProxy, smtp: CuttingProxy) -> Path:
    profile = tmp / "profile"
    add_account(
        profile,
        ALICE,
        rig.password(ALICE),
        imap_port=imap.port,
        smtp_port=smtp.port,
        ca_file=rig.ca_file,
    )
    return profile


def _delivered_once(rig: MailRig, mid: str) -> None:
    assert rig.message_ids(BOB).count(mid) == 1
    assert rig.message_ids(ALICE, "Sent").count(mid) == 1
    assert mid not in rig.message_ids(ALICE)


def test_send_with_full_disk_is_refused_before_any_network_io(
    mail_rig: MailRig, tmp_path: Path
) -> None:
    with (
        CuttingProxy("127.0.0.1", mail_rig.imaps_port) as imap,
        CuttingProxy("127.0.0.1", mail_rig.smtps_port) as smtp,
    ):
        profile = _profile_with_proxies(mail_rig, tmp_path, imap, smtp)
        mid, raw = big_message(ALICE, BOB, 2 * MB)
        msg = tmp_path / "big.eml"
        msg.write_bytes(raw)
        res = run_cli(["send", str(msg)], profile, preexec=fsize_limit(MB))
        assert_typed_failure(res, "disk is full")
        assert res.returncode == 74
        assert (smtp.connections, imap.connections) == (0, 0)  # refused before the network
        assert leftovers(profile) == []
        assert msg.read_bytes() == raw  # the user's message is untouched
        # space again: it goes out exactly once
        ok = run_cli(["send", str(msg), "--json"], profile)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["state"] == "done"
    _delivered_once(mail_rig, mid)


def test_queued_message_survives_a_full_disk_at_send_time(
    mail_rig: MailRig, tmp_path: Path
) -> None:
    with (
        CuttingProxy("127.0.0.1", mail_rig.imaps_port) as imap,
        CuttingProxy("127.0.0.1", mail_rig.smtps_port) as smtp,
    ):
        profile = _profile_with_proxies(mail_rig, tmp_path, imap, smtp)
        mid, raw = big_message(ALICE, BOB, 2 * MB)
        # queued earlier (e.g. written offline), not yet planned: no wire copy stored yet
        box = Outbox(open_profile(profile))
        account = Account(
            ALICE, "127.0.0.1", imap.port, "tls", "127.0.0.1", smtp.port, "tls", ALICE
        )
        box.enqueue(raw, account)
        stored = list((profile / "outbox").glob("*.eml"))
        assert len(stored) == 1
        digest = hashlib.sha256(stored[0].read_bytes()).hexdigest()
        # the disk is full when it is sent: the protected wire copy cannot be stored
        res = run_cli(["outbox", "flush"], profile, preexec=fsize_limit(MB))
        assert_typed_failure(res, "disk is full")
        assert res.returncode == 74
        assert smtp.connections == 0  # nothing went to the server
        state = outbox_state(profile, mid)
        assert state is not None and state["state"] == "queued", state
        assert hashlib.sha256(stored[0].read_bytes()).hexdigest() == digest
        assert leftovers(profile) == []
        flush_until_done(profile, mid)
    _delivered_once(mail_rig, mid)


def test_key_import_with_full_disk_leaves_the_keystore_as_it_was(
    corpus: Path, tmp_path: Path
) -> None:
    profile = tmp_path / "profile"
    assert run_cli(["keys", "list", "--json"], profile).returncode == 0  # create the profile
    res = run_cli(["keys", "import", str(corpus / KEY)], profile, preexec=fsize_limit(8192))
    assert_typed_failure(res, "cannot write")
    assert res.returncode == 74
    listed = run_cli(["keys", "list", "--json"], profile)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []  # all or nothing
    db = sqlite3.connect(profile / "keystore.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    again = run_cli(["keys", "import", str(corpus / KEY)], profile)
    assert again.returncode == 0, again.stderr
    assert len(json.loads(run_cli(["keys", "list", "--json"], profile).stdout)) == 1


def _make_envelope(profile: Path, tmp: Path) -> tuple[Path, bytes]:
    payload = os.urandom(256 * 1024)
    attachment = tmp / "scan.bin"
    attachment.write_bytes(payload)
    out = tmp / "envelope.html"
    r, w = os.pipe()
    os.write(w, b"correct horse battery staple 42\n")
    os.close(w)
    try:
        res = run_cli(
            ["envelope", "create", str(attachment), "--password-fd", str(r), "-o", str(out)],
            profile,
            pass_fds=(r,),
        )
    finally:
        os.close(r)
    assert res.returncode == 0, res.stderr
    return out, payload


def test_envelope_open_into_a_full_directory_writes_nothing(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    envelope, payload = _make_envelope(profile, tmp_path)
    out = tmp_path / "opened"
    out.mkdir()
    env = {"SEALMAIL_PASSPHRASE": "correct horse battery staple 42"}
    res = run_cli(
        ["envelope", "open", str(envelope), "-o", str(out)],
        profile,
        env=env,
        preexec=fsize_limit(64 * 1024),
    )
    assert_typed_failure(res, "cannot write")
    assert list(out.iterdir()) == []  # no half-written attachment, no temporary
    ok = run_cli(["envelope", "open", str(envelope), "-o", str(out)], profile, env=env)
    assert ok.returncode == 0, ok.stderr
    assert (out / "scan.bin").read_bytes() == payload


def test_envelope_to_a_full_stdout_is_a_typed_error(tmp_path: Path) -> None:
    profile = tmp_path / "profile"
    attachment = tmp_path / "note.txt"
    attachment.write_bytes(b"x" * 200_000)
    r, w = os.pipe()
    os.write(w, b"correct horse battery staple 42\n")
    os.close(w)
    import subprocess
    import sys

    from tests.faults.faultkit import REPO, cli_env

    try:
        with open("/dev/full", "wb") as full:  # real ENOSPC from the kernel
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "client.cli",
                    "envelope",
                    "create",
                    str(attachment),
                    "--password-fd",
                    str(r),
                    "-o",
                    "-",
                ],
                stdout=full,
                stderr=subprocess.PIPE,
                env=cli_env(profile),
                cwd=REPO,
                pass_fds=(r,),
                timeout=300,
                check=False,
            )
    finally:
        os.close(r)
    from tests.faults.faultkit import Run

    res = Run(proc.returncode, "", proc.stderr.decode(errors="replace"))
    assert_typed_failure(res, "disk is full")
    assert res.returncode == 74


def test_sync_with_full_disk_keeps_the_cache_consistent(mail_rig: MailRig, tmp_path: Path) -> None:
    mail_rig.clear(CAROL)
    c = mail_rig.imap(CAROL)
    try:
        for i in range(150):
            c.append(
                "INBOX",
                (
                    f"From: x@example.test\r\nTo: {CAROL}\r\nSubject: m{i}\r\n"
                    f"Message-ID: <{uuid.uuid4().hex}@example.test>\r\nX-Pad: {'p' * 1500}\r\n"
                    "\r\nbody\r\n"
                ).encode(),
            )
    finally:
        c.logout()
    profile = tmp_path / "profile"
    add_account(
        profile,
        CAROL,
        mail_rig.password(CAROL),
        imap_port=mail_rig.imaps_port,
        smtp_port=mail_rig.smtps_port,
        ca_file=mail_rig.ca_file,
    )
    keystore = (profile / "keystore.sqlite3").stat().st_size
    res = run_cli(["sync"], profile, preexec=fsize_limit(keystore + 16 * 1024))
    line = assert_typed_failure(res, "cache.sqlite")
    assert res.returncode == 74, line
    db = sqlite3.connect(profile / "cache.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    ok = run_cli(["sync", "--json"], profile)
    assert ok.returncode == 0, ok.stderr
    inbox = next(r for r in json.loads(ok.stdout) if r["folder"] == "INBOX")
    assert inbox["total"] == 150
    assert mail_rig.message_ids(CAROL).__len__() == 150  # the server was not touched
