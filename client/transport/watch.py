"""New-mail watcher: IMAP IDLE on one folder, renewed, reconnecting with backoff.

Theory of operation
-------------------
:class:`FolderWatcher` runs a loop (in its own thread after :meth:`~FolderWatcher.start`,
or in the caller's with :meth:`~FolderWatcher.run`) that

1. connects (``connect`` is a factory: the account's :func:`client.transport.imap.connect`)
   and SELECTs the folder read-only;
2. **catches up**: reports every UID above the last one it reported (``UID n:*``), so mail
   that arrived while it was not listening — before the start, during a reconnect, across
   a server restart — is reported once it is connected again. A changed UIDVALIDITY is
   reported as ``NewMail(reset=True)`` (the caller resyncs the folder) and the count
   starts again from the new UIDNEXT;
3. enters IDLE and polls it in slices of ``tick`` seconds (so :meth:`~FolderWatcher.stop`
   is noticed within a tick). ``EXISTS``/``RECENT`` end IDLE and go back to 2. IDLE is
   renewed every ``renew`` seconds (25 minutes: servers may drop an IDLE after 30,
   RFC 2177 asks clients to re-issue it within 29); a renewal also catches up;
4. on a lost connection (``BYE``, EOF, timeout, refused connection while the server is
   down) closes the session, waits ``backoff.delay(attempt)`` and goes back to 1. Failures
   a retry cannot fix — the password is refused (:class:`AuthenticationFailed`), TLS
   cannot be verified (:class:`TlsRequired`) — end the loop with :attr:`error` set.

Every failure is also handed to ``on_error`` (for an "offline, retrying" hint).
``on_new`` is called from the watcher's thread (a Qt app marshals it to the GUI thread);
the last reported UID advances only when ``on_new`` returns, so a callback that raises
gets the same UIDs again after the next change. Time (``clock``), waiting (``sleep``,
by default the stop event's wait, so a stop cuts a backoff short) and jitter (``rng``)
are parameters. Nothing about messages is logged but counts and UIDs.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from client.errors import AuthenticationFailed, ConnectionFailed, TlsRequired, TransportError
from client.transport import backoff
from client.transport.imap import ImapSession

__all__ = ["RENEW", "TICK", "FolderWatcher", "NewMail"]

log = logging.getLogger(__name__)

#: seconds between IDLE renewals (below the 29 minutes of RFC 2177)
RENEW = 25 * 60.0
#: seconds per IDLE poll slice: the longest a stop request waits
TICK = 1.0
#: the longest wait between reconnection attempts
MAX_WAIT = 5 * 60.0
_FATAL = (AuthenticationFailed, TlsRequired)
_NEW = {b"EXISTS", b"RECENT"}


@dataclass(frozen=True)
class NewMail:
    """UIDs that appeared in ``folder`` (ascending), or ``reset``: UIDVALIDITY changed."""

    folder: str
    uidvalidity: int
    uids: tuple[int, ...]
    reset: bool = False


class FolderWatcher:
    """Watch one folder for new mail until :meth:`stop`. See the module docstring."""

    def __init__(
        self,
        connect: Callable[[], ImapSession],
        folder: str,
        on_new: Callable[[NewMail], None],
        *,
        since_uid: int | None = None,
        uidvalidity: int | None = None,
        on_error: Callable[[TransportError], None] | None = None,
        renew: float = RENEW,
        tick: float = TICK,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] | None = None,
        rng: Callable[[], float] = random.random,
        base: float = backoff.BASE,
        cap: float = MAX_WAIT,
    ) -> None:
        """``since_uid``/``uidvalidity``: report UIDs >= ``since_uid`` if the folder still
        has this UIDVALIDITY (the cache's UIDNEXT); without them, mail newer than the
        first connection."""
        self.folder = folder
        self._connect = connect
        self._on_new = on_new
        self._on_error = on_error
        self.renew = renew
        self.tick = tick
        self.clock = clock
        self.stop_event = threading.Event()
        self.sleep: Callable[[float], object] = sleep or self.stop_event.wait
        self.rng = rng
        self.base = base
        self.cap = cap
        self.uidvalidity = uidvalidity
        self.last_uid: int | None = since_uid - 1 if since_uid is not None else None
        #: "idle", "connecting", "waiting" (backoff), "stopped" or "failed"
        self.status = "stopped"
        self.error: TransportError | None = None
        self.reconnects = 0
        #: IDLE commands issued (renewals and re-entries after new mail included)
        self.idles = 0
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ control
    def start(self) -> FolderWatcher:
        """Run the loop in a daemon thread; returns at once."""
        if self._thread is not None and self._thread.is_alive():
            return self
        self.stop_event.clear()
        self._thread = threading.Thread(
            target=self.run, name=f"imap-watch-{self.folder}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end (within one ``tick``) and wait for its thread."""
        self.stop_event.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def __enter__(self) -> FolderWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        """The watch loop, in the calling thread, until :meth:`stop` or a fatal error."""
        attempt = 0
        self.error = None
        while not self.stop_event.is_set():
            session: ImapSession | None = None
            self.status = "connecting"
            try:
                session = self._connect()
                self._select(session)
                attempt = 0  # connected and caught up: the next failure starts afresh
                self._watch(session)
            except TransportError as exc:
                self._report_error(exc)
                if isinstance(exc, _FATAL):
                    self.error = exc
                    self.status = "failed"
                    return
                attempt += 1
                self.reconnects += 1
                wait = backoff.delay(attempt, base=self.base, cap=self.cap, rng=self.rng)
                log.info(
                    "IMAP watch of a folder lost (%s); reconnecting in %.1fs",
                    type(exc).__name__,
                    wait,
                )
                self.status = "waiting"
                if session is not None:
                    _close(session)
                    session = None
                self.sleep(wait)
            finally:
                if session is not None:
                    _close(session)
        self.status = "stopped"

    def _report_error(self, exc: TransportError) -> None:
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:  # a broken UI hook must not stop the watcher
                log.exception("the watcher's on_error callback failed")

    def _select(self, s: ImapSession) -> None:
        status = s.select(self.folder, readonly=True)
        if self.uidvalidity is not None and status.uidvalidity != self.uidvalidity:
            self._deliver(NewMail(self.folder, status.uidvalidity, (), reset=True))
            self.last_uid = None
        self.uidvalidity = status.uidvalidity
        if self.last_uid is None:
            self.last_uid = max(status.uidnext - 1, 0)
        self._catch_up(s)

    def _catch_up(self, s: ImapSession) -> None:
        assert self.last_uid is not None and self.uidvalidity is not None
        fresh = tuple(s.uids_from(self.last_uid + 1))
        if fresh and self._deliver(NewMail(self.folder, self.uidvalidity, fresh)):
            self.last_uid = fresh[-1]

    def _deliver(self, news: NewMail) -> bool:
        log.debug("new mail in a watched folder: %d message(s)", len(news.uids))
        try:
            self._on_new(news)
        except Exception:
            log.exception("the watcher's on_new callback failed; it gets these again")
            return False
        return True

    def _watch(self, s: ImapSession) -> None:
        """IDLE until stopped; returns on stop, raises TransportError when the link is lost."""
        while not self.stop_event.is_set():
            s.idle_start()
            self.idles += 1
            self.status = "idle"
            renew_at = self.clock() + self.renew
            responses: list[tuple[Any, ...]] = []
            while not self.stop_event.is_set():
                left = renew_at - self.clock()
                if left <= 0:
                    break  # renew: leave IDLE, catch up, enter it again
                slice_ = min(self.tick, left)
                t0 = self.clock()
                responses = s.idle_poll(slice_)
                if any(r[:1] == (b"BYE",) for r in responses):
                    raise ConnectionFailed(f"{s.host} closed the connection")
                if any(len(r) > 1 and r[1] in _NEW for r in responses):
                    break
                if not responses and self.clock() - t0 < slice_ / 2:
                    break  # woke early with nothing: EOF? idle_end below tells
            s.idle_end()  # raises on a dead connection
            if not self.stop_event.is_set():
                self._catch_up(s)


def _close(s: ImapSession) -> None:
    with contextlib.suppress(Exception):
        s.close()
