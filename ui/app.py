"""``sealmail-gui``: the desktop app's entry point.

Usage::

    sealmail-gui [--profile DIR] [--demo] [--screenshot FILE.png] [--screenshot-dir DIR] [FILE]

* ``FILE`` (``.p7m .pgp .gpg .asc .eml .html``) opens the envelope opener, no account needed.
* ``--demo`` builds (once) Alice's and Bob's demo keys and a demo mailbox made by the real
  services, under ``DIR/demo`` with ``--profile`` or in a temporary directory otherwise,
  and opens the app as Bob.
* ``--screenshot FILE.png`` shows the main window, waits until the mailbox is listed, a
  protected message is selected and every message has been opened, saves a PNG of the
  window and exits. ``--screenshot-dir`` saves one PNG per demo message plus the key
  manager, the composer and the envelope opener (for reviewers).
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
    p.add_argument("file", nargs="?", metavar="FILE", help="an encrypted file to open")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
        window.status.setText(i18n.tr("App", "Preparing the demo mailbox…"))

        def build_demo() -> Any:
            from ui import demo

            return demo.build(root)

        def built(data: Any) -> None:
            from client.mailbox import LocalMailbox
            from ui import demo

            window.attach(demo.open_profile_session(data.profile), LocalMailbox(data.mailbox))
            if args.file:
                window.open_envelope_path(args.file)

        funnel.submit("build-demo", build_demo, on_success=built, on_failure=fail)
    else:
        from client.mailbox import LocalMailbox
        from client.services import Session

        try:
            session = Session.open(args.profile)
        except Exception as exc:  # no usable profile: say why, in a window
            fail(exc)
            return 1
        if args.file:  # double-clicked file: the opener alone, no account needed
            from ui.envelope import EnvelopeWindow

            opener = EnvelopeWindow(session, funnel)
            opener.open_path(args.file)
            opener.installEventFilter(first_paint)
            opener.show()
            rc = app.exec()
            funnel.wait_idle(10_000)
            session.close()
            return rc
        window = MainWindow(None, None, funnel)
        window.attach(session, LocalMailbox(session.store.profile.path / "mail"))

    window.installEventFilter(first_paint)
    window.show()

    if args.screenshot or args.screenshot_dir:
        from ui import shots

        QTimer.singleShot(120_000, lambda: (exit_code.update(value=3), app.quit()))
        shots.when_ready(window, funnel, args.screenshot, args.screenshot_dir, app.quit)

    rc = app.exec()
    funnel.wait_idle(10_000)
    if first_paint.at is not None and os.environ.get("SEALMAIL_TIMING"):
        print(f"cold start to first paint: {first_paint.at * 1000:.0f} ms", file=sys.stderr)
    for path in cleanup:
        shutil.rmtree(path, ignore_errors=True)
    return exit_code["value"] or rc


if __name__ == "__main__":
    raise SystemExit(main())
