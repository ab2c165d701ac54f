"""The envelope opener: a small window for one encrypted file, no account needed.

Theory of operation
-------------------
:meth:`EnvelopeWindow.open_path` / :meth:`open_data` hand the bytes to
:func:`client.fileopen.open_file` on the worker funnel. A password is never asked for up
front: the first attempt runs with a callback that returns nothing and records that it was
asked; if the file turned out to need a password, the window asks (on the GUI thread) and
tries again, and again after a wrong password. The result is shown with the reader's
widgets: a security banner (from the report for S/MIME and OpenPGP messages, else a
sentence about the envelope), the text and the files, each saved only with "Save…".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QInputDialog, QLineEdit, QVBoxLayout, QWidget

from client.errors import BadPassword, UsageError
from client.fileopen import FileView, open_file
from client.mime.parse import OpenedMessage
from client.services import Session
from ui.banner import BannerSpec, Level
from ui.fileopen import ask_paths, read_files
from ui.i18n import tr
from ui.reader import ReaderView
from ui.workers import Funnel

__all__ = ["EnvelopeWindow"]

CTX = "EnvelopeWindow"

_KIND_TEXT = {
    "sealmail-envelope": "Sealmail envelope",
    "sealmail-reply": "Sealmail reply envelope",
    "gpg-symmetric": "password-encrypted OpenPGP file",
    "cms-password": "password-encrypted S/MIME (CMS) file",
    "pgp": "OpenPGP-encrypted file",
}


class EnvelopeWindow(QWidget):
    opened = Signal(object)  # FileView
    failed = Signal(object)

    def __init__(
        self,
        session: Session,
        funnel: Funnel,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.funnel = funnel
        self.clock = clock
        self.setWindowTitle(tr(CTX, "Sealmail — open encrypted file"))
        self.setAccessibleName(tr(CTX, "Envelope opener"))
        self.reader = ReaderView(funnel, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.reader)
        self.resize(760, 560)
        self.name = ""
        self.data = b""
        self.result: FileView | None = None
        #: injectable for tests: ask for a password (None = cancelled)
        self.ask_password: Callable[[str], str | None] = self._ask_password

    def _ask_password(self, prompt: str) -> str | None:
        text, ok = QInputDialog.getText(
            self, tr(CTX, "Password"), prompt, QLineEdit.EchoMode.Password
        )
        return text if ok else None

    def open_path(self, path: str) -> None:
        p = Path(path)
        self.setWindowTitle(tr(CTX, "{name} — Sealmail").format(name=p.name))
        self.reader.show_loading("", p.name)
        read_files(self.funnel, [path], self.open_data, self._failed, operation="open-envelope")

    def open_dialog(self) -> bool:
        """Ask for an encrypted file (the shared open dialog) and open it; False if cancelled."""
        paths = ask_paths(self, tr(CTX, "Open encrypted file"), "envelope", multiple=False)
        if paths:
            self.open_path(paths[0])
        return bool(paths)

    def open_data(self, name: str, data: bytes, password: bytes | None = None) -> None:
        self.name, self.data = name, data
        self.setWindowTitle(tr(CTX, "{name} — Sealmail").format(name=name))
        self.reader.show_loading("", name)
        asked = {"yes": False}
        session, now = self.session, self.clock()

        def supply() -> bytes | None:
            asked["yes"] = True
            return password

        def work() -> FileView:
            return open_file(session, data, filename=name, password=supply, now=now)

        def failed(exc: BaseException) -> None:
            if asked["yes"] and isinstance(exc, (BadPassword, UsageError)):
                prompt = (
                    tr(CTX, "The password was wrong. Enter the password for {name}:")
                    if password
                    else tr(CTX, "Enter the password for {name}:")
                ).format(name=name)
                given = self.ask_password(prompt)
                if given:
                    self.open_data(name, data, given.encode("utf-8"))
                    return
            self._failed(exc)

        self.funnel.submit("open-envelope", work, on_success=self._show, on_failure=failed)

    def _failed(self, exc: BaseException) -> None:
        self.reader.show_error(exc, raw_headers={"subject": self.name})
        self.failed.emit(exc)

    def _show(self, result: FileView) -> None:
        self.result = result
        if result.report is not None and result.message is not None:
            self.reader.show_opened(
                OpenedMessage(result.message, None, result.report),  # type: ignore[arg-type]
                result.view,
            )
        else:
            self.reader.clear()
            details = result.details
            self.reader.from_label.setText(str(details.get("from") or ""))
            self.reader.to_label.setText(str(details.get("to") or ""))
            self.reader.subject_label.setText(str(details.get("subject") or self.name))
            created = details.get("created")
            if isinstance(created, str):  # the envelope carries ISO 8601 text
                try:
                    created = datetime.fromisoformat(created)
                except ValueError:
                    pass
            self.reader.date_label.setText(
                created.strftime("%Y-%m-%d %H:%M") if isinstance(created, datetime)
                else str(created or "")
            )  # fmt: skip
            what = tr(CTX, _KIND_TEXT.get(result.kind, "encrypted file"))
            self.reader.banner.set_spec(
                BannerSpec(
                    Level.INFO,
                    tr(CTX, "Opened {what} with the password").format(what=what),
                    (
                        tr(
                            CTX,
                            "Anyone who knows the password could have made it: check that "
                            "you expected it from this sender.",
                        ),
                    ),
                )
            )
            self.reader.body.setPlainText(result.view.text or tr(CTX, "(no message text)"))
            self.reader._set_files(list(result.view.attachments))
        self.opened.emit(result)
