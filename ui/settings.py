"""Settings (Ctrl+,): the GnuPG backend, the organisation policy (read-only), preferences.

Theory of operation
-------------------
Everything is read in the worker (:func:`load_state`): the GnuPG backend setting
(:meth:`Session.keys_gnupg` with no change), the organisation policy in force
(:meth:`Session.current_org_policy`) and *where it came from*
(:func:`client.store.policyfile.policy_source` / ``policy_path``), and the user's
preferences (:meth:`Session.preferences`).

The policy is shown read-only: its name, levels, methods and detectors. When IT set it
("managed": registry, configuration profile or the system-wide file) the dialog says so and
that it cannot be changed here. A policy that does not validate is shown as an error (the
app then refuses to send: fail closed). Preferences the policy does not permit
(``user_may``) are shown disabled with the reason; the default level offers only levels at
or above the policy's minimum. "Save" writes through the worker.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.i18n import tr
from ui.workers import Funnel

if TYPE_CHECKING:
    from client.policy.orgpolicy import OrgPolicy
    from client.services import Session

__all__ = ["SettingsDialog", "SettingsState", "load_state"]

CTX = "Settings"
LEVEL_NAMES = {
    "tls": "TLS when the server offers it (no end-to-end protection)",
    "tls-required": "TLS required",
    "signed": "Signed",
    "encrypted": "Encrypted",
    "encrypted+signed": "Encrypted and signed",
}


@dataclass
class SettingsState:
    gnupg_home: str | None
    gnupg_keys: int
    policy: OrgPolicy | None
    policy_error: BaseException | None
    policy_source: str  # "managed", "environment" or "default"
    policy_path: str
    preferences: dict[str, Any] = field(default_factory=dict)


def load_state(session: Session, lookup: Mapping[str, Any] | None = None) -> SettingsState:
    """Runs in the worker. ``lookup``: the platform look-ups of
    :mod:`client.store.policyfile` (``platform``, ``registry``, ...; tests inject them)."""
    from client.store.policyfile import load_org_policy, policy_path, policy_source

    lookup = dict(lookup or {})
    gnupg = session.keys_gnupg(None)
    policy: OrgPolicy | None = None
    error: BaseException | None = None
    try:
        if session.org_policy is None and lookup:
            policy = load_org_policy(**lookup)
        else:
            policy = session.current_org_policy()
    except Exception as exc:  # an invalid managed policy: shown, and sending is refused
        error = exc
    source = "session" if session.org_policy is not None else policy_source(**lookup)
    return SettingsState(
        gnupg_home=gnupg["gnupg_home"],
        gnupg_keys=int(gnupg["keys"]),
        policy=policy,
        policy_error=error,
        policy_source=source,
        policy_path=str(policy_path(**lookup)),
        preferences=session.preferences(),
    )


def _default_gnupg_home() -> str:
    return os.environ.get("GNUPGHOME") or os.path.expanduser("~/.gnupg")


class SettingsDialog(QDialog):
    loaded = Signal(object)  # SettingsState
    saved = Signal(object)  # the settings written, or the exception

    def __init__(
        self,
        session: Session,
        funnel: Funnel,
        parent: QWidget | None = None,
        *,
        lookup: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(parent)
        self.lookup = lookup
        self.session = session
        self.funnel = funnel
        self.state: SettingsState | None = None
        self.setWindowTitle(tr(CTX, "Settings"))
        self.setAccessibleName(tr(CTX, "Settings"))

        # -- GnuPG
        gpg_box = QGroupBox(tr(CTX, "OpenPGP keys from GnuPG"), self)
        gpg_box.setAccessibleName(tr(CTX, "OpenPGP keys from GnuPG"))
        self.use_gnupg = QCheckBox(tr(CTX, "Also use the keys in my GnuPG keyring"), gpg_box)
        self.use_gnupg.setAccessibleName(tr(CTX, "Use my GnuPG keyring"))
        self.gnupg_home = QLineEdit(gpg_box)
        self.gnupg_home.setAccessibleName(tr(CTX, "GnuPG home folder"))
        self.gnupg_home.setPlaceholderText(_default_gnupg_home())
        self.browse = QPushButton(tr(CTX, "Browse…"), gpg_box)
        self.browse.setAccessibleName(tr(CTX, "Choose the GnuPG home folder"))
        self.browse.clicked.connect(self._browse)
        self.gnupg_status = QLabel("", gpg_box)
        self.gnupg_status.setAccessibleName(tr(CTX, "GnuPG status"))
        self.gnupg_status.setWordWrap(True)
        home_row = QHBoxLayout()
        home_row.addWidget(self.gnupg_home, 1)
        home_row.addWidget(self.browse)
        gpg_form = QFormLayout(gpg_box)
        gpg_form.addRow(self.use_gnupg)
        gpg_form.addRow(tr(CTX, "GnuPG home:"), home_row)
        gpg_form.addRow(self.gnupg_status)
        self.use_gnupg.toggled.connect(self._gnupg_toggled)

        # -- organisation policy (read-only)
        pol_box = QGroupBox(tr(CTX, "Organisation policy"), self)
        pol_box.setAccessibleName(tr(CTX, "Organisation policy"))
        self.policy_origin = QLabel("", pol_box)
        self.policy_origin.setWordWrap(True)
        self.policy_origin.setAccessibleName(tr(CTX, "Where the policy comes from"))
        self.policy_summary = QLabel("", pol_box)
        self.policy_summary.setWordWrap(True)
        self.policy_summary.setAccessibleName(tr(CTX, "Policy summary"))
        self.detectors = QTableWidget(0, 4, pol_box)
        self.detectors.setAccessibleName(tr(CTX, "Content detectors (read-only)"))
        self.detectors.setHorizontalHeaderLabels(
            [tr(CTX, "Detector"), tr(CTX, "On"), tr(CTX, "Confidence"), tr(CTX, "Level")]
        )
        self.detectors.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.detectors.verticalHeader().hide()
        self.detectors.horizontalHeader().setAccessibleName(tr(CTX, "Detector columns"))
        self.detectors.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents
        )
        self.detectors.horizontalHeader().setStretchLastSection(True)
        rows = self.detectors.fontMetrics().height() + 6
        self.detectors.verticalHeader().setDefaultSectionSize(rows)
        header_h = self.detectors.horizontalHeader().sizeHint().height()
        self.detectors.setMinimumHeight(header_h + 8 * rows + 4)  # all eight detectors
        pol_layout = QVBoxLayout(pol_box)
        pol_layout.addWidget(self.policy_origin)
        pol_layout.addWidget(self.policy_summary)
        pol_layout.addWidget(self.detectors)

        # -- preferences
        pref_box = QGroupBox(tr(CTX, "Your preferences"), self)
        pref_box.setAccessibleName(tr(CTX, "Your preferences"))
        self.default_level = QComboBox(pref_box)
        self.default_level.setAccessibleName(tr(CTX, "Default protection for new messages"))
        self.subject_tags = QCheckBox(
            tr(CTX, "Raise protection when the subject starts with [secure] or [encrypt]"),
            pref_box,
        )
        self.subject_tags.setAccessibleName(tr(CTX, "Use subject tags"))
        self.envelopes = QCheckBox(
            tr(CTX, "Offer password envelopes for recipients without keys"), pref_box
        )
        self.envelopes.setAccessibleName(tr(CTX, "Offer password envelopes"))
        pref_form = QFormLayout(pref_box)
        pref_form.addRow(tr(CTX, "Default protection:"), self.default_level)
        pref_form.addRow(self.subject_tags)
        pref_form.addRow(self.envelopes)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setAccessibleName(tr(CTX, "Save the settings"))
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setAccessibleName(
            tr(CTX, "Cancel")
        )
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self.save_button.setEnabled(False)
        self.error = QLabel("", self)
        self.error.setWordWrap(True)
        self.error.setAccessibleName(tr(CTX, "Error"))
        self.error.setStyleSheet("QLabel { color: #a1130f; }")
        self.error.hide()

        layout = QVBoxLayout(self)
        layout.addWidget(gpg_box)
        layout.addWidget(pol_box, 1)
        layout.addWidget(pref_box)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(620)
        self.load()

    # -- loading
    def load(self) -> None:
        session, lookup = self.session, self.lookup
        self.funnel.submit(
            "settings-load", lambda: load_state(session, lookup), on_success=self._show,
            on_failure=self._failed,
        )  # fmt: skip

    def _failed(self, exc: BaseException) -> None:
        self.error.setText(f"{exc} {getattr(exc, 'hint', '')}".strip())
        self.error.show()
        self.save_button.setEnabled(self.state is not None)
        self.saved.emit(exc)

    def _show(self, state: SettingsState) -> None:
        self.state = state
        self.use_gnupg.setChecked(state.gnupg_home is not None)
        self.gnupg_home.setText(state.gnupg_home or _default_gnupg_home())
        self._gnupg_toggled(self.use_gnupg.isChecked())
        self.gnupg_status.setText(
            tr(CTX, "In use: {n} keys found in {home}.").format(
                n=state.gnupg_keys, home=state.gnupg_home
            )
            if state.gnupg_home
            else tr(CTX, "Not in use: only Sealmail's own keystore is used.")
        )
        self._show_policy(state)
        self._show_preferences(state)
        self.save_button.setEnabled(True)
        self.loaded.emit(state)

    def _show_policy(self, state: SettingsState) -> None:
        origin = {
            "managed": tr(CTX, "<b>Set by your IT department</b>. It cannot be changed here;"
                          " it decides over your preferences.<br>From: {path}"),
            "environment": tr(CTX, "<b>Set by SEALMAIL_POLICY</b>, a test policy on an "
                              "unmanaged machine. It cannot be changed here.<br>From: {path}"),
            "session": tr(CTX, "<b>Set by the running app</b>. It cannot be changed here."),
            "default": tr(CTX, "<b>No organisation policy is installed</b>: the built-in "
                          "defaults apply.<br>IT can install one at {path}"),
        }[state.policy_source].format(path=state.policy_path)  # fmt: skip
        self.policy_origin.setText(origin)
        policy = state.policy
        self.detectors.setRowCount(0)
        if policy is None:
            self.policy_summary.setText(
                "<span style='color:#a1130f'><b>"
                + tr(CTX, "The organisation policy is invalid; sending is refused until IT "
                     "fixes it:")
                + f"</b> {state.policy_error}</span>"
            )  # fmt: skip
            return
        methods = ", ".join(sorted(policy.allowed_methods)) or tr(CTX, "none")
        self.policy_summary.setText(
            tr(CTX, "Policy: {name}<br>Minimum protection: {minimum}<br>Sensitive content: "
               "{sensitive}<br>Methods allowed: {methods}<br>Password envelopes: {env}").format(
                name=policy.name,
                minimum=tr(CTX, LEVEL_NAMES[policy.minimum_level.value]),
                sensitive=tr(CTX, LEVEL_NAMES[policy.sensitive_level.value]),
                methods=methods,
                env=tr(CTX, "allowed") if policy.envelopes_allowed else tr(CTX, "not allowed"),
            )
        )  # fmt: skip
        for name, rule in policy.detectors.items():
            row = self.detectors.rowCount()
            self.detectors.insertRow(row)
            on = tr(CTX, "yes") if rule.enabled else tr(CTX, "no")
            level = tr(CTX, LEVEL_NAMES[rule.level.value])
            for col, text in enumerate((name, on, rule.threshold.value, level)):
                self.detectors.setItem(row, col, QTableWidgetItem(text))

    def _show_preferences(self, state: SettingsState) -> None:
        from client.policy.levels import Level

        prefs, policy = state.preferences, state.policy
        self.default_level.clear()
        minimum = policy.minimum_level if policy else Level.TLS
        for level in Level:
            if level.at_least(minimum):
                self.default_level.addItem(tr(CTX, LEVEL_NAMES[level.value]), level.value)
        wanted = self.default_level.findData(prefs.get("default_level", minimum.value))
        self.default_level.setCurrentIndex(max(wanted, 0))
        self.subject_tags.setChecked(bool(prefs.get("use_subject_tags", True)))
        self.envelopes.setChecked(bool(prefs.get("use_envelopes", True)))
        if policy is not None and policy.subject_tags:  # the tags IT configured
            self.subject_tags.setText(
                tr(CTX, "Raise protection when the subject contains {tags}").format(
                    tags=tr(CTX, " or ").join(policy.subject_tags)
                )
            )
        may = policy.user_may if policy else None
        denied = tr(CTX, "Your organisation's policy does not allow changing this.")
        for widget, allowed in (
            (self.default_level, bool(may and may.raise_level)),
            (self.subject_tags, bool(may and may.use_subject_tags)),
            (
                self.envelopes,
                bool(may and may.use_envelopes and policy and policy.envelopes_allowed),
            ),
        ):
            widget.setEnabled(allowed)
            widget.setToolTip("" if allowed else denied)
        if not self.envelopes.isEnabled():
            self.envelopes.setChecked(False)
        if not self.subject_tags.isEnabled():
            self.subject_tags.setChecked(bool(may and may.use_subject_tags))

    def _gnupg_toggled(self, on: bool) -> None:
        self.gnupg_home.setEnabled(on)
        self.browse.setEnabled(on)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, tr(CTX, "GnuPG home"), self.gnupg_home.text())
        if path:
            self.gnupg_home.setText(path)

    # -- saving
    def values(self) -> tuple[str | None, dict[str, Any]]:
        home = self.gnupg_home.text().strip() if self.use_gnupg.isChecked() else None
        prefs = dict(self.state.preferences if self.state else {})
        if self.default_level.isEnabled():
            prefs["default_level"] = self.default_level.currentData()
        if self.subject_tags.isEnabled():
            prefs["use_subject_tags"] = self.subject_tags.isChecked()
        if self.envelopes.isEnabled():
            prefs["use_envelopes"] = self.envelopes.isChecked()
        return home, prefs

    def save(self) -> None:
        home, prefs = self.values()
        session = self.session
        was = self.state.gnupg_home if self.state else None

        def work() -> dict[str, Any]:
            if home is None:
                gnupg = session.keys_gnupg(None, off=True) if was else session.keys_gnupg(None)
            else:
                gnupg = session.keys_gnupg(home or _default_gnupg_home())
            return {"gnupg": gnupg, "preferences": session.set_preferences(prefs)}

        self.save_button.setEnabled(False)
        self.error.hide()
        self.funnel.submit("settings-save", work, on_success=self._saved, on_failure=self._failed)

    def _saved(self, result: dict[str, Any]) -> None:
        self.saved.emit(result)
        self.accept()
