"""Screenshots for ``--screenshot`` / ``--screenshot-dir`` (reviewers and tests).

Waits for the main window's ``loaded`` signal and then for the worker funnel to be idle
(every message of the folder opened, so the protection column is filled in), lets Qt
paint, and saves ``widget.grab()`` as PNG.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from ui.workers import Funnel

__all__ = ["save", "when_ready"]


def save(widget: QWidget, path: str | Path) -> Path:
    QApplication.processEvents()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(target), "PNG"):
        raise OSError(f"could not write {target}")
    return target


def _after_idle(funnel: Funnel, then: Callable[[], None]) -> None:
    def poll() -> None:
        if funnel.pending:
            QTimer.singleShot(50, poll)
        else:
            QTimer.singleShot(150, then)  # let the last results paint

    poll()


def when_ready(
    window: Any,
    funnel: Funnel,
    screenshot: str | None,
    directory: str | None,
    done: Callable[[], None],
) -> None:
    def shoot() -> None:
        if screenshot:
            save(window, screenshot)
        if directory:
            _all(window, funnel, Path(directory), done)
        else:
            done()

    window.loaded.connect(lambda: _after_idle(funnel, shoot))


def _all(window: Any, funnel: Funnel, out: Path, done: Callable[[], None]) -> None:
    """One PNG per message of the folder, then the other windows."""
    uids = [row.summary.uid for row in window.message_model.rows]
    queue = list(uids)

    def next_message() -> None:
        if not queue:
            other_windows()
            return
        uid = queue.pop(0)
        window.select_uid(uid)
        _after_idle(funnel, lambda: (save(window, out / f"reader-{uid:02d}.png"), next_message()))

    def other_windows() -> None:
        keys = window.show_keys()
        composer = window.new_message()
        composer.to.setText("alice@example.org, nobody@elsewhere.example")
        composer.subject.setText("Follow-up for patient 4711")
        composer.body.setPlainText(
            "Alice,\n\nplease see the patient again next week.\n"
            "SSN for the insurance form: 536-90-4399\n\nBob\n"
        )
        composer.update_plan()

        def shoot_rest() -> None:
            keys.resize(1000, 420)
            save(keys, out / "keys.png")
            save(composer, out / "composer.png")
            envelope_row = next((r for r in window.message_model.rows if r.envelope), None)
            if envelope_row is None:
                dialogs(window, funnel, out, done)
                return
            window.select_uid(envelope_row.summary.uid)
            QApplication.processEvents()
            name, data = next((f.name, f.data) for f in window.reader.files if f.envelope)
            opener = window.open_envelope_data(name, data)
            opener.ask_password = lambda _prompt: "river-maple-cobalt-42"
            _after_idle(
                funnel,
                lambda: (save(opener, out / "envelope.png"), dialogs(window, funnel, out, done)),
            )

        _after_idle(funnel, shoot_rest)

    next_message()


def dialogs(window: Any, funnel: Funnel, out: Path, done: Callable[[], None]) -> None:
    """About box, settings, the account wizard (empty, and showing a weak-TLS warning)."""
    from client.transport.autoconfig import Discovered, ServerSetting
    from ui.settings import SettingsDialog

    about = window.show_about()
    settings = window.show_settings()
    wizard = window.add_account()
    # the settings as a managed desktop shows them: the example clinic policy, set by IT
    # (delivered here through the Windows registry look-up, injected)
    example = Path(__file__).resolve().parents[1] / "packaging/policy/example-clinic.json"
    managed = None
    if example.exists():
        lookup = {"platform": "win32", "env": {}, "registry": lambda _k, _v: str(example)}
        managed = window._keep(SettingsDialog(window.session, funnel, window, lookup=lookup))

    def shoot() -> None:
        save(about, out / "about.png")
        save(settings, out / "settings.png")
        if managed is not None:
            save(managed, out / "settings-managed.png")
            managed.close()
        save(wizard, out / "wizard.png")
        # the same wizard after a lookup that found only servers without TLS (sample result)
        wizard.address.setText("frank@smallclinic.example")
        wizard.password.setText("not-a-real-password")
        found = Discovered(
            "frank@smallclinic.example",
            ServerSetting("imap", "mail.smallclinic.example", 143, "plain", "frank"),
            ServerSetting("smtp", "mail.smallclinic.example", 587, "starttls", "frank"),
            "https://autoconfig.smallclinic.example/mail/config-v1.1.xml",
        )
        wizard._found(found)
        wizard.adjustSize()
        save(wizard, out / "wizard-warning.png")
        for w in (about, settings, wizard):
            w.close()
        done()

    _after_idle(funnel, shoot)
