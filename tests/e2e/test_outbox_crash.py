"""Crash test: a child process sending messages is SIGKILLed at random points.

After every trial each message must be in the recipient's INBOX exactly once and in the
sender's Sent folder exactly once. CI runs 20 trials × 10 messages; the long run
(``SM_CRASH_MESSAGES=100 SM_CRASH_TRIALS=20``) is documented in the final report.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from client.transport.accounts import Account
from client.transport.outbox import Outbox
from client.transport.outbox_state import State
from keystore.profile import open_profile
from tests.conftest import REPO
from tests.servers.rig import MailRig

ALICE, BOB = "alice@example.test", "bob@example.test"
MESSAGES = int(os.environ.get("SM_CRASH_MESSAGES", "10"))
TRIALS = int(os.environ.get("SM_CRASH_TRIALS", "20"))


def _run_child(
    profile: Path, account: Account, rig: MailRig, kill_after: float | None
) -> int | None:
    env = {**os.environ, "SM_TEST_PASSWORD": rig.password(ALICE)}
    proc = subprocess.Popen(
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
    if kill_after is not None:
        try:
            proc.wait(kill_after)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed {proc.returncode}: {err.decode()[-2000:]}")
    return proc.returncode


def test_crash_at_random_points_delivers_exactly_once(mail_rig: MailRig, tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("SM_CRASH_SEED", "5")))
    account = Account(
        email=ALICE,
        imap_host="127.0.0.1",
        imap_port=mail_rig.imaps_port,
        imap_security="tls",
        smtp_host="127.0.0.1",
        smtp_port=mail_rig.smtp_port,
        smtp_security="starttls",
        username=ALICE,
        ca_file=str(mail_rig.ca_file),
    )
    kills = killed_states = 0
    states_at_kill: Counter[str] = Counter()
    for trial in range(TRIALS):
        profile = tmp_path / f"t{trial}"
        box = Outbox(open_profile(profile))
        ids = []
        for i in range(MESSAGES):
            mid = f"<crash-{trial}-{i}-{uuid.uuid4().hex[:8]}@example.test>"
            ids.append(mid)
            box.enqueue(
                f"From: {ALICE}\r\nTo: {BOB}\r\nSubject: crash {trial}/{i}\r\nMessage-ID: {mid}\r\n"
                f"\r\nbody {i}\r\n".encode(),
                account,
            )
        for _ in range(rng.randint(1, 3)):
            rc = _run_child(
                profile, account, mail_rig, kill_after=rng.uniform(0.05, 0.9) * MESSAGES / 10 + 0.3
            )
            if rc == -signal.SIGKILL:
                kills += 1
                for e in box.entries():
                    if e.state not in (State.QUEUED, State.DONE):
                        states_at_kill[e.state.value] += 1
                        killed_states += 1
        deadline = time.monotonic() + 120
        while any(e.state is not State.DONE for e in box.entries()):
            assert time.monotonic() < deadline, [e.to_json() for e in box.entries()]
            _run_child(profile, account, mail_rig, kill_after=None)
        inbox = Counter(m for m in mail_rig.message_ids(BOB) if m in ids)
        sent = Counter(m for m in mail_rig.message_ids(ALICE, "Sent") if m in ids)
        assert {m: inbox[m] for m in ids} == dict.fromkeys(ids, 1), f"trial {trial}"
        assert {m: sent[m] for m in ids} == dict.fromkeys(ids, 1), f"trial {trial}"
        assert not [m for m in mail_rig.message_ids(ALICE) if m in ids]
    print(
        f"\ncrash test: {TRIALS} trials x {MESSAGES} messages, {kills} kills, "
        f"in-flight states at kill: {dict(states_at_kill)}"
    )
    assert kills >= TRIALS // 2
