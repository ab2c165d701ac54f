"""Composer drafts (real Dovecot), Bcc, rich text, completion; key manager status, warning,
revoke, trust a CA, identity bundle; the shared open dialog; accessible names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QLineEdit,
    QListWidget,
    QTableWidget,
    QTextEdit,
    QWidget,
)

from client.devrig.rig import MailRig
from client.drafts import DRAFT_HEADER, DraftNeedsOwnKey, SavedDraft
from client.outgoing import parse_draft
from client.policy.orgpolicy import DEFAULT_POLICY
from client.services import Session
from ui import demo, fileopen
from ui.banner import Level as BannerLevel
from ui.composer import ComposerWindow, Reachability
from ui.envelope import EnvelopeWindow
from ui.keys import GenerateDialog, KeyManager, NewPassphraseDialog
from ui.workers import Funnel

SSN = "536-90-4399"


def _composer(qtbot, session: Session, funnel: Funnel, sender: str = demo.BOB) -> ComposerWindow:
    c = ComposerWindow(
        session, funnel, sender=sender, adapter=Reachability(session, org_policy=DEFAULT_POLICY)
    )
    qtbot.addWidget(c)
    return c


def _server_drafts(rig: MailRig, user: str, draft_id: str) -> list[bytes]:
    c = rig.imap(user)
    try:
        c.select_folder("Drafts", readonly=True)
        uids = c.search(["HEADER", DRAFT_HEADER, draft_id])
        return [bytes(d[b"BODY[]"]) for d in c.fetch(uids, ["BODY.PEEK[]"]).values()]
    finally:
        c.logout()


def _save(qtbot, composer: ComposerWindow, *, shortcut: bool = False) -> object:
    with qtbot.waitSignal(composer.draft_saved, timeout=60_000) as blocker:
        if shortcut:
            composer.save_shortcut.activated.emit()
        else:
            composer.save_button.click()
    return blocker.args[0]


def test_protected_draft_saved_encrypted_reopened_and_removed_after_send(
    qtbot, rig_demo, bob: Session, funnel: Funnel
) -> None:
    _data, rig = rig_demo
    c = _composer(qtbot, bob, funnel)
    c.to.setText(demo.ALICE)
    c.bcc.setText(demo.BOB)
    c.subject.setText("Insurance form, patient 4711")
    c.body.setPlainText(f"SSN for the form: {SSN}")
    saved = _save(qtbot, c, shortcut=True)  # Ctrl+S
    assert isinstance(saved, SavedDraft) and saved.encrypted, saved
    assert c.result.spec is not None and "encrypted to your own key" in c.result.spec.headline
    (stored,) = _server_drafts(rig, demo.BOB, saved.draft_id)
    assert SSN.encode() not in stored and b"patient 4711" not in stored
    assert demo.ALICE.encode() not in stored  # not even who it is for

    c.body.setPlainText(f"SSN for the form: {SSN}\nsecond version")
    again = _save(qtbot, c)
    assert isinstance(again, SavedDraft) and again.draft_id == saved.draft_id
    assert again.replaced == (saved.uid,)
    assert len(_server_drafts(rig, demo.BOB, saved.draft_id)) == 1

    reopened = _composer(qtbot, bob, funnel)
    with qtbot.waitSignal(reopened.draft_loaded, timeout=60_000):
        reopened.open_draft(saved.draft_id)
    assert reopened.to.text() == demo.ALICE and reopened.bcc.text() == demo.BOB
    assert reopened.subject.text() == "Insurance form, patient 4711"
    assert reopened.body.toPlainText().endswith("second version")

    with qtbot.waitSignal(reopened.send_done, timeout=120_000) as sent:
        reopened.send_button.click()
    assert reopened.result.spec.level is BannerLevel.VERIFIED, reopened.result.spec
    funnel.wait_idle(60_000)
    assert _server_drafts(rig, demo.BOB, saved.draft_id) == []  # sent: the draft is gone
    entry = sent.args[0].entry
    assert entry is not None and entry.state.value == "done"
    # Bcc never reaches a header: the copy in Alice's inbox does not name the Bcc
    c2 = rig.imap(demo.ALICE)
    try:
        c2.select_folder("INBOX", readonly=True)
        uids = c2.search(["HEADER", "Message-ID", entry.message_id])
        (raw,) = [bytes(d[b"BODY[]"]) for d in c2.fetch(uids, ["BODY.PEEK[]"]).values()]
    finally:
        c2.logout()
    assert b"\nBcc:" not in raw and SSN.encode() not in raw


def test_protected_draft_without_own_key_stays_in_the_window(
    qtbot, rig_demo, funnel: Funnel, tmp_path: Path
) -> None:
    data, rig = rig_demo
    profile = tmp_path / "keyless"
    demo.configure_account(profile, demo.BOB, rig, data.root / "demo-servers-ca.pem")
    s = demo.open_profile_session(profile)
    s.org_policy = DEFAULT_POLICY
    try:
        c = _composer(qtbot, s, funnel)
        c.to.setText(demo.ALICE)
        c.subject.setText("no key here")
        c.body.setPlainText(f"SSN {SSN}")
        refused = _save(qtbot, c)
        assert isinstance(refused, DraftNeedsOwnKey)
        assert c.result.spec.level is BannerLevel.WARN
        assert "own key" in " ".join(c.result.spec.details)
        assert c.draft_id is None and c.dirty  # kept here, in memory only
        assert c.body.toPlainText() == f"SSN {SSN}"
        listed = s.drafts_list()
        assert all(d.subject != "no key here" for d in listed)
        assert not list(profile.rglob("*.eml"))  # nothing written locally either
    finally:
        s.close()


def test_bcc_rich_text_and_completion(qtbot, session: Session, funnel: Funnel) -> None:
    c = _composer(qtbot, session, funnel)
    funnel.wait_idle(30_000)
    qtbot.waitUntil(lambda: demo.ALICE in c.addresses.stringList(), timeout=30_000)
    # completion replaces only the address being typed
    c.to.setText("carol@example.org, ali")
    c.completers[0].insert(demo.ALICE)
    assert c.to.text() == f"carol@example.org, {demo.ALICE}, "
    c.bcc.setText(demo.BOB)
    assert c.recipients() == ["carol@example.org", demo.ALICE, demo.BOB]
    c.rich.setChecked(True)
    assert all(b.isEnabled() for b in c.format_buttons)
    c.body.setHtml('<p>Take <b>two</b> tablets<script>alert(1)</script>'
                   '<img src="https://tracker.example/x.png"></p>')  # fmt: skip
    fields = parse_draft(c.build())
    assert fields.bcc == demo.BOB
    assert fields.html is not None
    assert "font-weight" in fields.html or "<b>" in fields.html
    assert "script" not in fields.html and "tracker.example" not in fields.html
    assert "Take two tablets" in fields.text  # the plain-text alternative
    c.rich.setChecked(False)
    assert parse_draft(c.build()).html is None


def test_attach_by_dialog_and_envelope_opener_use_the_shared_dialog(
    qtbot, session: Session, funnel: Funnel, tmp_path: Path, monkeypatch, demo_root: Path
) -> None:
    f = tmp_path / "lab.pdf"
    f.write_bytes(b"%PDF-1.4 lab")
    asked: list[tuple[str, bool]] = []

    def choose(_parent, _title, name_filter, multiple):
        asked.append((name_filter, multiple))
        return [str(f)]

    monkeypatch.setattr(fileopen, "chooser", choose)
    c = _composer(qtbot, session, funnel)
    c._attach_dialog()
    qtbot.waitUntil(lambda: c.files == [("lab.pdf", b"%PDF-1.4 lab")], timeout=30_000)
    c.attachments.setCurrentRow(0)
    c.remove_attachment.click()
    assert c.files == [] and c.attachments.count() == 0

    w = EnvelopeWindow(session, funnel)
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.failed, timeout=30_000):
        assert w.open_dialog()
    assert asked[-1][1] is False and "*.p7m" in asked[-1][0]


def _manager(qtbot, session: Session, funnel: Funnel, clock) -> KeyManager:
    m = KeyManager(session, funnel, clock=clock)
    qtbot.addWidget(m)
    with qtbot.waitSignal(m.changed, timeout=30_000):
        pass
    return m


def _refreshed(qtbot, m: KeyManager, name: str) -> object:
    with qtbot.waitSignal(m.done, timeout=60_000) as done:
        pass
    assert done.args[0] == name
    with qtbot.waitSignal(m.changed, timeout=30_000):
        pass
    return done.args[1]


def test_key_status_warning_and_revoke(qtbot, demo_copy: Path, funnel: Funnel, tmp_path) -> None:
    s = demo.open_profile_session(demo_copy / "bob")
    try:
        own = next(k for k in s.keys_list() if k.secret and k.kind == "pgp")
        assert own.expires is not None
        m = _manager(qtbot, s, funnel, lambda: own.expires - timedelta(days=10))
        assert m.warning.isVisible() or not m.warning.isHidden()
        assert "expires in 10 days" in m.warning.text() or "expires in 9 days" in m.warning.text()
        row = m.keys.index(next(k for k in m.keys if k.fingerprint == own.fingerprint))
        assert m.table.item(row, 3).text() == "expires soon"

        m.table.selectRow(row)
        assert m.buttons["revoke"].isEnabled()
        target = tmp_path / "revocation.asc"
        m.confirm = lambda _t, _x: False
        m.revoke_selected()  # cancelled: nothing happens
        assert funnel.pending == 0 and not target.exists()
        m.confirm = lambda _t, _x: True
        m.ask_save_path = lambda _t, _d: str(target)
        m.revoke_selected()
        result = _refreshed(qtbot, m, "revoke")
        assert not isinstance(result, BaseException), result
        assert target.read_bytes().startswith(b"-----BEGIN PGP")
        row = next(i for i, k in enumerate(m.keys) if k.fingerprint == own.fingerprint)
        assert m.table.item(row, 3).text() == "revoked"
    finally:
        s.close()


def test_trust_a_ca_and_identity_bundle(qtbot, demo_copy: Path, funnel: Funnel, tmp_path) -> None:
    from tests.servers.pki import ServerPki  # the test CA the rig uses

    pki = ServerPki.make(tmp_path / "pki")
    ca_pem = tmp_path / "ca.pem"
    ca_pem.write_bytes(Path(pki.ca_file).read_bytes())
    s = demo.open_profile_session(demo_copy / "bob")
    try:
        now = datetime.now(UTC)
        m = _manager(qtbot, s, funnel, lambda: now)
        assert m.warning.isHidden()
        # a person's certificate is refused as an anchor
        person = tmp_path / "bob.pem"
        smime = next(k for k in m.keys if k.secret and k.kind == "x509")
        person.write_bytes(s.keys_export(smime.fingerprint))
        m.error = lambda exc: None  # no message box in tests
        m.import_ca_files([str(person)])
        refused = _refreshed_fail(qtbot, m)
        assert "no CA certificate" in str(refused)
        m.import_ca_files([str(ca_pem)])
        _refreshed(qtbot, m, "trust")
        anchors = [k for k in m.keys if k.is_ca and k.trust_anchor]
        assert len(anchors) == 1
        assert m.table.item(m.keys.index(anchors[0]), 0).text() == "Certificate authority"

        # the identity bundle: passphrase asked twice, then imported on a "second device"
        bundle = tmp_path / "identity.bin"
        m.ask_new_passphrase = lambda _t: "correct horse battery"
        m.ask_save_path = lambda _t, _d: str(bundle)
        m.export_identity()
        _refreshed(qtbot, m, "export-identity")
        assert bundle.stat().st_size > 0 and b"PRIVATE KEY" not in bundle.read_bytes()
        other = demo.open_profile_session(tmp_path / "second-device")
        try:
            m2 = _manager(qtbot, other, funnel, lambda: now)
            m2.ask_passphrase = lambda _name: "correct horse battery"
            m2.import_identity([str(bundle)])
            _refreshed(qtbot, m2, "import-identity")
            mine = {k.fingerprint for k in m.keys if k.secret}
            assert mine <= {k.fingerprint for k in m2.keys if k.secret}
        finally:
            other.close()
    finally:
        s.close()


def _refreshed_fail(qtbot, m: KeyManager) -> BaseException:
    with qtbot.waitSignal(m.done, timeout=60_000) as done:
        pass
    assert isinstance(done.args[1], BaseException)
    return done.args[1]


def test_new_passphrase_dialog_needs_two_matching_entries(qtbot) -> None:
    from PySide6.QtWidgets import QDialogButtonBox

    d = NewPassphraseDialog("Passphrase")
    qtbot.addWidget(d)
    ok = d.buttons.button(QDialogButtonBox.StandardButton.Ok)
    d.first.setText("correct horse battery")
    d.second.setText("correct horse batterz")
    assert not ok.isEnabled() and "differ" in d.problem.text()
    d.second.setText("correct horse battery")
    assert ok.isEnabled()
    d.first.setText("short")
    d.second.setText("short")
    assert not ok.isEnabled()


def _unnamed(root: QWidget) -> list[str]:
    kinds = (QAbstractButton, QLineEdit, QTextEdit, QComboBox, QListWidget, QTableWidget)
    return [
        f"{type(w).__name__}:{w.objectName()}"
        for w in root.findChildren(QWidget)
        if isinstance(w, kinds)
        and w.isVisibleTo(root)
        and not w.accessibleName()
        and not w.objectName().startswith("qt_")
    ]


def test_every_control_has_an_accessible_name(qtbot, session: Session, funnel: Funnel) -> None:
    c = _composer(qtbot, session, funnel)
    m = KeyManager(session, funnel)
    qtbot.addWidget(m)
    d = NewPassphraseDialog("Passphrase")
    qtbot.addWidget(d)
    g = GenerateDialog()
    qtbot.addWidget(g)
    for w in (c, m, d, g):
        w.show()
        assert _unnamed(w) == [], _unnamed(w)
