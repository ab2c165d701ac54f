"""The IDLE watcher against a real Dovecot, including a real server restart during IDLE.

The watcher's backoff waits go through a gate the test opens, so the test knows when the
watcher is disconnected and delivers mail exactly then: that mail must still be reported
(caught up by UID after the reconnect), once, and IDLE must work again afterwards.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from client.errors import AuthenticationFailed, ConnectionFailed, TransportError
from client.transport import backoff
from client.transport.imap import ImapSession, connect
from client.transport.watch import FolderWatcher, NewMail
from tests.servers.rig import MailRig

BOB = "bob@example.test"
WAIT = 60.0  # the longest any step may take before the test gives up


def _message(n: int) -> bytes:
    return f"Subject: watch {n}\r\nMessage-ID: <watch-{n}@example.test>\r\n\r\nbody\r\n".encode()


def _factory(rig: MailRig, password: str | None = None) -> Callable[[], ImapSession]:
    return lambda: connect(
        "127.0.0.1",
        rig.imaps_port,
        security="tls",
        username=BOB,
        password=password or rig.password(BOB),
        ca_file=str(rig.ca_file),
        timeout=10,
    )


def _until(cond: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


class _Gate:
    """An injectable ``sleep``: records each backoff wait and blocks until released."""

    def __init__(self) -> None:
        self.calls: queue.Queue[float] = queue.Queue()
        self._release = threading.Semaphore(0)

    def __call__(self, seconds: float) -> None:
        self.calls.put(seconds)
        assert self._release.acquire(timeout=WAIT), "the test never released the backoff"

    def release(self) -> None:
        self._release.release()


def _refuses(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except OSError:
        return True


def test_watcher_reports_new_mail_across_a_server_restart(fresh_rig: MailRig) -> None:
    rig = fresh_rig
    news: queue.Queue[NewMail] = queue.Queue()
    errors: list[TransportError] = []
    gate = _Gate()
    rig.deliver(BOB, _message(0))  # before the watcher starts: not "new"
    w = FolderWatcher(
        _factory(rig),
        "INBOX",
        news.put,
        on_error=errors.append,
        sleep=gate,
        rng=lambda: 0.5,
        base=2.0,
        tick=0.2,
        renew=1.0,
    )
    with w:
        _until(lambda: w.status == "idle", "the first IDLE")
        rig.deliver(BOB, _message(1))
        assert news.get(timeout=WAIT) == NewMail("INBOX", w.uidvalidity or 0, (2,))

        # renewal: IDLE is re-issued every `renew` seconds and still reports mail
        first = w.idles
        _until(lambda: w.idles >= first + 2, "two IDLE renewals")
        rig.deliver(BOB, _message(2))
        assert news.get(timeout=WAIT).uids == (3,)

        def while_down() -> None:
            # the watcher lost its connection and waits for its first retry
            assert gate.calls.get(timeout=WAIT) == backoff.delay(1, base=2.0, rng=lambda: 0.5)
            assert isinstance(errors[-1], ConnectionFailed) and w.status == "waiting"
            _until(lambda: _refuses(rig.imaps_port), "the listener to close")
            gate.release()  # retry while nothing listens: refused, so a longer wait
            assert gate.calls.get(timeout=WAIT) == backoff.delay(2, base=2.0, rng=lambda: 0.5)
            assert len(errors) == 2 and errors[-1].temporary

        rig.dovecot.restart(while_down=while_down)
        # the server is back, the watcher is still waiting: mail arrives now
        rig.deliver(BOB, _message(3))
        rig.deliver(BOB, _message(4))
        assert news.empty()
        gate.release()
        assert news.get(timeout=WAIT).uids == (4, 5)  # caught up after the reconnect
        _until(lambda: w.status == "idle", "IDLE after the reconnect")
        rig.deliver(BOB, _message(5))
        assert news.get(timeout=WAIT).uids == (6,)
        assert w.reconnects == 2
    assert not w.running and w.status == "stopped" and w.error is None
    assert news.empty() and gate.calls.empty()


def test_watcher_stops_on_a_refused_password_and_resets_on_uidvalidity(
    fresh_rig: MailRig,
) -> None:
    rig = fresh_rig
    gate = _Gate()
    errors: list[TransportError] = []
    w = FolderWatcher(
        _factory(rig, password="not-the-password"),
        "INBOX",
        lambda n: None,
        on_error=errors.append,
        sleep=gate,
    )
    w.run()  # in this thread: returns at the first fatal error, without a retry
    assert w.status == "failed" and isinstance(w.error, AuthenticationFailed)
    assert [type(e) for e in errors] == [AuthenticationFailed] and gate.calls.empty()

    # a cache that knew another UIDVALIDITY gets a reset, then mail from the new UIDNEXT
    news: queue.Queue[NewMail] = queue.Queue()
    with FolderWatcher(_factory(rig), "INBOX", news.put, since_uid=1, uidvalidity=1, tick=0.2):
        reset = news.get(timeout=WAIT)
        assert reset.reset and reset.uids == () and reset.uidvalidity != 1
        rig.deliver(BOB, _message(9))
        assert news.get(timeout=WAIT) == NewMail("INBOX", reset.uidvalidity, (1,))


def _imap_processes(master: int) -> list[int]:
    """Dovecot's imap processes (one per logged-in session) under ``master``, from /proc."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                comm, rest = stat.split(" (", 1)[1].rsplit(") ", 1)
                if comm == "imap" and int(rest.split()[1]) == master:
                    out.append(int(entry.name))
    return out


def test_watcher_reconnects_when_the_connection_dies_without_bye(fresh_rig: MailRig) -> None:
    """The server's process is SIGKILLed: no BYE, the socket just ends (imapclient's
    idle_check swallows that EOF; the watcher must still notice and reconnect)."""
    rig = fresh_rig
    news: queue.Queue[NewMail] = queue.Queue()
    errors: list[TransportError] = []
    gate = _Gate()
    assert rig.dovecot._proc is not None
    master = rig.dovecot._proc.pid
    with FolderWatcher(
        _factory(rig), "INBOX", news.put, on_error=errors.append, sleep=gate, tick=0.2
    ) as w:
        _until(lambda: w.status == "idle", "the first IDLE")
        (victim,) = _imap_processes(master)
        os.kill(victim, signal.SIGKILL)
        gate.calls.get(timeout=WAIT)  # it noticed, and waits to reconnect
        assert [type(e) for e in errors] == [ConnectionFailed]
        rig.deliver(BOB, _message(1))  # arrives while the watcher is away
        gate.release()
        assert news.get(timeout=WAIT).uids == (1,)
        _until(lambda: w.status == "idle", "IDLE after the reconnect")
        rig.deliver(BOB, _message(2))
        assert news.get(timeout=WAIT).uids == (2,)


def test_session_watch_folder_starts_from_the_cache(mail_rig: MailRig, tmp_path: Path) -> None:
    """``Session.watch_folder`` reports mail the last sync has not seen, then new mail."""
    from client.services import Session
    from client.transport.accounts import Account
    from keystore.store import Keystore

    user = "carol@example.test"
    folder = f"Watch{uuid.uuid4().hex[:6]}"
    s = Session(Keystore.open(tmp_path / "p", passphrase="test profile passphrase"))
    try:
        s.account_add(
            Account(
                email=user,
                imap_host="127.0.0.1",
                imap_port=mail_rig.imaps_port,
                imap_security="tls",
                smtp_host="127.0.0.1",
                smtp_port=mail_rig.smtp_port,
                smtp_security="starttls",
                username=user,
                ca_file=str(mail_rig.ca_file),
            ),
            mail_rig.password(user).encode(),
        )
        with s.account_imap(s.accounts().get()) as imap:
            imap.create_folder(folder)
            imap.append(folder, _message(1))
            s.sync()  # the cache knows UID 1
            imap.append(folder, _message(2))  # arrives while nothing watches
        news: queue.Queue[NewMail] = queue.Queue()
        with s.watch_folder(news.put, folder=folder) as w:
            assert news.get(timeout=WAIT).uids == (2,)
            _until(lambda: w.status == "idle", "IDLE")
            with s.account_imap(s.accounts().get()) as imap:
                imap.append(folder, _message(3))
            assert news.get(timeout=WAIT).uids == (3,)
        assert news.empty() and not w.running
    finally:
        s.close()
