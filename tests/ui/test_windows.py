"""Key manager (drag-and-drop import), envelope opener (the composer: test_composer.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent

from client.mailbox import LocalMailbox
from ui import demo
from ui.banner import Level
from ui.envelope import EnvelopeWindow
from ui.keys import KeyManager
from ui.workers import Funnel


def _drop(widget, paths: list[Path]) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    with warnings.catch_warnings():
        # PySide6 marks this constructor deprecated (Qt 6 has no QPointF overload for it)
        warnings.simplefilter("ignore", DeprecationWarning)
        enter = QDragEnterEvent(
            QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )  # fmt: skip
    widget.dragEnterEvent(enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )  # fmt: skip
    widget.dropEvent(drop)


def test_key_import_by_drag_and_drop(qtbot, demo_copy: Path, funnel: Funnel, tmp_path) -> None:
    # a stranger's key, made by the services in another profile
    other = demo.open_profile_session(tmp_path / "dave")
    info = other.keys_generate("dave@clinic.example", name="Dave", kind="pgp", now=_now())
    key_file = tmp_path / "dave.asc"
    key_file.write_bytes(other.keys_export(info.fingerprint))
    other.close()

    bob = demo.open_profile_session(demo_copy / "bob")
    try:
        manager = KeyManager(bob, funnel)
        qtbot.addWidget(manager)
        qtbot.waitUntil(lambda: len(manager.keys) > 0, timeout=30_000)
        before = {k.fingerprint for k in manager.keys}
        assert info.fingerprint not in before
        with qtbot.waitSignal(manager.changed, timeout=30_000):
            _drop(manager, [key_file])
        qtbot.waitUntil(
            lambda: info.fingerprint in {k.fingerprint for k in manager.keys}, timeout=30_000
        )
        row = [k.fingerprint for k in manager.keys].index(info.fingerprint)
        assert manager.table.item(row, 1).text() == "dave@clinic.example"
        assert manager.table.item(row, 0).text() == "Contact"
        assert manager.table.item(row, 3).text() == "valid"
        # own identities are listed first and marked as such
        assert manager.table.item(0, 0).text() == "You"
    finally:
        funnel.wait_idle()
        bob.close()


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_envelope_opener_opens_eml_with_banner(
    qtbot, session, mailbox: LocalMailbox, funnel: Funnel, tmp_path
) -> None:
    uid = next(s.uid for s in mailbox.summaries("INBOX") if s.content_type.startswith("app"))
    path = tmp_path / "discharge.eml"
    path.write_bytes(mailbox.fetch("INBOX", uid))
    window = EnvelopeWindow(session, funnel)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.opened, timeout=30_000):
        window.open_path(str(path))
    spec = window.reader.banner.spec
    assert spec.level == Level.VERIFIED
    assert spec.headline.startswith("Encrypted with S/MIME to you")
    assert window.reader.subject_label.text() == "Discharge summary, patient 4711"


def test_envelope_opener_opens_bare_p7m(
    qtbot, session, mailbox: LocalMailbox, funnel: Funnel, tmp_path
) -> None:
    import base64
    import email

    uid = next(s.uid for s in mailbox.summaries("INBOX") if s.content_type.startswith("app"))
    msg = email.message_from_bytes(mailbox.fetch("INBOX", uid))
    path = tmp_path / "smime.p7m"
    path.write_bytes(base64.b64decode(msg.get_payload()))
    window = EnvelopeWindow(session, funnel)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.opened, timeout=30_000):
        window.open_path(str(path))
    assert window.reader.banner.spec.headline.startswith("Encrypted with S/MIME to you")
    assert [f.name for f in window.reader.files] == ["discharge-4711.txt"]


def test_envelope_opener_asks_for_password(
    qtbot, session, mailbox: LocalMailbox, funnel: Funnel
) -> None:
    from client.mime.render import readable

    uid = next(s.uid for s in mailbox.summaries("INBOX") if "envelope" in s.subject)
    env = next(a for a in readable(mailbox.fetch("INBOX", uid)).attachments if a.envelope)
    window = EnvelopeWindow(session, funnel)
    qtbot.addWidget(window)
    answers = ["wrong password here", demo.ENVELOPE_PASSWORD]
    prompts: list[str] = []
    window.ask_password = lambda prompt: (prompts.append(prompt), answers.pop(0))[1]
    with qtbot.waitSignal(window.opened, timeout=30_000):
        window.open_data(env.name, env.data)
    assert len(prompts) == 2 and "wrong" in prompts[1]
    assert "the scan you asked for" in window.reader.body.toPlainText()
    assert [f.name for f in window.reader.files] == ["scan-4711.txt"]
