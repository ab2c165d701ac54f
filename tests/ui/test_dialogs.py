"""About box, account wizard and settings: against the real CLI, HTTPS server and mail rig."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QAbstractButton, QAbstractItemView, QLineEdit, QWidget

from client.mailbox import ImapMailSource, LocalMailbox
from client.services import Session
from client.transport.autoconfig import AutoconfigSources, autoconfig_urls
from tests.servers.https import HttpsController, TestCA
from tests.servers.rig import MailRig
from ui import demo
from ui.about import AboutDialog
from ui.mainwindow import MainWindow
from ui.settings import SettingsDialog
from ui.wizard import AccountWizard
from ui.workers import Funnel

REPO = Path(__file__).resolve().parents[2]
EMAIL = "carol@example.test"
HOSTS = ["autoconfig.example.test", "example.test"]


def unnamed(widget: QWidget) -> list[str]:
    return [
        w.objectName() or type(w).__name__
        for w in widget.findChildren(QAbstractButton)
        + widget.findChildren(QAbstractItemView)
        + widget.findChildren(QLineEdit)
        if w.isVisible() and not w.accessibleName() and type(w).__name__ != "QScrollBar"
    ]


@pytest.fixture
def fresh_session(demo_copy: Path) -> Iterator[Session]:
    """Bob's demo profile before any account is configured (a private copy)."""
    s = demo.open_profile_session(demo_copy / "bob")
    try:
        yield s
    finally:
        s.close()


# -- About
def test_about_shows_the_version_sealmail_prints(
    qtbot, session: Session, mailbox: LocalMailbox, funnel: Funnel
) -> None:
    cli = Path(sys.executable).parent / "sealmail"
    printed = subprocess.run(
        [str(cli), "--version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()[-1]
    window = MainWindow(session, mailbox, funnel)
    qtbot.addWidget(window)
    window.show()
    window.about_action.trigger()
    about = next(w for w in window._secondary if isinstance(w, AboutDialog))
    assert about.version == printed
    assert f"Sealmail {printed}" in about.findChildren(type(about.values["Qt"]))[0].text()
    assert about.values["Profile"].text() == str(session.store.profile.path)
    for caption in ("Qt", "PySide6", "pysequoia (OpenPGP)", "OpenSSL (S/MIME)", "OpenSSL (TLS)"):
        assert about.values[caption].text() not in ("", "not installed", "unknown"), caption
    assert "OpenSSL" in about.values["OpenSSL (TLS)"].text()
    assert unnamed(about) == []


# -- account wizard
@pytest.fixture
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def autoconfig(tmp_path: Path, ca: TestCA) -> Iterator[HttpsController]:
    cert, key = ca.issue(HOSTS, tmp_path)
    ctl = HttpsController(cert, key).start()
    yield ctl
    ctl.stop()


def _config(imap: tuple[str, int, str], smtp: tuple[str, int, str]) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1"><emailProvider id="example.test">
  <incomingServer type="imap"><hostname>{imap[0]}</hostname><port>{imap[1]}</port>
    <socketType>{imap[2]}</socketType><username>%EMAILADDRESS%</username></incomingServer>
  <outgoingServer type="smtp"><hostname>{smtp[0]}</hostname><port>{smtp[1]}</port>
    <socketType>{smtp[2]}</socketType><username>%EMAILADDRESS%</username></outgoingServer>
</emailProvider></clientConfig>""".encode()


def _wizard(qtbot, session: Session, funnel: Funnel, server: HttpsController, ca_file: Path):  # type: ignore[no-untyped-def]
    def sources(_email: str, ca: str | None) -> AutoconfigSources:
        resolve = {h: ("127.0.0.1", server.port) for h in HOSTS}
        return AutoconfigSources(ca_file=ca or str(ca_file), resolve=resolve, probe=False)

    wizard = AccountWizard(session, funnel, sources=sources)
    qtbot.addWidget(wizard)
    wizard.show()
    return wizard


def test_wizard_autoconfigures_and_the_account_logs_in(
    qtbot, mail_rig: MailRig, autoconfig: HttpsController, ca: TestCA, fresh_session: Session,
    funnel: Funnel, tmp_path: Path,
) -> None:  # fmt: skip
    both = tmp_path / "both.pem"  # the autoconfig server's CA and the rig's CA
    both.write_bytes(ca.write_ca(tmp_path / "a.pem").read_bytes() + mail_rig.ca_file.read_bytes())
    host, path = autoconfig_urls(EMAIL)[0]
    autoconfig.content[(host, path)] = (
        200,
        _config(
            ("127.0.0.1", mail_rig.imaps_port, "SSL"), ("127.0.0.1", mail_rig.smtps_port, "SSL")
        ),
    )
    wizard = _wizard(qtbot, fresh_session, funnel, autoconfig, both)
    assert not wizard.save_button.isEnabled()
    wizard.address.setText(EMAIL)
    wizard.password.setText(mail_rig.password(EMAIL))
    wizard.ca_file.setText(str(both))
    with qtbot.waitSignal(wizard.discovered, timeout=60_000) as found:
        wizard.find_button.click()
    assert not isinstance(found.args[0], BaseException), found.args[0]
    assert (wizard.imap.host.text(), wizard.imap.port.value()) == ("127.0.0.1", mail_rig.imaps_port)
    assert wizard.imap.value() == "tls" and wizard.smtp.value() == "tls"
    assert wizard.smtp.port.value() == mail_rig.smtps_port
    assert wizard.warning.isHidden() and wizard.save_button.isEnabled()
    assert "Found at https://autoconfig.example.test/" in wizard.status.text()
    assert unnamed(wizard) == []
    wizard.smtp.port.setValue(mail_rig.smtps_port)  # the fields stay editable
    with qtbot.waitSignal(wizard.account_added, timeout=30_000) as added:
        wizard.save_button.click()
    account = added.args[0]
    assert wizard.password.text() == ""  # the dialog does not keep the password
    (stored,) = fresh_session.account_list()
    assert stored.email == EMAIL and stored.imap_security == "tls"
    assert fresh_session.accounts().password(stored) == mail_rig.password(EMAIL)
    settings = (fresh_session.store.profile.path / "accounts.json").read_text()
    assert mail_rig.password(EMAIL) not in settings  # the secret store holds it, not the book
    source = ImapMailSource(fresh_session, account.email)  # a real login with what was saved
    try:
        assert "INBOX" in [f.name for f in source.folders()]
    finally:
        source.close()


def test_wizard_warns_and_needs_consent_below_verified_tls(
    qtbot, autoconfig: HttpsController, ca: TestCA, fresh_session: Session, funnel: Funnel,
    tmp_path: Path,
) -> None:  # fmt: skip
    host, path = autoconfig_urls(EMAIL)[0]
    autoconfig.content[(host, path)] = (
        200,
        _config(("imap.example.test", 143, "plain"), ("smtp.example.test", 587, "plain")),
    )
    wizard = _wizard(qtbot, fresh_session, funnel, autoconfig, ca.write_ca(tmp_path / "ca.pem"))
    wizard.address.setText(EMAIL)
    wizard.password.setText("secret-pw")
    with qtbot.waitSignal(wizard.discovered, timeout=60_000):
        wizard.find_button.click()
    assert wizard.warning.isVisible()
    assert "not protected by verified TLS" in wizard.warning_text.text()
    assert "imap server imap.example.test:143 is offered only without TLS" in (
        wizard.warning_text.text()
    )
    # a plaintext offer is never stored as plaintext: STARTTLS is required before LOGIN
    assert wizard.imap.value() == "starttls" and wizard.smtp.value() == "starttls"
    assert [wizard.imap.security.itemData(i) for i in range(wizard.imap.security.count())] == [
        "tls",
        "starttls",
    ]
    assert not wizard.save_button.isEnabled()
    wizard.save()  # refused without consent
    qtbot.wait(200)
    assert fresh_session.account_list() == []
    wizard.consent.setChecked(True)
    assert wizard.save_button.isEnabled()
    with qtbot.waitSignal(wizard.account_added, timeout=30_000):
        wizard.save_button.click()
    (stored,) = fresh_session.account_list()
    assert (stored.imap_host, stored.imap_port) == ("imap.example.test", 143)
    assert stored.imap_security == "starttls" and stored.smtp_security == "starttls"


def test_wizard_is_offered_from_the_file_menu(
    qtbot, fresh_session: Session, mailbox: LocalMailbox, funnel: Funnel
) -> None:
    window = MainWindow(fresh_session, mailbox, funnel)
    qtbot.addWidget(window)
    window.show()
    window.add_account_action.trigger()
    assert any(isinstance(w, AccountWizard) and w.isVisible() for w in window._secondary)


# -- settings
def test_settings_show_the_managed_policy_read_only_and_switch_gnupg(
    qtbot, fresh_session: Session, funnel: Funnel, gpg, tmp_path: Path
) -> None:
    policy = json.loads((REPO / "packaging/policy/example-clinic.json").read_text())
    policy["user_may"]["use_envelopes"] = False
    managed = tmp_path / "policy.json"
    managed.write_text(json.dumps(policy))
    lookup = {"platform": "win32", "registry": lambda _key, _value: str(managed), "env": {}}
    dialog = SettingsDialog(fresh_session, funnel, lookup=lookup)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.loaded, timeout=30_000) as loaded:
        dialog.show()
    state = loaded.args[0]
    assert state.policy_source == "managed" and state.policy_path == str(managed)
    assert "Set by your IT department" in dialog.policy_origin.text()
    assert str(managed) in dialog.policy_origin.text()
    assert "cannot be changed here" in dialog.policy_origin.text()
    assert "Example Family Clinic" in dialog.policy_summary.text()
    assert dialog.detectors.rowCount() == 8
    assert dialog.detectors.item(0, 0).text() == "us-ssn"
    assert dialog.detectors.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
    # what the policy does not permit is shown, disabled, with the reason
    assert not dialog.envelopes.isEnabled() and not dialog.envelopes.isChecked()
    assert "does not allow" in dialog.envelopes.toolTip()
    assert dialog.subject_tags.isEnabled() and dialog.default_level.isEnabled()
    assert unnamed(dialog) == []

    # GnuPG backend on, with the test's GnuPG home; a preference changed
    assert not dialog.use_gnupg.isChecked() and not dialog.gnupg_home.isEnabled()
    gpg.run("--quick-generate-key", "dora@example.test", "ed25519", "sign", "never")
    dialog.use_gnupg.setChecked(True)
    dialog.gnupg_home.setText(str(gpg.home))
    dialog.default_level.setCurrentIndex(dialog.default_level.findData("signed"))
    with qtbot.waitSignal(dialog.saved, timeout=60_000) as saved:
        dialog.save_button.click()
    assert not isinstance(saved.args[0], BaseException), saved.args[0]
    assert fresh_session.keys_gnupg(None)["gnupg_home"] == str(gpg.home)
    assert fresh_session.keys_gnupg(None)["keys"] == 1
    prefs = fresh_session.preferences()
    assert prefs["default_level"] == "signed" and "use_envelopes" not in prefs

    again = SettingsDialog(fresh_session, funnel, lookup=lookup)
    qtbot.addWidget(again)
    with qtbot.waitSignal(again.loaded, timeout=30_000):
        again.show()
    assert again.use_gnupg.isChecked() and again.gnupg_home.text() == str(gpg.home)
    assert "1 keys found" in again.gnupg_status.text()
    again.use_gnupg.setChecked(False)
    with qtbot.waitSignal(again.saved, timeout=30_000):
        again.save_button.click()
    assert fresh_session.keys_gnupg(None)["gnupg_home"] is None


def test_settings_without_a_policy_say_the_defaults_apply(
    qtbot, fresh_session: Session, funnel: Funnel, tmp_path: Path
) -> None:
    lookup = {"platform": "linux", "env": {}, "exists": lambda _p: False}
    dialog = SettingsDialog(fresh_session, funnel, lookup=lookup)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.loaded, timeout=30_000) as loaded:
        dialog.show()
    assert loaded.args[0].policy_source == "default"
    assert "No organisation policy is installed" in dialog.policy_origin.text()
    assert "/etc/sealmail/policy.json" in dialog.policy_origin.text()
    assert "built-in defaults" in dialog.policy_summary.text()
