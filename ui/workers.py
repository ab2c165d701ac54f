"""The one worker funnel: every slow call (crypto, disk, later network) runs off the GUI thread.

Theory of operation
-------------------
Widgets never call a service that can take time directly. They call
:meth:`Funnel.submit` with a *named* operation (its time limit comes from
:data:`TIMEOUTS`) and a plain Python callable. The callable runs on the funnel's
:class:`QThreadPool`; the result comes back only through the :class:`Job`'s signals
(``succeeded(object)`` or ``failed(object)``, an exception), delivered on the GUI thread
by Qt's queued connections. A watchdog timer on the GUI thread fails the job with
:class:`OperationTimeout` when the named limit passes; a late result is then dropped.

Service calls share one keystore, which is not made for concurrent use: the funnel's
pool has a single thread, so jobs run one at a time in submission order. The GUI thread
never waits on it.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from client.errors import SealmailError

#: Seconds between GIL hand-overs while the worker runs (see Funnel).
SWITCH_INTERVAL = 0.001

__all__ = ["TIMEOUTS", "Funnel", "Job", "OperationTimeout", "settle_heap"]

log = logging.getLogger(__name__)

#: Named time limits (seconds) for every kind of work the app sends to the funnel.
TIMEOUTS: dict[str, float] = {
    "open-session": 60.0,
    "build-demo": 180.0,
    "list-folders": 20.0,
    "list-messages": 30.0,
    "open-message": 60.0,
    "open-envelope": 60.0,
    "keys-list": 20.0,
    "keys-import": 60.0,
    "keys-generate": 120.0,
    "keys-export": 20.0,
    "reachability": 30.0,
    "protection-plan": 30.0,
    "send": 180.0,
    "save-file": 60.0,
    "autoconfig": 90.0,
    "account-add": 30.0,
    "settings-load": 30.0,
    "settings-save": 30.0,
    "close-source": 20.0,
    "address-book": 30.0,
    "save-draft": 120.0,
    "open-draft": 60.0,
    "keys-revoke": 60.0,
    "keys-trust": 60.0,
    "keys-identity": 120.0,
    "tls-refresh": 30.0,
    "watch-start": 30.0,
    "watch-stop": 30.0,
    "sync-folder": 60.0,
    "drafts-list": 30.0,
}


def settle_heap() -> None:
    """Leave the objects alive now out of later full garbage collections (``gc.freeze``).

    A full (generation 2) collection walks every container object with the GIL held, on
    whichever thread triggers it; with the app's modules, classes and a 10,000-row folder
    that was 70-85 ms (measured in tests/ui/test_stalls.py with a gc callback), longer than
    the 50 ms the GUI thread may wait. Called once the window has loaded and after a large
    folder listing, so later collections only walk what was made since. Frozen objects are
    still freed by reference counting; only cyclic garbage alive at that moment would stay.
    """
    gc.freeze()


class OperationTimeout(SealmailError):
    """A named operation did not finish within its time limit."""


class Job(QObject):
    """One submitted operation; exactly one of its signals fires (on the GUI thread)."""

    succeeded = Signal(object)
    failed = Signal(object)

    def __init__(self, name: str, timeout: float, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.timeout = timeout
        self.done = False
        self.started = time.monotonic()
        self.elapsed: float | None = None
        self._watchdog = QTimer(self)
        self._watchdog.setSingleShot(True)
        self._watchdog.setInterval(int(timeout * 1000))
        self._watchdog.timeout.connect(self._expire)

    def _expire(self) -> None:
        if self.done:
            return
        self.done = True
        log.warning("operation %s timed out after %.0f s", self.name, self.timeout)
        self.failed.emit(
            OperationTimeout(
                f"{self.name} took longer than {self.timeout:.0f} s",
                hint="Try again; if it keeps happening, the file or server may be too large "
                "or unreachable.",
            )
        )

    def _finish(self, ok: bool, value: object) -> None:
        # runs on the GUI thread (queued from the worker)
        if self.done:
            return
        self.done = True
        self.elapsed = time.monotonic() - self.started
        self._watchdog.stop()
        (self.succeeded if ok else self.failed).emit(value)


class _Relay(QObject):
    """Lives on the GUI thread; the worker emits, Qt queues the call to the GUI thread."""

    result = Signal(bool, object)


class _Task(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay, name: str) -> None:
        super().__init__()
        self.fn = fn
        self.relay = relay
        self.name = name
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            value = self.fn()
        except BaseException as exc:  # every failure goes back as a value, never lost
            if not isinstance(exc, SealmailError):
                log.exception("operation %s failed", self.name)
            self.relay.result.emit(False, exc)
        else:
            self.relay.result.emit(True, value)


def _delivered(
    name: str, callback: Callable[[Any], None], owner: QObject | None
) -> Callable[[Any], None]:
    """``callback``, not called once ``owner`` is deleted, and stopped (logged) when it
    touches a widget that was deleted while the job ran."""

    def deliver(value: Any) -> None:
        if owner is not None and not shiboken6.isValid(owner):
            log.debug("operation %s finished after its window closed", name)
            return
        try:
            callback(value)
        except RuntimeError as exc:
            if "already deleted" not in str(exc):
                raise
            log.debug("operation %s finished after a widget it updates was deleted", name)

    return deliver


class Funnel(QObject):
    """Runs named operations one at a time off the GUI thread."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # The worker and the GUI thread share Python's lock (GIL). A thread that wants it
        # back waits one switch interval (5 ms by default) per round, and with the IMAP
        # watcher as a third contender the GUI thread lost several rounds in a row (a 20+ ms
        # wait for one PySide call after a 10,000-row folder was listed). 1 ms rounds keep
        # the GUI's waits short for a ~1 % cost in worker throughput.
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._jobs: set[Job] = set()
        self._relays: set[_Relay] = set()
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return len(self._jobs)

    def submit(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        on_success: Callable[[Any], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
        priority: int = 0,
        owner: QObject | None = None,
    ) -> Job:
        """Run ``fn`` off the GUI thread; its result or exception goes to ``on_success`` /
        ``on_failure`` on the GUI thread. ``owner``: the window the callbacks update; once
        it is gone (closed and deleted while the job ran) they are not called. Either way
        a callback that reaches a widget Qt has already deleted is stopped and logged, not
        raised into the event loop."""
        if name not in TIMEOUTS:
            raise KeyError(f"unnamed operation {name!r}: add it to ui.workers.TIMEOUTS")
        job = Job(name, TIMEOUTS[name], self)
        relay = _Relay()
        relay.result.connect(job._finish)
        if on_success is not None:
            job.succeeded.connect(_delivered(name, on_success, owner))
        if on_failure is not None:
            job.failed.connect(_delivered(name, on_failure, owner))

        def forget(*_: object) -> None:
            self._jobs.discard(job)
            job.deleteLater()
            if not self._jobs:
                self.busy_changed.emit(False)

        def release(*_: object) -> None:
            # the worker is done with the relay (even after a time-out)
            self._relays.discard(relay)
            relay.deleteLater()

        relay.result.connect(release)

        job.succeeded.connect(forget)
        job.failed.connect(forget)
        was_idle = not self._jobs
        self._jobs.add(job)
        self._relays.add(relay)
        job._watchdog.start()
        self.pool.start(_Task(fn, relay, name), priority)
        if was_idle:
            self.busy_changed.emit(True)
        return job

    def wait_idle(self, msecs: int = 30000) -> bool:
        """For shutdown and tests only: block until the pool is empty."""
        return bool(self.pool.waitForDone(msecs))
