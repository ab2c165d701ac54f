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
                done()
                return
            window.select_uid(envelope_row.summary.uid)
            QApplication.processEvents()
            name, data = next((f.name, f.data) for f in window.reader.files if f.envelope)
            opener = window.open_envelope_data(name, data)
            opener.ask_password = lambda _prompt: "river-maple-cobalt-42"
            _after_idle(funnel, lambda: (save(opener, out / "envelope.png"), done()))

        _after_idle(funnel, shoot_rest)

    next_message()
