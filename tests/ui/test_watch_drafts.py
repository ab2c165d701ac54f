"""The main window on the real demo servers: new mail appears by itself (IMAP IDLE), and a
draft in the Drafts folder opens in the composer, never in the reader."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from PySide6.QtCore import Qt

from client.drafts import SavedDraft
from client.mailbox import ImapMailSource, build_plain
from client.policy.orgpolicy import DEFAULT_POLICY
from client.services import Session
from ui import demo
from ui.composer import ComposerWindow, Reachability
from ui.mainwindow import MainWindow
from ui.workers import Funnel

SSN = "536-90-4399"


@pytest.fixture
def window(qtbot, rig_demo, bob: Session, funnel: Funnel) -> Iterator[MainWindow]:
    source = ImapMailSource(bob, demo.BOB)
    w = MainWindow(bob, source, funnel, account=demo.BOB)
    qtbot.addWidget(w)
    try:
        yield w
    finally:
        w.close()
        funnel.wait_idle(30_000)
        source.close()


def _watchers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("imap-watch-") and t.is_alive()]


def _subjects(w: MainWindow) -> list[str]:
    return [r.subject or r.summary.subject for r in w.message_model.all_rows]


def test_new_mail_appears_in_the_list_without_user_action(
    qtbot, rig_demo, window: MainWindow, funnel: Funnel
) -> None:
    _data, rig = rig_demo
    with qtbot.waitSignal(window.watching, timeout=60_000) as started:
        with qtbot.waitSignal(window.loaded, timeout=60_000):
            window.load()
    watcher = started.args[0]
    assert window.watcher is watcher and watcher.running, watcher
    assert window.message_model.folder == "INBOX"
    selected = window._want_uid
    assert selected is not None
    before = len(window.message_model.all_rows)
    unread = window.folder_model.folders[0].unread

    raw = build_plain(
        sender=demo.ALICE,
        to=[demo.BOB],
        subject="Lab results are in",
        body="The lab results arrived; see you on Friday.",
        date=datetime.now(UTC),
    )
    other = rig.imap(demo.BOB)  # another connection, as another client or the MTA would
    try:
        other.append("INBOX", raw)
    finally:
        other.logout()

    qtbot.waitUntil(lambda: "Lab results are in" in _subjects(window), timeout=60_000)
    assert len(window.message_model.all_rows) == before + 1
    assert _subjects(window)[0] == "Lab results are in"  # newest first
    assert not window.message_model.all_rows[0].seen
    assert window.folder_model.folders[0].name == "INBOX"
    assert window.folder_model.folders[0].unread == unread + 1
    assert window._want_uid == selected  # what the user was reading stays selected
    current = window.message_view.currentIndex()
    assert current.isValid() and current.data(Qt.ItemDataRole.UserRole) == selected
    assert window.reader.banner.spec is not None  # and stays shown

    window.close()
    funnel.wait_idle(30_000)
    assert window.watcher is None and not watcher.running
    assert _watchers() == []


def test_draft_opens_in_the_composer_not_the_reader(
    qtbot, rig_demo, bob: Session, window: MainWindow, funnel: Funnel
) -> None:
    composer = ComposerWindow(
        bob, funnel, sender=demo.BOB, adapter=Reachability(bob, org_policy=DEFAULT_POLICY)
    )
    qtbot.addWidget(composer)
    composer.to.setText(demo.ALICE)
    composer.subject.setText("Insurance form, patient 4711")
    composer.body.setPlainText(f"SSN for the form: {SSN}")
    with qtbot.waitSignal(composer.draft_saved, timeout=60_000) as saved:
        composer.save_button.click()
    draft = saved.args[0]
    assert isinstance(draft, SavedDraft) and draft.encrypted, draft

    with qtbot.waitSignal(window.loaded, timeout=60_000):
        window.load()
    names = [f.name for f in window.folder_model.folders]
    with qtbot.waitSignal(window.message_model.modelReset, timeout=60_000):
        window.folder_view.setCurrentIndex(window.folder_model.index(names.index("Drafts"), 0))
    funnel.wait_idle(60_000)
    (row,) = [r for r in window.message_model.all_rows if r.draft_id == draft.draft_id]
    assert row.summary.uid == draft.uid and row.draft_encrypted
    assert window.message_model._subject(row) == "(encrypted draft)"
    assert row.protection() == ("encrypted", "Draft (encrypted)")

    window.select_uid(row.summary.uid)
    assert "continue writing it in the composer" in window.reader.body.toPlainText()
    assert window.reader.banner.spec.headline == "Draft, stored encrypted to your own key"
    assert ("Drafts", row.summary.uid) not in window.opened  # never opened in the reader
    assert "sealmail-draft.eml" not in [a.name for a in window.reader.files]

    window.message_view.setFocus()
    qtbot.keyClick(window.message_view, Qt.Key.Key_Return)  # Enter: continue writing
    opened = [w for w in window._secondary if isinstance(w, ComposerWindow)]
    assert len(opened) == 1
    again = opened[0]
    if again.draft_id is None:
        with qtbot.waitSignal(again.draft_loaded, timeout=60_000):
            pass
    assert again.draft_id == draft.draft_id
    assert again.subject.text() == "Insurance form, patient 4711"
    assert again.to.text() == demo.ALICE
    assert again.body.toPlainText() == f"SSN for the form: {SSN}"
