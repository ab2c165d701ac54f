"""The composer: the policy's level and why, the PHI banner, one-click raise, send refused."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

from PySide6.QtGui import QGuiApplication

from client.policy.levels import Level
from client.policy.orgpolicy import DEFAULT_POLICY
from ui import demo
from ui.composer import (
    Assessment,
    ComposerWindow,
    EnvelopePassword,
    Reachability,
    SendCapabilities,
    SendOutcome,
    envelope_passwords_of,
)
from ui.workers import Funnel

SSN_BODY = "Alice,\n\nSSN for the insurance form: 536-90-4399\n\nBob\n"
NO_ENVELOPES = replace(DEFAULT_POLICY, name="test: no envelopes", password_envelopes=False)
KEYLESS = "nobody@elsewhere.example"


def _composer(qtbot, session, funnel: Funnel, *, policy=DEFAULT_POLICY, caps=None):
    adapter = Reachability(
        session, org_policy=policy, **({"capabilities": lambda _s: caps} if caps else {})
    )
    composer = ComposerWindow(session, funnel, sender=demo.BOB, adapter=adapter)
    qtbot.addWidget(composer)
    return composer


def _plan(qtbot, composer: ComposerWindow) -> Assessment:
    with qtbot.waitSignal(composer.plan_updated, timeout=30_000) as blocker:
        composer.update_plan()
    return blocker.args[0]


def _rows(composer: ComposerWindow) -> list[str]:
    return [composer.reach_list.item(i).text() for i in range(composer.reach_list.count())]


def test_ssn_to_keyless_recipient_banner_and_send_refused_with_fix(
    qtbot, session, funnel: Funnel
) -> None:
    composer = _composer(qtbot, session, funnel, policy=NO_ENVELOPES)
    composer.to.setText(KEYLESS)
    composer.subject.setText("Insurance form")
    composer.body.setPlainText(SSN_BODY)
    a = _plan(qtbot, composer)
    assert a.plan.level is Level.ENCRYPTED and a.findings == ("us-ssn",)
    assert composer.phi_banner.isVisibleTo(composer)
    assert composer.phi_banner.spec.headline == (
        "This message contains a Social Security number; it will be encrypted."
    )
    assert "536-90-4399" not in composer.phi_banner.spec.text  # the type, never the value
    assert composer.why.text() == (
        "Encrypted — because the message contains a Social Security number."
    )
    # envelopes are off in this policy: the row does not suggest one
    assert _rows(composer) == [f"{KEYLESS}: cannot be reached securely — import their key"]
    with qtbot.waitSignal(composer.send_done, timeout=30_000) as blocker:
        composer.send_button.click()
    outcome = blocker.args[0]
    assert isinstance(outcome, SendOutcome) and not outcome.sent and outcome.refused == "hold"
    spec = composer.result.spec
    assert spec.headline == (
        f"Not sent: {KEYLESS} cannot be reached at the level required (Encrypted)."
    )
    assert spec.details == (
        f"To fix: Import {KEYLESS}'s certificate or OpenPGP key (Keys and certificates)",
        f"To fix: Remove {KEYLESS} from the recipients",
    )
    assert session.outbox_list() == []  # nothing was queued


def test_phi_banner_appears_while_typing_after_a_pause(qtbot, session, funnel: Funnel) -> None:
    composer = _composer(qtbot, session, funnel)
    composer.to.setText("alice@example.org")
    with qtbot.waitSignal(composer.plan_updated, timeout=30_000):
        pass  # the debounced plan for the recipient
    assert not composer.phi_banner.isVisibleTo(composer)
    with qtbot.waitSignal(composer.plan_updated, timeout=5_000) as blocker:
        composer.body.setPlainText("Patient SSN 536-90-4399, please file.")
        assert composer._debounce.isActive()  # nothing runs on every keystroke
    assert blocker.args[0].findings == ("us-ssn",)
    assert composer.phi_banner.isVisibleTo(composer)
    assert "Social Security number" in composer.phi_banner.spec.headline


def test_raise_protection_with_one_click_changes_the_plan(qtbot, session, funnel: Funnel) -> None:
    composer = _composer(qtbot, session, funnel)
    composer.to.setText("alice@example.org")
    composer.body.setPlainText("Lunch on Friday?")
    a = _plan(qtbot, composer)
    assert a.plan.level is Level.TLS and not a.plan.hold
    assert composer.level_buttons[Level.TLS].isChecked()
    assert composer.why.text() == "TLS only — because the organisation's minimum."
    assert _rows(composer) == ["alice@example.org: TLS to your mail server only (not end-to-end)"]
    with qtbot.waitSignal(composer.plan_updated, timeout=30_000) as blocker:
        composer.raise_button.click()
    assert blocker.args[0].plan.level is Level.SIGNED
    assert composer.level_buttons[Level.SIGNED].isChecked()
    assert composer.why.text() == "Signed — because you raised it."
    assert _rows(composer) == ["alice@example.org: signed with S/MIME, readable on the way"]
    with qtbot.waitSignal(composer.plan_updated, timeout=30_000) as blocker:
        composer.raise_button.click()
    assert blocker.args[0].plan.level is Level.ENCRYPTED
    assert _rows(composer) == ["alice@example.org: S/MIME"]
    assert not composer.raise_button.isEnabled()  # nothing above Encrypted


def test_levels_below_the_policy_are_disabled_and_ignored(qtbot, session, funnel) -> None:
    composer = _composer(qtbot, session, funnel)
    composer.to.setText("alice@example.org")
    composer.body.setPlainText(SSN_BODY)
    _plan(qtbot, composer)
    assert composer.level_buttons[Level.ENCRYPTED].isChecked()
    assert not composer.level_buttons[Level.TLS].isEnabled()
    assert not composer.level_buttons[Level.SIGNED].isEnabled()
    with qtbot.waitSignal(composer.plan_updated, timeout=30_000) as blocker:
        composer.choose_level(Level.TLS)  # e.g. by keyboard: the planner ignores it
    assert blocker.args[0].plan.level is Level.ENCRYPTED
    assert composer.why.text() == (
        "Encrypted — because the message contains a Social Security number."
    )


def test_keyless_recipient_when_the_send_path_cannot_make_envelopes(
    qtbot, session, funnel: Funnel
) -> None:
    caps = SendCapabilities(applies_policy=True, makes_envelopes=False, takes_level=True)
    composer = _composer(qtbot, session, funnel, caps=caps)
    composer.to.setText(f"alice@example.org, {KEYLESS}")
    composer.body.setPlainText(SSN_BODY)
    a = _plan(qtbot, composer)
    assert a.plan.hold and not a.envelopes_available  # no envelope promised that cannot be made
    assert _rows(composer) == [
        "alice@example.org: S/MIME",
        f"{KEYLESS}: cannot be reached securely — import their key",
    ]


def test_envelope_recipient_and_one_time_password(qtbot, session, funnel: Funnel) -> None:
    caps = SendCapabilities(applies_policy=True, makes_envelopes=True, takes_level=False)
    composer = _composer(qtbot, session, funnel, caps=caps)
    composer.to.setText(f"alice@example.org, {KEYLESS}")
    composer.body.setPlainText(SSN_BODY)
    a = _plan(qtbot, composer)
    assert not a.plan.hold
    assert _rows(composer) == ["alice@example.org: S/MIME", f"{KEYLESS}: password envelope"]

    # what Session.send's outbox entry carries (see envelope_passwords_of)
    result = SimpleNamespace(
        envelope_passwords=[
            {"recipient": KEYLESS, "password": "otter-lamp-quartz-19", "new": True},
            {"recipient": "old@elsewhere.example", "password": "known-one", "new": False},
        ]
    )
    passwords = envelope_passwords_of(result)
    assert passwords == [
        EnvelopePassword(KEYLESS, "otter-lamp-quartz-19"),
        EnvelopePassword("old@elsewhere.example", "known-one", new=False),
    ]
    composer.show_passwords(passwords)
    assert composer.password_row.isVisibleTo(composer)
    assert composer.password_field.text() == "otter-lamp-quartz-19"
    composer.copy_button.click()
    assert QGuiApplication.clipboard().text() == "otter-lamp-quartz-19"


def test_send_path_without_policy_fails_closed(qtbot, session, funnel) -> None:
    caps = SendCapabilities(applies_policy=False, makes_envelopes=False, takes_level=False)
    composer = _composer(qtbot, session, funnel, caps=caps)
    composer.to.setText("alice@example.org")
    composer.subject.setText("[secure] lunch")  # a subject tag asks for encryption
    composer.body.setPlainText("Lunch on Friday?")
    assert _plan(qtbot, composer).plan.level is Level.ENCRYPTED
    assert "the subject carries [secure]" in composer.why.text()
    with qtbot.waitSignal(composer.send_done, timeout=30_000) as blocker:
        composer.send()
    assert blocker.args[0].refused and not blocker.args[0].sent
    assert composer.result.spec.headline.startswith("Not sent: this version cannot yet protect")
    assert session.outbox_list() == []
