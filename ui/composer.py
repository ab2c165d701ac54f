"""The composer (first version): To/Cc/Subject/body, attachments, and the protection control.

Theory of operation
-------------------
The protection control has three levels, raised with one click (TLS → Signed →
Encrypted). For each recipient the window shows how they would be reached at that level.
All of that comes from one small adapter, :class:`Reachability`, which today asks
:meth:`Session.policy_key_status` (the keystore's ``recipient_keys``) and protects a
trial copy with :meth:`Session.message_encrypt` / :meth:`Session.message_sign`; the
policy planner (:meth:`Session.policy_plan`, with the scanner's PHI findings) replaces it
later without the window changing. Sending is not wired yet (no transport in the app).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from client.errors import SealmailError
from client.mailbox import build_plain
from client.services import Session
from ui.i18n import tr
from ui.workers import Funnel

__all__ = ["LEVELS", "ComposerWindow", "Reach", "Reachability"]

CTX = "Composer"
LEVELS = ("tls", "signed", "encrypted")


@dataclass(frozen=True)
class Reach:
    address: str
    how: str  # "S/MIME", "OpenPGP", "S/MIME or OpenPGP", "TLS", or "" = cannot be reached
    reasons: tuple[str, ...] = ()

    @property
    def reachable(self) -> bool:
        return bool(self.how)


class Reachability:
    """The one adapter between the composer and the services (the planner replaces it)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def recipients(
        self, addresses: Sequence[str], level: str, *, sender: str | None, now: datetime
    ) -> list[Reach]:
        status = self.session.policy_key_status(addresses, sender=sender, now=now)
        out = []
        for addr in addresses:
            found = status.recipients.get(addr.strip().lower())
            if level == "tls":
                out.append(Reach(addr, "TLS"))
                continue
            if level == "signed":
                # a signature reaches everyone; it proves the sender, it hides nothing
                out.append(Reach(addr, "signed, readable by anyone on the way"))
                continue
            methods = [m for m, ok in (("S/MIME", found and found.smime),
                                       ("OpenPGP", found and found.pgp)) if ok]  # fmt: skip
            out.append(Reach(addr, " or ".join(methods), tuple(found.reasons) if found else ()))
        return out

    def trial(
        self, raw: bytes, addresses: Sequence[str], level: str, *, sender: str, now: datetime
    ) -> bytes:
        """Protect a trial copy exactly as sending would (nothing leaves the machine)."""
        if level == "encrypted":
            return self.session.message_encrypt(
                raw, to=addresses, sender=sender, sign=True, now=now, rng=os.urandom
            )
        if level == "signed":
            return self.session.message_sign(
                raw, sender=sender, method="auto", now=now, rng=os.urandom
            )
        return raw


class _DropList(QListWidget):
    dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event: Any) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.dropped.emit(paths)


class ComposerWindow(QWidget):
    reach_updated = Signal(list)  # list[Reach]
    trial_done = Signal(object)  # bytes or exception

    def __init__(
        self,
        session: Session,
        funnel: Funnel,
        *,
        sender: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.funnel = funnel
        self.clock = clock
        self.adapter = Reachability(session)
        self.reach: list[Reach] = []
        self.files: list[tuple[str, bytes]] = []
        self.setWindowTitle(tr(CTX, "New message — Sealmail"))
        self.setAccessibleName(tr(CTX, "Message composer"))
        self.sender = QLineEdit(sender, self)
        self.sender.setAccessibleName(tr(CTX, "From"))
        self.to = QLineEdit(self)
        self.to.setAccessibleName(tr(CTX, "To"))
        self.to.setPlaceholderText(tr(CTX, "name@example.org, …"))
        self.cc = QLineEdit(self)
        self.cc.setAccessibleName(tr(CTX, "Cc"))
        self.subject = QLineEdit(self)
        self.subject.setAccessibleName(tr(CTX, "Subject"))
        self.body = QPlainTextEdit(self)
        self.body.setAccessibleName(tr(CTX, "Message text"))
        self.attachments = _DropList(self)
        self.attachments.setAccessibleName(tr(CTX, "Attachments"))
        self.attachments.setMaximumHeight(70)
        self.attachments.dropped.connect(self.add_files)
        attach = QPushButton(tr(CTX, "Attach…"), self)
        attach.setAccessibleName(tr(CTX, "Attach files"))
        attach.clicked.connect(self._attach_dialog)

        # protection control: one click raises it
        self.level_group = QButtonGroup(self)
        levels = QHBoxLayout()
        levels.addWidget(QLabel(tr(CTX, "Protection:"), self))
        self.level_buttons: dict[str, QRadioButton] = {}
        for i, (level, text) in enumerate(
            zip(LEVELS, (tr(CTX, "TLS"), tr(CTX, "Signed"), tr(CTX, "Encrypted")), strict=True)
        ):
            button = QRadioButton(text, self)
            button.setAccessibleName(tr(CTX, "Protection level {text}").format(text=text))
            self.level_group.addButton(button, i)
            self.level_buttons[level] = button
            levels.addWidget(button)
        self.raise_button = QPushButton(tr(CTX, "Raise protection"), self)
        self.raise_button.setAccessibleName(tr(CTX, "Raise protection one level"))
        self.raise_button.clicked.connect(self.raise_level)
        levels.addWidget(self.raise_button)
        self.check_button = QPushButton(tr(CTX, "Check protection"), self)
        self.check_button.setAccessibleName(tr(CTX, "Protect a trial copy now"))
        self.check_button.clicked.connect(self.check)
        levels.addWidget(self.check_button)
        levels.addStretch(1)
        self.level_buttons["encrypted"].setChecked(True)
        self.level_group.idToggled.connect(lambda _i, on: on and self.update_reach())

        self.reach_list = QListWidget(self)
        self.reach_list.setAccessibleName(tr(CTX, "How each recipient will be reached"))
        self.reach_list.setMaximumHeight(90)
        self.result = QLabel(self)
        self.result.setWordWrap(True)
        self.result.setAccessibleName(tr(CTX, "Protection check result"))

        form = QFormLayout()
        form.addRow(tr(CTX, "From:"), self.sender)
        form.addRow(tr(CTX, "To:"), self.to)
        form.addRow(tr(CTX, "Cc:"), self.cc)
        form.addRow(tr(CTX, "Subject:"), self.subject)
        files_row = QHBoxLayout()
        files_row.addWidget(QLabel(tr(CTX, "Attachments\n(drop files here):"), self))
        files_row.addWidget(self.attachments, 1)
        files_row.addWidget(attach)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(levels)
        layout.addWidget(self.reach_list)
        layout.addWidget(self.result)
        layout.addWidget(self.body, 1)
        layout.addLayout(files_row)
        self.resize(820, 640)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(300)
        self._debounce.timeout.connect(self.update_reach)
        self.to.textChanged.connect(lambda _t: self._debounce.start())
        self.cc.textChanged.connect(lambda _t: self._debounce.start())

    # -- state
    @property
    def level(self) -> str:
        return LEVELS[max(0, self.level_group.checkedId())]

    def set_level(self, level: str) -> None:
        self.level_buttons[level].setChecked(True)

    def raise_level(self) -> None:
        i = LEVELS.index(self.level)
        if i + 1 < len(LEVELS):
            self.set_level(LEVELS[i + 1])

    def recipients(self) -> list[str]:
        return [a for _, a in getaddresses([self.to.text(), self.cc.text()]) if a]

    def add_files(self, paths: Sequence[str]) -> None:
        for path in paths:
            p = Path(path)
            self.funnel.submit(
                "save-file",  # reading a file the user chose: same limit as saving one
                p.read_bytes,
                on_success=lambda data, name=p.name: self._attached(name, data),
            )

    def _attached(self, name: str, data: bytes) -> None:
        self.files.append((name, data))
        self.attachments.addItem(f"{name} ({len(data)} bytes)")

    def _attach_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, tr(CTX, "Attach files"))
        self.add_files(paths)

    # -- reachability
    def update_reach(self) -> None:
        addresses, level = self.recipients(), self.level
        sender, now, adapter = self.sender.text().strip() or None, self.clock(), self.adapter
        self.funnel.submit(
            "reachability",
            lambda: adapter.recipients(addresses, level, sender=sender, now=now),
            on_success=self._show_reach,
            on_failure=lambda exc: self.result.setText(str(exc)),
        )

    def _show_reach(self, reach: list[Reach]) -> None:
        self.reach = reach
        self.reach_list.clear()
        for r in reach:
            if r.reachable:
                text = tr(CTX, "{address}: {how}").format(address=r.address, how=r.how)
                colour = "#1b6e2d" if self.level == "encrypted" else "#34506e"
            else:
                text = tr(
                    CTX, "{address}: cannot be reached securely — import a key or use an envelope"
                ).format(address=r.address)
                colour = "#a1130f"
            item = QListWidgetItem(text)
            item.setForeground(QColor(colour))
            self.reach_list.addItem(item)
        self.reach_updated.emit(reach)

    def build(self) -> bytes:
        return build_plain(
            sender=self.sender.text().strip(),
            to=[a for _, a in getaddresses([self.to.text()]) if a],
            cc=[a for _, a in getaddresses([self.cc.text()]) if a],
            subject=self.subject.text(),
            body=self.body.toPlainText() + "\n",
            date=self.clock(),
            attachments=[(n, "application/octet-stream", d) for n, d in self.files],
        )

    def check(self) -> None:
        try:
            raw = self.build()
        except (ValueError, SealmailError) as exc:
            self.result.setText(str(exc))
            return
        addresses, level, now = self.recipients(), self.level, self.clock()
        sender, adapter = self.sender.text().strip(), self.adapter

        def done(value: object) -> None:
            if isinstance(value, BaseException):
                hint = getattr(value, "hint", "")
                self.result.setText(
                    tr(CTX, "Cannot protect this message: {what} {hint}").format(
                        what=value, hint=hint
                    )
                )
            else:
                self.result.setText(tr(CTX, "Ready: the message can be protected as shown."))
            self.trial_done.emit(value)

        self.funnel.submit(
            "reachability",
            lambda: adapter.trial(raw, addresses, level, sender=sender, now=now),
            on_success=done,
            on_failure=done,
        )
