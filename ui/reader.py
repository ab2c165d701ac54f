"""The reader pane: header, security banner, body and attachments of one opened message.

Theory of operation
-------------------
:meth:`ReaderView.show_opened` receives what the worker produced off the GUI thread: the
:class:`client.mime.parse.OpenedMessage` (its report feeds the banner, nothing else does)
and its :class:`client.mime.render.Readable` (text, sanitised HTML, ``cid:`` images,
attachments). Plain text is shown when it exists; HTML only otherwise, in a
:class:`SafeBrowser` that refuses every resource except the message's own ``cid:`` images
and never follows links. Attachments are listed; "Save…" asks where and writes through
the worker; envelopes open in the envelope window, in memory. Nothing is written silently.
"""

from __future__ import annotations

import email
import email.errors
import email.header
import email.policy
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextDocument
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ui.banner import BannerSpec, SecurityBanner, describe, describe_error
from ui.i18n import tr
from ui.workers import Funnel

if TYPE_CHECKING:
    from client.mime.parse import OpenedMessage
    from client.mime.render import Attachment, Readable

__all__ = ["ReaderView", "SafeBrowser", "human_size"]

CTX = "Reader"


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class SafeBrowser(QTextBrowser):
    """A text view that loads nothing but the message's own ``cid:`` images."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)
        self.images: dict[str, bytes] = {}
        self.refused: list[str] = []

    def loadResource(self, kind: int, url: QUrl | str) -> Any:
        qurl = QUrl(url) if isinstance(url, str) else url
        if qurl.scheme().lower() == "cid":
            data = self.images.get(qurl.path())
            if data is not None and kind == QTextDocument.ResourceType.ImageResource:
                from PySide6.QtGui import QImage

                image = QImage()
                if image.loadFromData(data):
                    return image
        self.refused.append(qurl.toString())
        return None


class ReaderView(QWidget):
    """Header fields, the security banner, the body and the attachment list."""

    open_envelope = Signal(str, bytes)  # name, data

    def __init__(self, funnel: Funnel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.funnel = funnel
        self.setAccessibleName(tr(CTX, "Message reader"))
        self.banner = SecurityBanner(self)
        self.from_label = QLabel(self)
        self.to_label = QLabel(self)
        self.subject_label = QLabel(self)
        self.date_label = QLabel(self)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(2)
        for caption, label, name in (
            (tr(CTX, "From:"), self.from_label, tr(CTX, "Sender")),
            (tr(CTX, "To:"), self.to_label, tr(CTX, "Recipients")),
            (tr(CTX, "Subject:"), self.subject_label, tr(CTX, "Subject")),
            (tr(CTX, "Date:"), self.date_label, tr(CTX, "Date")),
        ):
            label.setAccessibleName(name)
            label.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextSelectableByMouse
                | Qt.TextInteractionFlag.TextSelectableByKeyboard
            )
            form.addRow(caption, label)
        font = self.subject_label.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.subject_label.setFont(font)
        self.body = SafeBrowser(self)
        self.body.setAccessibleName(tr(CTX, "Message text"))
        self.attachments = QListWidget(self)
        self.attachments.setAccessibleName(tr(CTX, "Attachments"))
        self.attachments.setMaximumHeight(90)
        self.save_button = QPushButton(tr(CTX, "Save…"), self)
        self.save_button.setAccessibleName(tr(CTX, "Save the selected attachment"))
        self.open_button = QPushButton(tr(CTX, "Open envelope"), self)
        self.open_button.setAccessibleName(tr(CTX, "Open the selected secure envelope"))
        self.save_button.clicked.connect(self.save_selected)
        self.open_button.clicked.connect(self.open_selected)
        self.attachments.currentRowChanged.connect(self._update_buttons)
        self.attachments.itemActivated.connect(lambda _item: self.open_selected())
        QShortcut(QKeySequence.StandardKey.Save, self, self.save_selected)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        self.attachment_box = QWidget(self)
        box = QVBoxLayout(self.attachment_box)
        box.setContentsMargins(0, 0, 0, 0)
        self.attachment_caption = QLabel(tr(CTX, "Attachments"), self.attachment_box)
        box.addWidget(self.attachment_caption)
        box.addWidget(self.attachments)
        box.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addLayout(form)
        layout.addWidget(self.banner)
        layout.addWidget(self.body, 1)
        layout.addWidget(self.attachment_box)
        self.files: list[Attachment] = []
        #: injectable for tests: ask where to save (returns a path or "")
        self.ask_save_path: Callable[[str], str] = self._ask_save_path
        self.clear()

    # -- states
    def clear(self) -> None:
        self.banner.clear()
        for label in (self.from_label, self.to_label, self.subject_label, self.date_label):
            label.setText("")
        self.body.clear()
        self._set_files([])

    def show_loading(self, sender: str, subject: str) -> None:
        self.clear()
        self.from_label.setText(sender)
        self.subject_label.setText(subject)
        self.body.setPlainText(tr(CTX, "Opening…"))

    def show_note(
        self, sender: str, subject: str, text: str, *, banner: BannerSpec, date: str = ""
    ) -> None:
        """Headers, a banner and a plain note instead of a message (e.g. a draft, which
        the composer opens)."""
        self.clear()
        self.from_label.setText(sender)
        self.subject_label.setText(subject)
        self.date_label.setText(date)
        self.banner.set_spec(banner)
        self.body.setPlainText(text)

    def show_error(self, exc: BaseException, *, raw_headers: dict[str, str] | None = None) -> None:
        self.clear()
        headers = raw_headers or {}
        self.from_label.setText(headers.get("from", ""))
        self.subject_label.setText(headers.get("subject", ""))
        self.banner.set_spec(describe_error(exc))
        self.body.setPlainText(
            tr(CTX, "The content is not shown because the message could not be opened safely.")
        )

    def show_opened(self, opened: OpenedMessage, view: Readable) -> None:
        # the header block only: parsing a 25 MB message here would stall the GUI thread
        head = email.message_from_bytes(_head(opened.message), policy=email.policy.compat32)
        fields = {k.lower(): _decoded(v) for k, v in head.items()}
        self.from_label.setText(fields.get("from", ""))
        self.to_label.setText(", ".join(filter(None, (fields.get("to"), fields.get("cc")))))
        self.subject_label.setText(fields.get("subject", "") or tr(CTX, "(no subject)"))
        self.date_label.setText(fields.get("date", ""))
        spec = describe(opened.report, claimed_from=fields.get("from"))
        envelopes = [a.name for a in view.attachments if a.envelope]
        if envelopes:  # content, not a security claim: say where the protected part is
            spec = replace(
                spec,
                details=(
                    *spec.details,
                    tr(CTX, "{name} is an encrypted envelope: select it below and choose "
                       "“Open envelope”.").format(name=", ".join(envelopes)),
                ),
            )  # fmt: skip
        self.banner.set_spec(spec)
        self.body.images = dict(view.images)
        self.body.refused.clear()
        if view.text is not None:
            self.body.setPlainText(view.text)
        elif view.html is not None:
            self.body.setHtml(view.html)
        else:
            self.body.setPlainText(tr(CTX, "(This message has no text.)"))
        self._set_files(list(view.attachments))

    # -- attachments
    def _set_files(self, files: list[Attachment]) -> None:
        self.files = files
        self.attachments.clear()
        for f in files:
            kind = tr(CTX, " — secure envelope, open it here") if f.envelope else ""
            item = QListWidgetItem(f"{f.name} ({human_size(f.size)}){kind}")
            item.setData(0x0100, f.name)
            self.attachments.addItem(item)
        self.attachment_box.setVisible(bool(files))
        if files:
            self.attachments.setCurrentRow(0)
        self._update_buttons()

    def _update_buttons(self) -> None:
        current = self.selected()
        self.save_button.setEnabled(current is not None)
        self.open_button.setVisible(any(f.envelope for f in self.files))
        self.open_button.setEnabled(bool(current and current.envelope))

    def selected(self) -> Attachment | None:
        row = self.attachments.currentRow()
        return self.files[row] if 0 <= row < len(self.files) else None

    def _ask_save_path(self, name: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, tr(CTX, "Save attachment"), name)
        return path

    def save_selected(self) -> None:
        current = self.selected()
        if current is None:
            return
        path = self.ask_save_path(current.name)
        if not path:
            return
        data = current.data
        from client.mailbox import save_bytes

        self.funnel.submit("save-file", lambda: save_bytes(path, data))

    def open_selected(self) -> None:
        current = self.selected()
        if current is not None and current.envelope:
            self.open_envelope.emit(current.name, current.data)


def _decoded(value: Any) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return str(value)


def _head(raw: bytes) -> bytes:
    """The header block of ``raw`` (up to and including the first empty line)."""
    import re

    end = re.search(rb"\n\r?\n", raw)
    return raw[: end.end()] if end else raw
