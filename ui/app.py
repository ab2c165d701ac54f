"""``sealmail-gui``: the desktop app's entry point.

Usage::

    sealmail-gui [--profile DIR] [--demo] [--screenshot FILE.png] [--screenshot-dir DIR] [FILE]

* ``FILE`` (``.p7m .pgp .gpg .asc .eml .html``, a path or a ``file:`` URL) opens the envelope
  opener, no account needed.
  A ``mailto:`` URL instead (the desktop's mail handler) opens the composer prefilled with
  its To, Cc, Subject and body (:func:`parse_mailto`).
* ``--demo`` builds (once) Alice's and Bob's demo keys and a demo mailbox made by the real
  services, under ``DIR/demo`` with ``--profile`` or in a temporary directory otherwise,
  starts the embedded mail servers on loopback (:mod:`client.devrig`), delivers the demo
  mail into Bob's INBOX and opens the app as Bob over IMAP. Without Dovecot it shows the
  local demo mailbox instead, with a note saying so. The servers stop when the app exits.
* ``--screenshot FILE.png`` shows the main window, waits until the mailbox is listed, a
  protected message is selected and every message has been opened, saves a PNG of the
  window and exits. ``--screenshot-dir`` saves one PNG per demo message plus the key
  manager, the composer and the envelope opener (for reviewers).
* Without ``--demo`` the profile's first account is opened over IMAP; a profile without an
  account shows the account wizard (:mod:`ui.wizard`) at start.
* ``SEALMAIL_TIMING=1`` prints the time from start to the first paint of the main window.
"""

from __future__ import annotations

import time

_T0 = time.monotonic()  # before Qt is imported: cold start is measured from here

import argparse  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

__all__ = ["main"]

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sealmail-gui", description="Sealmail desktop app")
    p.add_argument("--profile", metavar="DIR", help="profile directory (else SEALMAIL_PROFILE)")
    p.add_argument("--demo", action="store_true", help="open the demo mailbox as Bob")
    p.add_argument("--screenshot", metavar="FILE.png", help="save the main window and exit")
    p.add_argument("--screenshot-dir", metavar="DIR", help="save every view to DIR and exit")
    p.add_argument(
        "file", nargs="?", metavar="FILE", help="an encrypted file to open, or a mailto: URL"
    )
    return p


def parse_mailto(url: str) -> dict[str, str]:
    """An RFC 6068 ``mailto:`` URL as composer fields: ``to``, ``cc``, ``subject``, ``body``.

    Other header fields — ``attach``/``attachment`` in particular, which some programs honour
    and which would let a web page attach local files — are ignored.
    """
    from urllib.parse import unquote

    rest = url.split(":", 1)[1] if ":" in url else url
    path, _, query = rest.partition("?")
    fields = {"to": [unquote(path)] if path else [], "cc": [], "subject": [], "body": []}
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        key = key.lower()
        if key in fields:
            fields[key].append(unquote(value))
    return {
        "to": ", ".join(a for a in fields["to"] if a),
        "cc": ", ".join(a for a in fields["cc"] if a),
        "subject": fields["subject"][0] if fields["subject"] else "",
        "body": "\n".join(fields["body"]).replace("\r\n", "\n"),
    }


def file_argument(arg: str) -> str:
    """A ``file:`` URL as a path (desktops pass URLs to ``Exec=sealmail-gui %u``), else ``arg``."""
    if arg[:5].lower() != "file:":
        return arg
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    parts = urlsplit(arg)
    if parts.netloc not in ("", "localhost"):
        return arg  # a remote file: left for the opener to refuse
    return url2pathname(parts.path)


def _compose(window: Any, fields: dict[str, str]) -> None:
    """Open the main window's composer prefilled from a ``mailto:`` URL."""
    composer = window.new_message()
    if composer is None:
        return
    composer.to.setText(fields["to"])
    composer.cc.setText(fields["cc"])
    composer.subject.setText(fields["subject"])
    composer.body.setPlainText(fields["body"])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    mailto = None
    if args.file and args.file[:7].lower() == "mailto:":
        mailto, args.file = parse_mailto(args.file), None
    elif args.file:
        args.file = file_argument(args.file)
    # pysequoia errors (e.g. every bad signature) capture a Rust backtrace when
    # RUST_BACKTRACE=1, holding the GIL for ~80 ms: the GUI would stall. Panics keep theirs.
    os.environ["RUST_LIB_BACKTRACE"] = "0"
    if (args.screenshot or args.screenshot_dir) and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    logging.basicConfig(level=os.environ.get("SEALMAIL_LOG", "WARNING"))

    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from ui import i18n
    from ui.workers import Funnel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Sealmail")
    app.setOrganizationName("Sealmail")
    i18n.install(app)
    funnel = Funnel(app)
    cleanup: list[Path] = []
    running: list[Any] = []  # demo mail servers, stopped on exit
    sources: list[Any] = []  # mail sources holding connections
    exit_code = {"value": 0}

    class FirstPaint(QObject):
        def __init__(self) -> None:
            super().__init__()
            self.at: float | None = None

        def eventFilter(self, _obj: QObject, event: QEvent) -> bool:
            if self.at is None and event.type() == QEvent.Type.Paint:
                self.at = time.monotonic() - _T0
                if os.environ.get("SEALMAIL_TIMING"):
                    print(f"first paint after {self.at * 1000:.0f} ms", file=sys.stderr)
            return False

    first_paint = FirstPaint()

    def fail(exc: BaseException) -> None:
        QMessageBox.critical(None, "Sealmail", f"{exc}\n\n{getattr(exc, 'hint', '')}".strip())
        exit_code["value"] = 1
        app.quit()

    from ui.mainwindow import MainWindow

    if args.demo:
        if args.profile:
            root = Path(args.profile) / "demo"
        else:
            root = Path(tempfile.mkdtemp(prefix="sealmail-demo-"))
            cleanup.append(root)
        window = MainWindow(None, None, funnel, account="bob@example.org")
        window.status.setText(i18n.tr("App", "Starting the demo mail servers…"))

        def build_demo() -> Any:
            from client import devrig
            from client.mailbox import ImapMailSource, LocalMailbox
            from ui import demo

            data = demo.build(root)
            note, rig = "", None
            missing = devrig.available()
            if missing is None:
                try:
                    rig = demo.start_rig(data)
                    running.append(rig)
                except Exception as exc:  # show the offline mailbox, and say why
                    log.warning("demo servers failed to start", exc_info=True)
                    note = f"The demo mail servers did not start ({exc})."
            else:
                note = f"The demo mail servers are not available: {missing}"
            session = demo.open_profile_session(data.profile)
            if rig is not None:
                return session, ImapMailSource(session, demo.BOB), rig, ""
            note += " Showing the offline demo mailbox (sending is not possible)."
            return session, LocalMailbox(data.mailbox), None, note

        def built(result: Any) -> None:
            session, source, rig, note = result
            if rig is not None:
                window.set_note(
                    i18n.tr(
                        "App",
                        "Demo: Bob's mailbox on the embedded mail servers (IMAP 127.0.0.1:{imap},"
                        " submission 127.0.0.1:{smtp})",
                    ).format(imap=rig.imaps_port, smtp=rig.smtps_port),
                    warning=False,
                )
            else:
                window.set_note(note, warning=True)
            sources.append(source)
            window.attach(session, source)
            if args.file:
                window.open_envelope_path(args.file)
            if mailto is not None:
                _compose(window, mailto)

        funnel.submit("build-demo", build_demo, on_success=built, on_failure=fail)
    elif args.file:  # double-clicked file: the opener alone, no account needed
        from client.services import Session

        try:
            session = Session.open(args.profile)
        except Exception as exc:  # no usable profile: say why, in a window
            fail(exc)
            return 1
        from ui.envelope import EnvelopeWindow

        opener = EnvelopeWindow(session, funnel)
        opener.open_path(args.file)
        opener.installEventFilter(first_paint)
        opener.show()
        rc = app.exec()
        funnel.wait_idle(10_000)
        session.close()
        return rc
    else:
        # the services load and the profile opens in the worker: first paint does not wait
        window = MainWindow(None, None, funnel)
        window.status.setText(i18n.tr("App", "Opening your profile…"))

        def open_profile() -> Any:
            from client.mailbox import ImapMailSource, LocalMailbox
            from client.services import Session

            session = Session.open(args.profile)
            accounts = session.account_list()
            if accounts:
                return session, ImapMailSource(session, accounts[0].email), accounts[0].email
            return session, LocalMailbox(session.store.profile.path / "mail"), ""

        def profile_opened(result: Any) -> None:
            session, source, email = result
            sources.append(source)
            if email:
                window.account = email
                window.setWindowTitle(f"{window.windowTitle()} — {email}")
            window.attach(session, source)
            if not email and not (args.screenshot or args.screenshot_dir):
                window.add_account()  # no account yet: the wizard, at once
            if mailto is not None:
                _compose(window, mailto)

        funnel.submit("open-session", open_profile, on_success=profile_opened, on_failure=fail)

    window.installEventFilter(first_paint)
    window.show()

    if args.screenshot or args.screenshot_dir:
        from ui import shots

        QTimer.singleShot(120_000, lambda: (exit_code.update(value=3), app.quit()))
        shots.when_ready(window, funnel, args.screenshot, args.screenshot_dir, app.quit)

    rc = app.exec()
    window.stop_watch()  # the new-mail watcher's thread ends before the servers stop
    funnel.wait_idle(10_000)
    if window.source is not None and window.source not in sources:
        sources.append(window.source)  # e.g. the account the wizard added
    for source in sources:
        close = getattr(source, "close", None)
        if close is not None:
            close()
    for rig in running:
        rig.stop()
    if first_paint.at is not None and os.environ.get("SEALMAIL_TIMING"):
        print(f"cold start to first paint: {first_paint.at * 1000:.0f} ms", file=sys.stderr)
    for path in cleanup:
        shutil.rmtree(path, ignore_errors=True)
    return exit_code["value"] or rc


if __name__ == "__main__":
    raise SystemExit(main())
