"""Issue 8's responsiveness figures: the longest GUI-thread stall, measured on the real rig.

A 5 ms QTimer heartbeat runs on the GUI thread; the longest gap between two beats is the
longest time the GUI thread could not react. Measured while the main window syncs and lists
a 10,000-message folder (MULTIAPPENDed like bench/imap.py does), scrolls to its end, and
opens an OpenPGP-encrypted message carrying a 20 MB attachment. The figures are printed
(``-s``) and recorded as properties; the test asserts only that the work was done (the
goal, <= 50 ms, depends on the machine: no timed assertion).
"""

from __future__ import annotations

import atexit
import faulthandler
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from client.mailbox import ImapMailSource, build_plain
from client.mime.render import readable
from client.services import Session
from client.transport.accounts import Account
from client.transport.imap import connect
from ui import demo
from ui.mainwindow import MainWindow
from ui.workers import Funnel

USER = "stall@example.test"
MESSAGES = 10_000
BIG = 20 * 1024 * 1024


#: SEALMAIL_STALL_DUMP=MS: write every thread's stack to build/stall-dumps.txt whenever the
#: GUI thread misses its beat by MS milliseconds (finding what holds the GIL).
_DUMP = (
    (float(os.environ["SEALMAIL_STALL_DUMP"]) / 1000, open("build/stall-dumps.txt", "w"))
    if os.environ.get("SEALMAIL_STALL_DUMP")
    else None
)
if _DUMP is not None:
    atexit.register(_DUMP[1].close)


class Heartbeat:
    """Gaps between 5 ms timer beats on the GUI thread."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._beat)
        self._last = 0.0

    def _beat(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now
        if _DUMP is not None:  # where every thread was when a beat came late
            faulthandler.dump_traceback_later(_DUMP[0], file=_DUMP[1])

    def __enter__(self) -> Heartbeat:
        self.gaps.clear()
        self._last = time.perf_counter()
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.stop()
        if _DUMP is not None:
            faulthandler.cancel_dump_traceback_later()

    @property
    def longest_ms(self) -> float:
        return max(self.gaps, default=0.0) * 1000

    def report(self, what: str, elapsed: float) -> str:
        top = sorted(self.gaps)[-5:]
        return (
            f"{what}: longest GUI-thread stall {self.longest_ms:.1f} ms "
            f"(5 longest: {[round(g * 1000, 1) for g in top]}), {len(self.gaps)} beats, "
            f"work took {elapsed:.2f} s"
        )


def _messages(n: int) -> list[bytes]:
    return [
        (
            f"From: Sender {i} <s{i}@example.test>\r\nTo: {USER}\r\nSubject: stall message {i}\r\n"
            f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <stall-{i}@example.test>\r\n"
            f"Content-Type: text/plain\r\n\r\nbody {i}\r\n"
        ).encode()
        for i in range(n)
    ]


@dataclass
class RemoteRig:
    """``python -m client.devrig`` in a child process: its servers do not share this
    process's GIL, so the stalls measured are the app's own (the in-process submission
    server's LMTP relay alone held the GIL ~0.5 s per 47 MB message)."""

    proc: subprocess.Popen[str]
    host: str
    imaps_port: int
    smtps_port: int
    ca_file: Path
    users: dict[str, str]

    @classmethod
    def start(cls, users: dict[str, str], size_limit: int) -> RemoteRig:
        args = [sys.executable, "-m", "client.devrig", "--size-limit", str(size_limit)]
        args += [f"--user={u}={p}" for u, p in users.items()]
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.stdin.close()  # type: ignore[union-attr]
            proc.wait(30)
            proc.stdout.close()
            raise RuntimeError(f"the rig did not start (exit {proc.returncode})")
        f = json.loads(line)
        return cls(
            proc, f["host"], f["imaps_port"], f["smtps_port"], Path(f["ca_file"]), f["users"]
        )

    def password(self, user: str) -> str:
        return self.users[user]

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()  # the rig stops when its stdin closes
        self.proc.wait(60)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def big_rig(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteRig]:
    """A private rig: INBOX with 10,000 messages, folder Big with one 20 MB encrypted mail."""
    # a 25 MB file in a password envelope is ~47 MB of mail: more than the usual 32 MiB
    rig = RemoteRig.start({USER: "stall-imap-secret-4X"}, size_limit=80 << 20)
    try:
        s = connect(
            rig.host, rig.imaps_port, security="tls", username=USER,
            password=rig.password(USER), ca_file=str(rig.ca_file),
        )  # fmt: skip
        try:
            msgs = _messages(MESSAGES)
            for i in range(0, len(msgs), 1000):
                s.multiappend("INBOX", msgs[i : i + 1000])
            alice = demo.open_profile_session(demo_root / "alice")
            try:
                now = datetime.now(UTC)
                plain = build_plain(
                    sender=demo.ALICE, to=[demo.BOB], subject="Imaging for patient 4711",
                    body="The scan is attached.", date=now,
                    attachments=[("scan-4711.dcm", "application/dicom", os.urandom(BIG))],
                )  # fmt: skip
                sealed = alice.message_encrypt(
                    plain, to=[demo.BOB], sender=demo.ALICE, method="pgp", now=now,
                    rng=os.urandom,
                )  # fmt: skip
            finally:
                alice.close()
            s.create_folder("Big")
            s.multiappend("Big", [sealed])
        finally:
            s.close()
        yield rig
    except BaseException:
        rig.stop()
        raise
    rig.stop()


@pytest.fixture
def bob_on_big_rig(big_rig: RemoteRig, demo_copy: Path) -> Iterator[Session]:
    s = demo.open_profile_session(demo_copy / "bob")
    s.account_add(
        Account(
            email=USER, imap_host=big_rig.host, imap_port=big_rig.imaps_port,
            imap_security="tls", smtp_host=big_rig.host, smtp_port=big_rig.smtps_port,
            smtp_security="tls", username=USER, ca_file=str(big_rig.ca_file),
        ),
        big_rig.password(USER).encode(),
    )  # fmt: skip
    try:
        yield s
    finally:
        s.close()


def test_gui_stalls_syncing_10000_messages_and_opening_20_mb(
    qtbot, bob_on_big_rig: Session, funnel: Funnel, record_property
) -> None:
    source = ImapMailSource(bob_on_big_rig, USER)
    window = MainWindow(bob_on_big_rig, source, funnel, account=USER)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    qtbot.wait(50)
    try:
        # 1. sync 10,000 headers into the cache, list them, open what is on screen
        frozen = gc.get_freeze_count()
        with Heartbeat() as beat:
            t = time.perf_counter()
            with qtbot.waitSignal(window.loaded, timeout=300_000):
                window.load()
            qtbot.waitUntil(lambda: funnel.pending == 0, timeout=300_000)
            elapsed = time.perf_counter() - t
        assert window.message_model.folder == "INBOX"
        assert window.message_model.rowCount() == MESSAGES
        assert window.message_view.model().rowCount() == MESSAGES
        opened = sum(1 for k in window.opened if k[0] == "INBOX")
        assert 0 < opened < 200  # lazy rows: only what is on screen was opened
        # the listed rows (and start-up objects) are out of later full collections, which
        # otherwise walked them all with the GIL held (70-85 ms: see ui.workers.settle_heap)
        assert gc.get_freeze_count() - frozen >= MESSAGES
        print("\n" + beat.report("sync + list 10,000 messages", elapsed))
        record_property("stall_sync_10000_ms", round(beat.longest_ms, 1))

        # 2. jump to the end of the list: the rows now on screen are opened in the background
        with Heartbeat() as beat:
            t = time.perf_counter()
            window.message_view.scrollToBottom()
            last = window.message_model.rows[-1].summary.uid
            qtbot.waitUntil(lambda: ("INBOX", last) in window.opened, timeout=60_000)
            qtbot.waitUntil(lambda: funnel.pending == 0, timeout=60_000)
            elapsed = time.perf_counter() - t
        print(beat.report("scroll to the end of 10,000 rows", elapsed))
        record_property("stall_scroll_ms", round(beat.longest_ms, 1))

        # 3. the 20 MB encrypted message: fetch, decrypt, render, list the attachment
        names = [f.name for f in window.folder_model.folders]
        with Heartbeat() as beat:
            t = time.perf_counter()
            with qtbot.waitSignal(window.message_shown, timeout=300_000):
                window.folder_view.setCurrentIndex(window.folder_model.index(names.index("Big"), 0))
            qtbot.waitUntil(lambda: funnel.pending == 0, timeout=300_000)
            elapsed = time.perf_counter() - t
        spec = window.reader.banner.spec
        assert spec is not None and "Encrypted with OpenPGP" in spec.headline
        assert [(f.name, f.size) for f in window.reader.files] == [("scan-4711.dcm", BIG)]
        print(beat.report("open a 20 MB encrypted attachment", elapsed))
        record_property("stall_open_20mb_ms", round(beat.longest_ms, 1))
    finally:
        funnel.wait_idle(60_000)
        source.close()


def test_gui_stalls_attaching_and_sending_25_mb(
    qtbot,
    big_rig: RemoteRig,
    bob_on_big_rig: Session,
    funnel: Funnel,
    record_property,
    tmp_path: Path,
) -> None:
    """Attach a 25 MB file, let the plan (scanner) run, send it to the rig and see it land:
    the message is built, scanned, queued and uploaded off the GUI thread."""
    from ui.composer import ComposerWindow, SendOutcome

    scan = tmp_path / "scan-0815.dcm"
    payload = os.urandom(25 * 1024 * 1024)
    scan.write_bytes(payload)
    composer = ComposerWindow(bob_on_big_rig, funnel, sender=USER)
    qtbot.addWidget(composer)
    composer.show()
    qtbot.waitExposed(composer)
    composer.to.setText(USER)
    composer.subject.setText("Imaging for patient 0815")
    composer.body.setPlainText("The scan is attached.")
    with Heartbeat() as beat:
        t = time.perf_counter()
        with qtbot.waitSignal(composer.plan_updated, timeout=300_000):
            composer.add_files([str(scan)])
        assert [n for n, _ in composer.files] == [scan.name]
        with qtbot.waitSignal(composer.send_done, timeout=300_000) as sent:
            composer.send_button.click()
        qtbot.waitUntil(lambda: funnel.pending == 0, timeout=300_000)
        elapsed = time.perf_counter() - t
    outcome = sent.args[0]
    assert isinstance(outcome, SendOutcome) and outcome.sent, outcome
    assert outcome.entry.state.value in ("sent", "copied", "done"), outcome.entry
    print(beat.report("attach and send 25 MB", elapsed))
    record_property("stall_send_25mb_ms", round(beat.longest_ms, 1))
    # it arrived whole: the attachment as the server stores it
    s = connect(
        big_rig.host, big_rig.imaps_port, security="tls", username=USER,
        password=big_rig.password(USER), ca_file=str(big_rig.ca_file),
    )  # fmt: skip
    try:
        s.select("INBOX", readonly=True)
        uids = s.search_message_id(outcome.entry.message_id)
        assert len(uids) == 1
        raw = s.fetch_body(uids[0])
    finally:
        s.close()
    # the policy put it in a password envelope (no key for the recipient): open it
    assert [p.address for p in outcome.passwords] == [USER]
    envelope = next(a for a in readable(raw).attachments if a.envelope)
    password = outcome.passwords[0].password.encode()
    opened = bob_on_big_rig.envelope_open(
        envelope.data, password=lambda: password, now=datetime.now(UTC)
    )
    assert [(f.name, f.data == payload) for f in opened.files] == [(scan.name, True)]
