"""The key manager: own identities and contacts' keys and certificates, with their status.

Theory of operation
-------------------
The table lists :meth:`Session.keys_list` (refreshed after every change). Status is a
plain word derived from the :class:`keystore.store.KeyInfo` flags at ``clock()``:
revoked, expired, expires soon (30 days), untrusted (discovered and never confirmed, or
too weak for the policy), else valid. Import (file dialog or drag-and-drop of files),
generate and export run on the worker funnel; a PKCS#12 file asks for its password on the
GUI thread only after the first attempt said it needs one. Nothing is parsed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from client.errors import BadPassword
from client.mailbox import save_bytes
from client.services import Session
from keystore.store import KeyInfo
from ui.i18n import tr
from ui.workers import Funnel

__all__ = ["KeyManager", "key_status"]

CTX = "KeyManager"
SOON = timedelta(days=30)

_STATUS_COLOUR = {
    "valid": "#1b6e2d",
    "expires soon": "#8a5a00",
    "untrusted": "#8a5a00",
    "expired": "#a1130f",
    "revoked": "#a1130f",
}


def key_status(info: KeyInfo, now: datetime) -> str:
    """One of: valid, expires soon, expired, revoked, untrusted."""
    if info.revoked:
        return "revoked"
    if info.expires is not None and info.expires <= now:
        return "expired"
    if info.weak or (info.origin == "discovered" and not info.confirmed):
        return "untrusted"
    if info.expires is not None and info.expires - now <= SOON:
        return "expires soon"
    return "valid"


class GenerateDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr(CTX, "Generate a key"))
        self.email = QLineEdit(self)
        self.email.setAccessibleName(tr(CTX, "Email address"))
        self.name = QLineEdit(self)
        self.name.setAccessibleName(tr(CTX, "Name"))
        self.kind = QComboBox(self)
        self.kind.setAccessibleName(tr(CTX, "Kind of key"))
        self.kind.addItem(tr(CTX, "OpenPGP key"), "pgp")
        self.kind.addItem(tr(CTX, "S/MIME certificate (self-signed)"), "smime")
        form = QFormLayout(self)
        form.addRow(tr(CTX, "Email address:"), self.email)
        form.addRow(tr(CTX, "Name:"), self.name)
        form.addRow(tr(CTX, "Kind:"), self.kind)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class KeyManager(QWidget):
    changed = Signal()
    COLUMNS = ("Owner", "Addresses", "Kind", "Status", "Expires", "Fingerprint")

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
        self.keys: list[KeyInfo] = []
        self.setWindowTitle(tr(CTX, "Sealmail — keys and certificates"))
        self.setAccessibleName(tr(CTX, "Key manager"))
        self.setAcceptDrops(True)
        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setAccessibleName(tr(CTX, "Keys and certificates"))
        self.table.setHorizontalHeaderLabels([tr(CTX, c) for c in self.COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        header = self.table.horizontalHeader()
        for i in range(len(self.COLUMNS)):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.hint = QLabel(tr(CTX, "Drop key or certificate files here to import them."), self)
        self.hint.setAccessibleName(tr(CTX, "Hint"))
        buttons = QHBoxLayout()
        for text, name, slot in (
            (tr(CTX, "Import…"), tr(CTX, "Import keys or certificates from a file"),
             self.import_dialog),
            (tr(CTX, "Generate…"), tr(CTX, "Generate a new key or certificate"),
             self.generate_dialog),
            (tr(CTX, "Export…"), tr(CTX, "Export the selected public key or certificate"),
             self.export_selected),
        ):  # fmt: skip
            button = QPushButton(text, self)
            button.setAccessibleName(name)
            button.clicked.connect(slot)
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        self.resize(980, 420)
        #: injectable for tests
        self.ask_passphrase: Callable[[str], str | None] = self._ask_passphrase
        self.refresh()

    # -- listing
    def refresh(self) -> None:
        self.funnel.submit(
            "keys-list", self.session.keys_list, on_success=self._listed, on_failure=self.error
        )

    def _listed(self, keys: Sequence[KeyInfo]) -> None:
        now = self.clock()
        # own identities first, then contacts, each by address
        self.keys = sorted(keys, key=lambda k: (not k.secret, k.emails, k.kind))
        self.table.setRowCount(len(self.keys))
        for row, info in enumerate(self.keys):
            status = key_status(info, now)
            owner = tr(CTX, "You") if info.secret else (
                tr(CTX, "Certificate authority") if info.is_ca else tr(CTX, "Contact")
            )  # fmt: skip
            kind = tr(CTX, "OpenPGP") if info.kind == "pgp" else tr(CTX, "S/MIME")
            expires = info.expires.strftime("%Y-%m-%d") if info.expires else tr(CTX, "never")
            fpr = info.fingerprint
            cells = [owner, ", ".join(info.emails) or info.label, kind, tr(CTX, status), expires,
                     " ".join(fpr[i : i + 4] for i in range(0, min(len(fpr), 40), 4))]  # fmt: skip
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, info.fingerprint)
                if col == 3:
                    item.setForeground(QColor(_STATUS_COLOUR[status]))
                self.table.setItem(row, col, item)
        self.changed.emit()

    def error(self, exc: BaseException) -> None:
        QMessageBox.warning(self, tr(CTX, "Keys"), f"{exc}\n\n{getattr(exc, 'hint', '')}".strip())

    # -- import
    def _ask_passphrase(self, name: str) -> str | None:
        text, ok = QInputDialog.getText(
            self,
            tr(CTX, "Password"),
            tr(CTX, "{name} is protected by a password:").format(name=name),
            QLineEdit.EchoMode.Password,
        )
        return text if ok else None

    def import_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(
            self,
            tr(CTX, "Import keys or certificates"),
            "",
            tr(CTX, "Keys and certificates (*.asc *.gpg *.pgp *.pem *.crt *.cer *.der *.p7b "
                    "*.p7c *.p12 *.pfx);;All files (*)"),
        )  # fmt: skip
        self.import_files(paths)

    def import_files(self, paths: Sequence[str], passphrase: bytes | None = None) -> None:
        for path in paths:
            self._import_one(Path(path), passphrase)

    def _import_one(self, path: Path, passphrase: bytes | None) -> None:
        session, now = self.session, self.clock()

        def work() -> list[KeyInfo]:
            return session.keys_import(path.read_bytes(), passphrase=lambda: passphrase, now=now)

        def failed(exc: BaseException) -> None:
            if isinstance(exc, BadPassword):
                given = self.ask_passphrase(path.name)
                if given is not None:
                    self._import_one(path, given.encode("utf-8"))
                    return
            self.error(exc)

        self.funnel.submit("keys-import", work, on_success=lambda _r: self.refresh(),
                           on_failure=failed)  # fmt: skip

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = [u for u in event.mimeData().urls() if u.isLocalFile()]
        if not urls:
            event.ignore()
            return
        event.acceptProposedAction()
        self.import_files([u.toLocalFile() for u in urls])

    # -- generate / export
    def generate_dialog(self) -> None:
        dialog = GenerateDialog(self)
        if dialog.exec() != QDialog.DialogCode.Accepted or not dialog.email.text().strip():
            return
        self.generate(dialog.email.text().strip(), dialog.name.text().strip() or None,
                      dialog.kind.currentData())  # fmt: skip

    def generate(self, email: str, name: str | None, kind: str) -> None:
        session, now = self.session, self.clock()
        self.funnel.submit(
            "keys-generate",
            lambda: session.keys_generate(email, name=name, kind=kind, now=now),  # type: ignore[arg-type]
            on_success=lambda _r: self.refresh(),
            on_failure=self.error,
        )

    def selected(self) -> KeyInfo | None:
        row = self.table.currentRow()
        return self.keys[row] if 0 <= row < len(self.keys) else None

    def export_selected(self) -> None:
        info = self.selected()
        if info is None:
            return
        suffix = ".asc" if info.kind == "pgp" else ".pem"
        default = (info.emails[0] if info.emails else info.fingerprint[:16]) + suffix
        path, _ = QFileDialog.getSaveFileName(self, tr(CTX, "Export"), default)
        if not path:
            return
        session = self.session
        self.funnel.submit(
            "keys-export",
            lambda: save_bytes(path, session.keys_export(info.fingerprint)),
            on_failure=self.error,
        )
