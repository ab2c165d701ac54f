"""The key manager: own identities and contacts' keys and certificates, with their status.

Theory of operation
-------------------
The table lists :meth:`Session.keys_list` (refreshed after every change). Status is a
plain word derived from the :class:`keystore.store.KeyInfo` flags at ``clock()``:
revoked, expired, expires soon (30 days), untrusted (discovered and never confirmed, or
too weak for the policy), else valid. Import (file dialog or drag-and-drop of files),
generate and export run on the worker funnel; a PKCS#12 file asks for its password on the
GUI thread only after the first attempt said it needs one. Nothing is parsed here.

A warning line at the top names own keys that expired or expire within 30 days. An own
OpenPGP key is revoked after a confirmation, and only once the user chose where to save
the revocation certificate (revoke and save are one funnel job). "Trust a CA…" makes the
selected CA certificate a trust anchor, or imports one from a file as an anchor
(:meth:`Session.keys_import_ca` refuses files without a CA). The identity bundle for a
second device is exported with a passphrase asked twice, and imported with it. Dialogs
are attributes (``confirm``, ``ask_passphrase``, ``ask_new_passphrase``, ``ask_save_path``)
so tests can answer them.
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

from client.errors import BadPassword, UsageError
from client.mailbox import save_bytes
from client.services import Session
from keystore.store import KeyInfo
from ui.fileopen import ask_paths, read_files
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


def name_buttons(box: QDialogButtonBox) -> None:
    """Accessible names for a dialog's standard buttons (OK, Cancel)."""
    names = {
        QDialogButtonBox.StandardButton.Ok: tr(CTX, "OK"),
        QDialogButtonBox.StandardButton.Cancel: tr(CTX, "Cancel"),
    }
    for which, name in names.items():
        button = box.button(which)
        if button is not None:
            button.setAccessibleName(name)


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
        name_buttons(buttons)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class NewPassphraseDialog(QDialog):
    """A new passphrase, typed twice; OK only when both match and it is long enough."""

    MIN_LENGTH = 8

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.first = QLineEdit(self)
        self.first.setEchoMode(QLineEdit.EchoMode.Password)
        self.first.setAccessibleName(tr(CTX, "Passphrase"))
        self.second = QLineEdit(self)
        self.second.setEchoMode(QLineEdit.EchoMode.Password)
        self.second.setAccessibleName(tr(CTX, "Passphrase again"))
        self.problem = QLabel(self)
        self.problem.setAccessibleName(tr(CTX, "Passphrase problem"))
        form = QFormLayout(self)
        form.addRow(
            QLabel(tr(CTX, "The file holds your secret keys. Choose a passphrase you will "
                           "type on the other device; it is not stored anywhere."), self)
        )  # fmt: skip
        form.addRow(tr(CTX, "Passphrase:"), self.first)
        form.addRow(tr(CTX, "Again:"), self.second)
        form.addRow(self.problem)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        name_buttons(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        for edit in (self.first, self.second):
            edit.textChanged.connect(self._check)
        self._check()

    def _check(self) -> None:
        a, b = self.first.text(), self.second.text()
        problem = ""
        if len(a) < self.MIN_LENGTH:
            problem = tr(CTX, "At least {n} characters.").format(n=self.MIN_LENGTH)
        elif a != b:
            problem = tr(CTX, "The two passphrases differ.")
        self.problem.setText(problem)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)


class KeyManager(QWidget):
    changed = Signal()
    done = Signal(str, object)  # operation name, result or exception
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
        self.warning = QLabel(self)
        self.warning.setWordWrap(True)
        self.warning.setAccessibleName(tr(CTX, "Expiry warning"))
        self.warning.setStyleSheet(
            "QLabel { background: #fff4d6; color: #5c3d00; border-left: 4px solid #c98a00;"
            " padding: 6px; font-weight: bold; }"
        )
        self.warning.hide()
        self.buttons: dict[str, QPushButton] = {}
        buttons = QHBoxLayout()
        more = QHBoxLayout()
        for row, key, text, name, slot in (
            (buttons, "import", tr(CTX, "Import…"),
             tr(CTX, "Import keys or certificates from a file"), self.import_dialog),
            (buttons, "generate", tr(CTX, "Generate…"),
             tr(CTX, "Generate a new key or certificate"), self.generate_dialog),
            (buttons, "export", tr(CTX, "Export…"),
             tr(CTX, "Export the selected public key or certificate"), self.export_selected),
            (buttons, "revoke", tr(CTX, "Revoke…"),
             tr(CTX, "Revoke the selected own key and save the revocation"),
             self.revoke_selected),
            (buttons, "trust", tr(CTX, "Trust a CA…"),
             tr(CTX, "Trust the selected certificate authority, or import one to trust"),
             self.trust_ca),
            (more, "export-identity", tr(CTX, "Export identity for another device…"),
             tr(CTX, "Export all your own keys, protected by a passphrase"),
             self.export_identity),
            (more, "import-identity", tr(CTX, "Import identity from another device…"),
             tr(CTX, "Import your own keys from an identity file"), self.import_identity),
        ):  # fmt: skip
            button = QPushButton(text, self)
            button.setAccessibleName(name)
            button.setToolTip(name)
            button.clicked.connect(lambda _checked=False, f=slot: f())
            row.addWidget(button)
            self.buttons[key] = button
        buttons.addStretch(1)
        more.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.warning)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        layout.addLayout(more)
        self.resize(980, 460)
        #: injectable for tests
        self.ask_passphrase: Callable[[str], str | None] = self._ask_passphrase
        self.ask_new_passphrase: Callable[[str], str | None] = self._ask_new_passphrase
        self.confirm: Callable[[str, str], bool] = self._confirm
        self.ask_save_path: Callable[[str, str], str | None] = self._ask_save_path
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self._selection_changed()
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
        self._show_warning(now)
        self._selection_changed()
        self.changed.emit()

    def _show_warning(self, now: datetime) -> None:
        lines = []
        for info in self.keys:
            if not info.secret or info.revoked or info.expires is None:
                continue
            who = ", ".join(info.emails) or info.label
            kind = tr(CTX, "OpenPGP key") if info.kind == "pgp" else tr(CTX, "certificate")
            if info.expires <= now:
                lines.append(tr(CTX, "Your {kind} for {who} has expired ({date}).").format(
                    kind=kind, who=who, date=info.expires.strftime("%Y-%m-%d")))  # fmt: skip
            elif info.expires - now <= SOON:
                days = max(1, (info.expires - now).days)
                lines.append(tr(CTX, "Your {kind} for {who} expires in {days} days ({date}).")
                             .format(kind=kind, who=who, days=days,
                                     date=info.expires.strftime("%Y-%m-%d")))  # fmt: skip
        if lines:
            lines.append(tr(CTX, "Renew or replace these, or people cannot send you "
                                 "encrypted mail."))  # fmt: skip
            self.warning.setText("\n".join(lines))
            self.warning.show()
        else:
            self.warning.hide()

    def _selection_changed(self) -> None:
        info = self.selected()
        self.buttons["export"].setEnabled(info is not None)
        self.buttons["revoke"].setEnabled(
            info is not None and info.secret and info.kind == "pgp" and not info.revoked
            and info.origin != "gnupg"
        )  # fmt: skip

    def _finished(self, name: str) -> Callable[[Any], None]:
        def done(value: Any) -> None:
            if isinstance(value, BaseException):
                self.error(value)
            else:
                self.refresh()
            self.done.emit(name, value)

        return done

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

    def _ask_new_passphrase(self, title: str) -> str | None:
        dialog = NewPassphraseDialog(title, self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        return dialog.first.text()

    def _confirm(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(
            self, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )  # fmt: skip
        return answer == QMessageBox.StandardButton.Yes

    def _ask_save_path(self, title: str, default: str) -> str | None:
        path, _ = QFileDialog.getSaveFileName(self, title, default)
        return path or None

    def import_dialog(self) -> None:
        self.import_files(ask_paths(self, tr(CTX, "Import keys or certificates"), "keys"))

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
        path = self.ask_save_path(tr(CTX, "Export"), default)
        if not path:
            return
        session = self.session
        self.funnel.submit(
            "keys-export",
            lambda: save_bytes(path, session.keys_export(info.fingerprint)),
            on_failure=self.error,
        )

    # -- revoke
    def revoke_selected(self) -> None:
        info = self.selected()
        if info is None:
            return
        if not (info.secret and info.kind == "pgp"):
            self.error(UsageError(
                tr(CTX, "Only your own OpenPGP keys can be revoked here."),
                hint=tr(CTX, "A certificate is revoked by the authority that issued it."),
            ))  # fmt: skip
            return
        who = ", ".join(info.emails) or info.fingerprint
        if not self.confirm(
            tr(CTX, "Revoke key"),
            tr(CTX, "Revoke your OpenPGP key for {who}?\n\nPeople will no longer be able to "
                    "encrypt to it once they receive the revocation. This cannot be undone.")
            .format(who=who),
        ):  # fmt: skip
            return
        path = self.ask_save_path(
            tr(CTX, "Save the revocation certificate"), f"{info.fingerprint[:16]}-revocation.asc"
        )
        if not path:
            return  # nothing revoked without a place for the revocation
        session, fpr = self.session, info.fingerprint
        self.funnel.submit(
            "keys-revoke",
            lambda: save_bytes(path, session.keys_revoke(fpr)),
            on_success=self._finished("revoke"),
            on_failure=self._finished("revoke"),
        )

    # -- trust a CA
    def trust_ca(self) -> None:
        info = self.selected()
        if info is not None and info.is_ca and not info.trust_anchor:
            name = info.label or info.fingerprint
            if self.confirm(
                tr(CTX, "Trust a certificate authority"),
                tr(CTX, "Trust {name} to vouch for people's certificates?\n\nOnly do this "
                        "for a CA your organisation told you to use.").format(name=name),
            ):  # fmt: skip
                session, fpr = self.session, info.fingerprint
                self.funnel.submit(
                    "keys-trust",
                    lambda: session.keys_trust_ca(fpr),
                    on_success=self._finished("trust"),
                    on_failure=self._finished("trust"),
                )
            return
        self.import_ca_files(ask_paths(self, tr(CTX, "Trust a certificate authority"), "ca"))

    def import_ca_files(self, paths: list[str]) -> None:
        session = self.session

        def got(_name: str, data: bytes) -> None:
            self.funnel.submit(
                "keys-trust",
                lambda: session.keys_import_ca(data),
                on_success=self._finished("trust"),
                on_failure=self._finished("trust"),
            )

        read_files(self.funnel, paths, got, self._finished("trust"))

    # -- the identity bundle for a second device
    def export_identity(self) -> None:
        secret = self.ask_new_passphrase(tr(CTX, "Passphrase for the identity file"))
        if not secret:
            return
        path = self.ask_save_path(tr(CTX, "Save the identity file"), "sealmail-identity.bin")
        if not path:
            return
        session, now, data = self.session, self.clock(), secret.encode("utf-8")
        self.funnel.submit(
            "keys-identity",
            lambda: save_bytes(path, session.keys_export_identity(data, now=now)),
            on_success=self._finished("export-identity"),
            on_failure=self._finished("export-identity"),
        )

    def import_identity(self, paths: list[str] | None = None) -> None:
        if paths is None:
            paths = ask_paths(self, tr(CTX, "Import an identity file"), "identity", multiple=False)
        if not paths:
            return

        def got(name: str, data: bytes) -> None:
            secret = self.ask_passphrase(name)
            if secret is None:
                return
            session, given = self.session, secret.encode("utf-8")
            self.funnel.submit(
                "keys-identity",
                lambda: session.keys_import_identity(data, given),
                on_success=self._finished("import-identity"),
                on_failure=self._finished("import-identity"),
            )

        read_files(self.funnel, paths[:1], got, self._finished("import-identity"))
