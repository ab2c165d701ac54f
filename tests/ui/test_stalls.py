"""Issue 8's responsiveness figures: the longest GUI-thread stall, measured on the real rig.

A 5 ms QTimer heartbeat runs on the GUI thread; the longest gap between two beats is the
longest time the GUI thread could not react. Measured while the main window syncs and lists
a 10,000-message folder (MULTIAPPENDed like bench/imap.py does), scrolls to its end, and
opens an OpenPGP-encrypted message carrying a 20 MB attachment. The figures are printed
(``-s``) and recorded as properties; the test asserts only that the work was done (the
goal, <= 50 ms, depends on the machine: no timed assertion).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer

from client.devrig.rig import MailRig
from client.mailbox import ImapMailSource, build_plain
from client.services import Session
from client.transport.accounts import Account
from client.transport.imap import connect
from ui import demo
from ui.mainwindow import MainWindow
from ui.workers import Funnel

USER = "stall@example.test"
MESSAGES = 10_000
BIG = 20 * 1024 * 1024


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

    def __enter__(self) -> Heartbeat:
        self.gaps.clear()
        self._last = time.perf_counter()
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.stop()

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


@pytest.fixture(scope="module")
def big_rig(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailRig]:
    """A private rig: INBOX with 10,000 messages, folder Big with one 20 MB encrypted mail."""
    rig = MailRig.start(users={USER: "stall-imap-secret-4X"})
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
def bob_on_big_rig(big_rig: MailRig, demo_copy: Path) -> Iterator[Session]:
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
