"""Crash test: a child process sending 100 messages is SIGKILLed at random points.

Each trial starts a child (:mod:`tests.e2e.outbox_child`) on an outbox that holds 100
messages not yet done — the one outbox of the test, topped up with new messages before each
trial, so every restart also resumes whatever the killed child left in flight — and kills
it with SIGKILL at a random point of its run: after a random number k (0..99) of messages
is done, plus a random part of the next one (k = 0 kills it while it starts or sends the
first). After the last trial a child runs to the end. Then every message ever queued must be
in the recipient's INBOX exactly once, in the sender's Sent folder exactly once and not in
the sender's INBOX.

The profile and the servers' mail live on tmpfs where there is one: a SIGKILL leaves the
page cache intact, so what this test checks does not depend on fsync reaching a disk, and
the disk's fsync time (most of a run otherwise) is saved. ``SM_CRASH_MESSAGES``,
``SM_CRASH_TRIALS`` and ``SM_CRASH_SEED`` change the sizes and the random points.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.transport.accounts import Account
from client.transport.outbox import Outbox
from client.transport.outbox_state import State
from keystore.profile import open_profile
from tests.conftest import REPO
from tests.servers.rig import MailRig

ALICE, BOB = "alice@example.test", "bob@example.test"
MESSAGES = int(os.environ.get("SM_CRASH_MESSAGES", "100"))
TRIALS = int(os.environ.get("SM_CRASH_TRIALS", "20"))
TMPFS = Path("/dev/shm")


@pytest.fixture
def fast_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A scratch directory on tmpfs (else ``tmp_path``); new temp dirs go there too."""
    if TMPFS.is_dir() and os.access(TMPFS, os.W_OK):
        d = Path(tempfile.mkdtemp(prefix="sm-crash-", dir=TMPFS))
        os.chmod(d, 0o755)  # noqa: S103 - the rig's Dovecot may run as nobody beneath it
        monkeypatch.setattr(tempfile, "tempdir", str(d))  # the rig's Dovecot dirs
        try:
            yield d
        finally:
            shutil.rmtree(d, ignore_errors=True)
    else:
        yield tmp_path


@pytest.fixture
def crash_rig(fast_dir: Path) -> Iterator[MailRig]:
    rig = MailRig.start()
    try:
        yield rig
    finally:
        rig.stop()


def _start_child(profile: Path, account: Account, rig: MailRig) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SM_TEST_PASSWORD": rig.password(ALICE)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.e2e.outbox_child",
            str(profile),
            json.dumps(account.to_json()),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(proc: subprocess.Popen[bytes]) -> int:
    _, err = proc.communicate(timeout=300)
    if proc.returncode not in (0, 3, -signal.SIGKILL):  # 3: some message waits for a retry
        raise AssertionError(f"child failed {proc.returncode}: {err.decode()[-2000:]}")
    return proc.returncode


def _kill_after_progress(
    proc: subprocess.Popen[bytes], outbox_dir: Path, pending: int, k: int, extra: float
) -> bool:
    """SIGKILL ``proc`` once ``k`` messages are done and ``extra`` seconds more have passed.

    Progress is the number of messages whose local copy is gone (``*.eml``: removed as a
    message becomes done). Returns False if the child finished on its own first.
    """
    while proc.poll() is None:
        done = pending - sum(1 for p in outbox_dir.iterdir() if p.suffix == ".eml")
        if done >= k:
            try:
                proc.wait(extra)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                return True
            return False
        time.sleep(0.02)  # polling the outbox directory for progress
    return False


def _queue(box: Outbox, account: Account, trial: int, n: int) -> list[str]:
    ids = []
    for i in range(n):
        mid = f"<crash-{trial}-{i}-{uuid.uuid4().hex[:8]}@example.test>"
        ids.append(mid)
        box.enqueue(
            f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: crash {trial}/{i}\r\nMessage-ID: {mid}\r\n"
            f"\r\nbody {i}\r\n".encode(),
            account,
        )
    return ids


def test_crash_at_random_points_delivers_exactly_once(crash_rig: MailRig, fast_dir: Path) -> None:
    rng = random.Random(int(os.environ.get("SM_CRASH_SEED", "5")))
    account = Account(
        email=ALICE,
        imap_host="127.0.0.1",
        imap_port=crash_rig.imaps_port,
        imap_security="tls",
        smtp_host="127.0.0.1",
        smtp_port=crash_rig.smtp_port,
        smtp_security="starttls",
        username=ALICE,
        ca_file=str(crash_rig.ca_file),
    )
    profile = fast_dir / "profile"
    box = Outbox(open_profile(profile))
    ids: list[str] = []
    kills = 0
    states_at_kill: Counter[str] = Counter()
    progress: list[int] = []
    started = time.monotonic()
    for trial in range(TRIALS):
        not_done = sum(1 for e in box.entries() if e.state is not State.DONE)
        ids += _queue(box, account, trial, MESSAGES - not_done)  # the child has 100 to send
        before = sum(1 for e in box.entries() if e.state is State.DONE)
        proc = _start_child(profile, account, crash_rig)
        killed = _kill_after_progress(
            proc, box.dir, MESSAGES, rng.randrange(MESSAGES), rng.uniform(0.0, 0.25)
        )
        rc = _finish(proc)
        if killed and rc == -signal.SIGKILL:
            kills += 1
            entries = box.entries()
            progress.append(sum(1 for e in entries if e.state is State.DONE) - before)
            states_at_kill.update(
                e.state.value for e in entries if e.state not in (State.QUEUED, State.DONE)
            )
    deadline = time.monotonic() + 300
    while any(e.state is not State.DONE for e in box.entries()):
        assert time.monotonic() < deadline, [
            e.to_json() for e in box.entries() if e.state is not State.DONE
        ]
        _finish(_start_child(profile, account, crash_rig))
    elapsed = time.monotonic() - started

    assert len(ids) == len(set(ids)) == len(box.entries())
    inbox = Counter(m for m in crash_rig.message_ids(BOB) if m.startswith("<crash-"))
    sent = Counter(m for m in crash_rig.message_ids(ALICE, "Sent") if m.startswith("<crash-"))
    assert {m: inbox[m] for m in ids} == dict.fromkeys(ids, 1)
    assert {m: sent[m] for m in ids} == dict.fromkeys(ids, 1)
    assert set(inbox) == set(sent) == set(ids)  # nothing else arrived either
    assert not [m for m in crash_rig.message_ids(ALICE) if m.startswith("<crash-")]
    print(
        f"\ncrash test: {TRIALS} trials, each child starting with {MESSAGES} messages to send; "
        f"{kills} SIGKILLs; {len(ids)} messages delivered exactly once in {elapsed:.0f}s; "
        f"messages done per killed child: {sorted(progress)}; "
        f"in-flight states at kill: {dict(states_at_kill)}"
    )
    assert kills >= TRIALS * 3 // 4
