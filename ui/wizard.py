"""File > Add account…: address and password, autoconfiguration, editable servers.

Theory of operation
-------------------
The user types the address and the password and presses "Find settings": the worker runs
:meth:`client.services.Session.account_discover` (the same autoconfiguration as
``sealmail account add --auto``: autoconfig XML over verified HTTPS, then verified TLS
probes of well-known host names). The result fills the server fields, which stay editable.

Security is chosen from two entries only, implicit TLS and STARTTLS, both with a verified
certificate: a password is never sent in the clear, whatever a server or document offers.
When the configuration found is weaker than verified TLS (an offer without TLS), a red
warning names what is weak and the account cannot be saved until the user ticks the
consent box; it is then stored as STARTTLS, which the transport requires before LOGIN.

"Save" stores the account and its password through the profile's secret store
(:meth:`Session.account_add`), in the worker; :attr:`AccountWizard.account_added` fires.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ui.i18n import tr
from ui.workers import Funnel

if TYPE_CHECKING:
    from client.services import Session
    from client.transport.autoconfig import AutoconfigSources, Discovered

__all__ = ["AccountWizard"]

CTX = "AccountWizard"
#: (value stored in the account, text shown): nothing weaker than verified TLS is offered
SECURITY = (
    ("tls", "TLS (SSL), certificate verified"),
    ("starttls", "STARTTLS, certificate verified"),
)


class _Server(QGroupBox):
    def __init__(self, title: str, what: str, parent: QWidget) -> None:
        super().__init__(title, parent)
        self.setAccessibleName(title)
        self.host = QLineEdit(self)
        self.host.setAccessibleName(tr(CTX, "{what} server").format(what=what))
        self.host.setPlaceholderText(tr(CTX, "host name"))
        self.port = QSpinBox(self)
        self.port.setRange(1, 65535)
        self.port.setAccessibleName(tr(CTX, "{what} port").format(what=what))
        self.port.lineEdit().setAccessibleName(self.port.accessibleName())
        self.security = QComboBox(self)
        self.security.setAccessibleName(tr(CTX, "{what} security").format(what=what))
        for value, text in SECURITY:
            self.security.addItem(tr(CTX, text), value)
        row = QHBoxLayout()
        row.addWidget(self.host, 3)
        row.addWidget(QLabel(tr(CTX, "Port:"), self))
        row.addWidget(self.port)
        form = QFormLayout(self)
        form.addRow(tr(CTX, "Server:"), row)
        form.addRow(tr(CTX, "Security:"), self.security)

    def set(self, host: str, port: int, security: str) -> None:
        self.host.setText(host)
        self.port.setValue(port)
        # an offer without TLS becomes STARTTLS (required before the password is sent)
        self.security.setCurrentIndex(0 if security == "tls" else 1)

    def value(self) -> str:
        return str(self.security.currentData())


class AccountWizard(QDialog):
    account_added = Signal(object)  # client.transport.accounts.Account
    discovered = Signal(object)  # Discovered, or the exception

    def __init__(
        self,
        session: Session,
        funnel: Funnel,
        parent: QWidget | None = None,
        *,
        sources: Callable[[str, str | None], AutoconfigSources | None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.funnel = funnel
        self.sources = sources
        self.found: Discovered | None = None
        self.setWindowTitle(tr(CTX, "Add a mail account"))
        self.setAccessibleName(tr(CTX, "Add a mail account"))

        intro = QLabel(
            tr(CTX, "Enter your e-mail address and password. Sealmail looks up your provider's "
               "servers; check them before saving."),
            self,
        )  # fmt: skip
        intro.setWordWrap(True)
        intro.setAccessibleName(tr(CTX, "Introduction"))
        self.address = QLineEdit(self)
        self.address.setAccessibleName(tr(CTX, "E-mail address"))
        self.address.setPlaceholderText("name@clinic.example")
        self.password = QLineEdit(self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName(tr(CTX, "Password"))
        self.find_button = QPushButton(tr(CTX, "Find settings"), self)
        self.find_button.setAccessibleName(tr(CTX, "Find the server settings"))
        self.find_button.setDefault(True)
        self.find_button.clicked.connect(self.find_settings)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.status.setAccessibleName(tr(CTX, "Status"))
        top = QFormLayout()
        top.addRow(tr(CTX, "E-mail address:"), self.address)
        top.addRow(tr(CTX, "Password:"), self.password)
        find_row = QHBoxLayout()
        find_row.addWidget(self.find_button)
        find_row.addWidget(self.status, 1)
        top.addRow("", find_row)

        self.imap = _Server(tr(CTX, "Incoming mail (IMAP)"), "IMAP", self)
        self.smtp = _Server(tr(CTX, "Outgoing mail (SMTP submission)"), "SMTP", self)
        self.imap.set("", 993, "tls")
        self.smtp.set("", 465, "tls")
        self.username = QLineEdit(self)
        self.username.setAccessibleName(tr(CTX, "User name"))
        self.username.setPlaceholderText(tr(CTX, "the e-mail address, unless told otherwise"))
        self.ca_file = QLineEdit(self)
        self.ca_file.setAccessibleName(tr(CTX, "Trusted CA file"))
        self.ca_file.setPlaceholderText(tr(CTX, "optional: trust only this CA (PEM)"))
        browse = QPushButton(tr(CTX, "Browse…"), self)
        browse.setAccessibleName(tr(CTX, "Choose the CA file"))
        browse.clicked.connect(self._browse)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_file, 1)
        ca_row.addWidget(browse)
        more = QFormLayout()
        more.addRow(tr(CTX, "User name:"), self.username)
        more.addRow(tr(CTX, "CA file:"), ca_row)

        self.warning = QFrame(self)
        self.warning.setAccessibleName(tr(CTX, "Security warning"))
        self.warning.setObjectName("securityWarning")
        self.warning.setStyleSheet(
            "#securityWarning { background: #fde8e7; border: 2px solid #a1130f;"
            " border-radius: 3px; }"
        )
        self.warning_text = QLabel(self.warning)
        self.warning_text.setWordWrap(True)
        self.warning_text.setAccessibleName(tr(CTX, "Security warning"))
        self.warning_text.setStyleSheet("QLabel { color: #6b0c09; }")
        self.consent = QCheckBox(
            tr(CTX, "I understand the risk and want to use these servers anyway"), self.warning
        )
        self.consent.setAccessibleName(tr(CTX, "Consent to weaker security"))
        bold = self.consent.font()
        bold.setBold(True)
        self.consent.setFont(bold)
        self.consent.toggled.connect(self._update)
        box = QVBoxLayout(self.warning)
        box.addWidget(self.warning_text)
        box.addWidget(self.consent)
        self.warning.hide()

        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton(
            tr(CTX, "Save account"), QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.save_button.setAccessibleName(tr(CTX, "Save the account"))
        cancel = self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        cancel.setAccessibleName(tr(CTX, "Cancel"))
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(top)
        layout.addWidget(self.imap)
        layout.addWidget(self.smtp)
        layout.addLayout(more)
        layout.addWidget(self.warning)
        layout.addWidget(self.buttons)
        for w in (self.address, self.password, self.imap.host, self.smtp.host):
            w.textChanged.connect(self._update)
        self.setMinimumWidth(560)
        self._update()

    # -- discovery
    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr(CTX, "CA certificate"), "", "PEM (*.pem)")
        if path:
            self.ca_file.setText(path)

    def find_settings(self) -> None:
        email = self.address.text().strip()
        ca = self.ca_file.text().strip() or None
        sources = self.sources(email, ca) if self.sources else None
        if sources is None and ca:
            from client.transport.autoconfig import AutoconfigSources

            sources = AutoconfigSources(ca_file=ca)
        self.find_button.setEnabled(False)
        self.status.setText(tr(CTX, "Looking up the servers for {email}…").format(email=email))
        session = self.session
        self.funnel.submit(
            "autoconfig",
            lambda: session.account_discover(email, sources),
            on_success=self._found,
            on_failure=self._not_found,
        )

    def _found(self, found: Discovered) -> None:
        self.found = found
        self.find_button.setEnabled(True)
        self.imap.set(found.imap.host, found.imap.port, found.imap.security)
        self.smtp.set(found.smtp.host, found.smtp.port, found.smtp.security)
        self.username.setText(found.imap.username)
        self.status.setText(tr(CTX, "Found at {source}. Check the servers below.").format(
            source=found.source
        ))  # fmt: skip
        self.consent.setChecked(False)
        if found.weaknesses:
            self.warning_text.setText(
                "<b>"
                + tr(CTX, "Warning: these servers are not protected by verified TLS.")
                + "</b><br>"
                + "<br>".join(found.weaknesses)
                + "<br>"
                + tr(CTX, "Sealmail will still require STARTTLS with a verified certificate "
                     "before it sends your password, and will not connect otherwise. Ask "
                     "your IT department or provider for the secure settings if you can.")
            )  # fmt: skip
            self.warning.show()
        else:
            self.warning.hide()
        self._update()
        self.discovered.emit(found)

    def _not_found(self, exc: BaseException) -> None:
        self.found = None
        self.find_button.setEnabled(True)
        self.warning.hide()
        self.status.setText(
            tr(CTX, "No settings found ({error}). Enter the servers yourself.").format(error=exc)
        )
        self._update()
        self.discovered.emit(exc)

    # -- saving
    @property
    def needs_consent(self) -> bool:
        return bool(self.found is not None and self.found.weaknesses)

    def _update(self, *_: Any) -> None:
        ready = all(
            w.text().strip() for w in (self.address, self.password, self.imap.host, self.smtp.host)
        )
        self.save_button.setEnabled(ready and (not self.needs_consent or self.consent.isChecked()))

    def account(self) -> Any:
        from client.transport.accounts import Account

        email = self.address.text().strip()
        return Account(
            email=email,
            imap_host=self.imap.host.text().strip(),
            imap_port=self.imap.port.value(),
            imap_security=self.imap.value(),  # type: ignore[arg-type]
            smtp_host=self.smtp.host.text().strip(),
            smtp_port=self.smtp.port.value(),
            smtp_security=self.smtp.value(),  # type: ignore[arg-type]
            username=self.username.text().strip() or email,
            ca_file=self.ca_file.text().strip() or None,
        )

    def save(self) -> None:
        if not self.save_button.isEnabled():
            return
        account = self.account()
        password = self.password.text().encode("utf-8")
        self.password.clear()  # the secret store keeps it; the dialog does not
        session = self.session
        self.save_button.setEnabled(False)
        self.funnel.submit(
            "account-add",
            lambda: session.account_add(account, password),
            on_success=self._saved,
            on_failure=self._save_failed,
        )

    def _saved(self, account: Any) -> None:
        self.account_added.emit(account)
        self.accept()

    def _save_failed(self, exc: BaseException) -> None:
        hint = getattr(exc, "hint", "")
        self.status.setText(f"{exc} {hint}".strip())
        self._update()
