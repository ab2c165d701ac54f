"""The worker funnel delivers a late result safely: a window closed (and deleted by Qt)
while its job ran gets no callback, and a callback that reaches a deleted widget is
stopped instead of raising into the event loop (pytest-qt fails a test on any exception
raised there). Seen in CI: a composer's protection plan finished after the composer was
gone and wrote to its deleted label."""

from __future__ import annotations

import sys
import threading
from typing import Any

import shiboken6
from PySide6.QtWidgets import QLabel

from ui.workers import Funnel


def _late_job(funnel: Funnel, qtbot: Any, **kwargs: Any) -> tuple[QLabel, list[object]]:
    label = QLabel("waiting")
    calls: list[object] = []
    gate = threading.Event()

    def update(value: object) -> None:
        calls.append(value)
        label.setText(str(value))  # the deleted widget

    job = funnel.submit(
        "protection-plan",
        lambda: gate.wait(10) and "planned",
        on_success=update,
        owner=label if kwargs.get("owned") else None,
    )
    shiboken6.delete(label)  # the window closes while the job runs
    gate.set()
    qtbot.waitUntil(lambda: job.done, timeout=10_000)
    qtbot.wait(50)  # let the queued delivery run
    return label, calls


def test_a_late_result_for_a_deleted_owner_is_not_delivered(qtbot: Any, funnel: Funnel) -> None:
    label, calls = _late_job(funnel, qtbot, owned=True)
    assert not shiboken6.isValid(label)
    assert calls == []


def test_a_callback_that_reaches_a_deleted_widget_is_stopped(qtbot: Any, funnel: Funnel) -> None:
    _label, calls = _late_job(funnel, qtbot, owned=False)
    assert calls == ["planned"]  # it ran, reached the deleted label, and was stopped


def test_other_errors_in_a_callback_still_surface(qtbot: Any, funnel: Funnel) -> None:
    """Only "already deleted" is swallowed; any other error is raised as before."""
    errors: list[BaseException] = []

    def broken(_value: object) -> None:
        raise RuntimeError("a real bug")

    hook = sys.excepthook
    sys.excepthook = lambda _t, exc, _tb: errors.append(exc)
    try:
        with qtbot.capture_exceptions() as caught:
            job = funnel.submit("protection-plan", lambda: 1, on_success=broken)
            qtbot.waitUntil(lambda: job.done, timeout=10_000)
            qtbot.wait(50)
    finally:
        sys.excepthook = hook
    assert any("a real bug" in str(exc) for _t, exc, _tb in caught) or any(
        "a real bug" in str(e) for e in errors
    )
