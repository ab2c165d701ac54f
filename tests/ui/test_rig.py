"""The app on the real demo servers (client.devrig): IMAP listing, send and receive."""

from __future__ import annotations

from client.mailbox import ImapMailSource
from client.policy.levels import Level
from client.policy.orgpolicy import DEFAULT_POLICY
from client.services import Session
from ui import demo
from ui.banner import Level as BannerLevel
from ui.composer import ComposerWindow, Reachability
from ui.mainwindow import MainWindow
from ui.workers import Funnel


def test_imap_source_lists_the_rig_inbox(qtbot, rig_demo, bob: Session, funnel: Funnel) -> None:
    source = ImapMailSource(bob, demo.BOB)
    try:
        folders = {f.name: f for f in source.folders()}
        assert folders["INBOX"].total == 9 and folders["Sent"].total == 1
        window = MainWindow(bob, source, funnel, account=demo.BOB)
        qtbot.addWidget(window)
        with qtbot.waitSignal(window.loaded, timeout=60_000):
            window.load()
        assert window.message_model.folder == "INBOX"
        subjects = [r.summary.subject for r in window.message_model.rows]
        assert subjects[0] == "Secure envelope: scan for patient 4711"  # newest first
        assert len(subjects) == 9
        # the first protected message is selected and opened from the server
        spec = window.reader.banner.spec
        assert spec is not None and spec.level is BannerLevel.VERIFIED
        assert "Encrypted" in spec.headline
        funnel.wait_idle(60_000)
        # bodies are cached exactly as received (ciphertext), never decrypted
        cache = bob.cache()
        try:
            uid = next(
                r.summary.uid
                for r in window.message_model.rows
                if r.summary.content_type == "application/pkcs7-mime"
            )
            raw = cache.body(demo.BOB, "INBOX", uid)
        finally:
            cache.close()
        assert raw is not None and b"application/pkcs7-mime" in raw
        assert b"patient 4711" not in raw
    finally:
        source.close()


def test_send_encrypted_from_composer_arrives_decrypted(
    qtbot, rig_demo, bob: Session, funnel: Funnel
) -> None:
    data, _rig = rig_demo
    composer = ComposerWindow(
        bob, funnel, sender=demo.BOB, adapter=Reachability(bob, org_policy=DEFAULT_POLICY)
    )
    qtbot.addWidget(composer)
    bob.org_policy = DEFAULT_POLICY  # the send path applies the same policy
    composer.to.setText(demo.ALICE)
    composer.subject.setText("Insurance form for patient 4711")
    composer.body.setPlainText("Alice,\n\nSSN for the insurance form: 536-90-4399\n\nBob")
    with qtbot.waitSignal(composer.plan_updated, timeout=30_000) as planned:
        composer.update_plan()
    assert planned.args[0].plan.level is Level.ENCRYPTED
    with qtbot.waitSignal(composer.send_done, timeout=120_000) as blocker:
        composer.send_button.click()
    outcome = blocker.args[0]
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.sent, composer.result.spec
    assert composer.result.spec.level is BannerLevel.VERIFIED, composer.result.spec
    assert composer.result.spec.headline == "Sent (Encrypted)."

    alice = demo.open_profile_session(data.root / "alice")
    source = ImapMailSource(alice, demo.ALICE)
    try:
        source.folders()
        (summary,) = [s for s in source.summaries("INBOX") if demo.BOB in s.sender]
        assert "Insurance" not in summary.subject  # the real subject travels inside
        raw = source.fetch("INBOX", summary.uid)
        assert b"536-90-4399" not in raw  # encrypted on the wire and on the server
        opened = alice.message_open(raw, now=composer.clock())
        assert opened.report.encrypted
        assert b"536-90-4399" in opened.message
        assert b"Subject: Insurance form for patient 4711" in opened.message
    finally:
        source.close()
        alice.close()
