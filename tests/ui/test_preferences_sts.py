"""The composer applies the user's preferences within the policy, and MTA-STS at compose time.

Preferences are written with the real :meth:`Session.set_preferences` into a private copy
of Bob's demo profile. MTA-STS answers come from a real loopback DNS server and a real
HTTPS server with a test CA (as in tests/unit/test_policy_mtasts.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from client.policy.levels import Level
from client.policy.orgpolicy import DEFAULT_POLICY, OrgPolicy, UserOverrides
from client.services import Session
from client.transport.dns import DnsResolver
from client.transport.tlsknowledge import StsSources
from tests.servers.dns import DnsServer
from tests.servers.https import HttpsController, TestCA
from ui import demo, tlsrefresh
from ui.composer import Assessment, ComposerWindow, Reachability
from ui.settings import SettingsDialog
from ui.workers import Funnel

KEYLESS = "nobody@elsewhere.example"
SSN_BODY = "SSN for the insurance form: 536-90-4399\n"
STS_DOMAIN = "partner.test"
STS_HOST = f"mta-sts.{STS_DOMAIN}"
ENFORCE = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.partner.test\r\nmax_age: 86400\r\n"
TLS_REQUIRED = replace(DEFAULT_POLICY, name="test: tls-required", minimum_level=Level.TLS_REQUIRED)


@pytest.fixture
def bob(demo_copy: Path) -> Iterator[Session]:
    s = demo.open_profile_session(demo_copy / "bob")
    try:
        yield s
    finally:
        s.close()


def _composer(qtbot, session: Session, funnel: Funnel, policy: OrgPolicy = DEFAULT_POLICY,
              **kw: object) -> ComposerWindow:  # fmt: skip
    c = ComposerWindow(
        session, funnel, sender=demo.BOB, adapter=Reachability(session, org_policy=policy), **kw
    )
    qtbot.addWidget(c)
    return c


def _plan(qtbot, composer: ComposerWindow) -> Assessment:
    with qtbot.waitSignal(composer.plan_updated, timeout=30_000) as blocker:
        composer.update_plan()
    return blocker.args[0]


def _rows(composer: ComposerWindow) -> list[str]:
    return [composer.reach_list.item(i).text() for i in range(composer.reach_list.count())]


def test_default_level_preference_starts_the_composer_above_the_minimum(
    qtbot, bob: Session, funnel: Funnel
) -> None:
    bob.set_preferences({"default_level": "encrypted"})
    c = _composer(qtbot, bob, funnel)
    c.to.setText(demo.ALICE)
    c.body.setPlainText("Lunch on Friday?")
    a = _plan(qtbot, c)
    assert a.plan.level is Level.ENCRYPTED and a.default_level is Level.ENCRYPTED
    assert "your default protection (Settings)" in c.why.text()
    assert c.level_buttons[Level.ENCRYPTED].isChecked()
    # a default, not the policy: the user may still go lower, down to the policy's minimum
    assert c.level_buttons[Level.TLS].isEnabled()
    with qtbot.waitSignal(c.plan_updated, timeout=30_000) as lowered:
        c.level_buttons[Level.TLS].click()
    assert lowered.args[0].plan.level is Level.TLS and lowered.args[0].default_level is None


def test_default_level_never_lowers_or_overrides_the_policy(
    qtbot, bob: Session, funnel: Funnel
) -> None:
    bob.set_preferences({"default_level": "signed"})
    strict = replace(DEFAULT_POLICY, name="test: encrypted", minimum_level=Level.ENCRYPTED)
    a = _plan_for(qtbot, bob, funnel, strict)
    assert a.plan.level is Level.ENCRYPTED and a.default_level is None  # below the minimum
    fixed = replace(
        DEFAULT_POLICY, name="test: no choice", user_may=UserOverrides(raise_level=False)
    )
    a = _plan_for(qtbot, bob, funnel, fixed)
    assert a.plan.level is Level.TLS and a.default_level is None  # users may not choose
    a = _plan_for(qtbot, bob, funnel, DEFAULT_POLICY)
    assert a.plan.level is Level.SIGNED and a.default_level is Level.SIGNED


def test_preferences_saved_in_settings_apply_to_the_next_message(
    qtbot, bob: Session, funnel: Funnel
) -> None:
    bob.org_policy = DEFAULT_POLICY
    dialog = SettingsDialog(bob, funnel)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.loaded, timeout=30_000):
        dialog.show()
    assert "[secure] or [encrypt]" in dialog.subject_tags.text()
    dialog.default_level.setCurrentIndex(dialog.default_level.findData("encrypted"))
    dialog.subject_tags.setChecked(False)
    with qtbot.waitSignal(dialog.saved, timeout=30_000) as saved:
        dialog.save_button.click()
    assert not isinstance(saved.args[0], BaseException), saved.args[0]
    c = _composer(qtbot, bob, funnel)
    c.to.setText(demo.ALICE)
    c.subject.setText("[secure] Lunch on Friday?")
    a = _plan(qtbot, c)
    assert a.plan.level is Level.ENCRYPTED and a.default_level is Level.ENCRYPTED
    assert [r.rule for r in a.plan.reasons] == ["minimum-level", "user-level"]  # no tag


def _plan_for(qtbot, session: Session, funnel: Funnel, policy: OrgPolicy) -> Assessment:
    c = _composer(qtbot, session, funnel, policy)
    c.to.setText(demo.ALICE)
    c.body.setPlainText("Lunch on Friday?")
    return _plan(qtbot, c)


def test_subject_tag_preference_applies_only_where_the_policy_lets_users_choose(
    qtbot, bob: Session, funnel: Funnel
) -> None:
    def level(policy: OrgPolicy) -> Level:
        c = _composer(qtbot, bob, funnel, policy)
        c.to.setText(demo.ALICE)
        c.subject.setText("[secure] lab results")
        c.body.setPlainText("See you on Friday.")
        return _plan(qtbot, c).plan.level

    assert level(DEFAULT_POLICY) is Level.ENCRYPTED  # no preference: tags raise
    bob.set_preferences({"use_subject_tags": False})
    assert level(DEFAULT_POLICY) is Level.TLS  # the user turned them off, as allowed
    # what the scanner finds still raises, whatever the preference
    c = _composer(qtbot, bob, funnel)
    c.to.setText(demo.ALICE)
    c.subject.setText("[secure] insurance form")
    c.body.setPlainText(SSN_BODY)
    assert _plan(qtbot, c).plan.level is Level.ENCRYPTED


def test_envelope_preference_off_offers_no_envelope(qtbot, bob: Session, funnel: Funnel) -> None:
    def plan_keyless() -> tuple[Assessment, list[str]]:
        c = _composer(qtbot, bob, funnel)
        c.to.setText(KEYLESS)
        c.body.setPlainText(SSN_BODY)
        a = _plan(qtbot, c)
        return a, _rows(c)

    a, rows = plan_keyless()
    assert a.plan.recipients[0].method == "envelope" and not a.plan.hold
    bob.set_preferences({"use_envelopes": False})
    a, rows = plan_keyless()
    assert a.plan.hold and a.plan.recipients[0].method is None
    assert rows == [f"{KEYLESS}: cannot be reached securely — import their key"]
    assert a.plan.level is Level.ENCRYPTED  # protection stays; only the envelope is gone
    # a policy that does not let users choose keeps envelopes whatever the preference says
    forced = Session.apply_preferences(
        replace(DEFAULT_POLICY, user_may=UserOverrides(use_envelopes=False)), bob.preferences()
    )
    assert forced.password_envelopes


# ------------------------------------------------------------------------- MTA-STS


@pytest.fixture
def sts(tmp_path: Path) -> Iterator[StsSources]:
    ca = TestCA()
    ca_file = ca.write_ca(tmp_path / "ca.pem")
    cert, key = ca.issue([STS_HOST], tmp_path)
    https = HttpsController(cert, key).start()
    https.content[(STS_HOST, "/.well-known/mta-sts.txt")] = (200, ENFORCE)
    https.content_types[(STS_HOST, "/.well-known/mta-sts.txt")] = "text/plain"
    try:
        with DnsServer({(f"_mta-sts.{STS_DOMAIN}", "TXT"): ['"v=STSv1; id=20261123"']}) as dns:
            yield StsSources(
                dns=DnsResolver(["127.0.0.1"], dns.port, timeout=2.0),
                ca_file=str(ca_file),
                resolve={STS_HOST: ("127.0.0.1", https.port)},
                timeout=2.0,
            )
    finally:
        https.stop()


def test_recipient_with_mta_sts_enforce_shows_it_as_the_reason(
    qtbot, bob: Session, funnel: Funnel, sts: StsSources
) -> None:
    c = _composer(qtbot, bob, funnel, TLS_REQUIRED, sts_sources=sts)
    c.body.setPlainText("Appointment on Friday at 10.")
    # typing the address: the look-up runs after the recipients settle, then a new plan
    with qtbot.waitSignal(c.tls_refreshed, timeout=30_000) as refreshed:
        with qtbot.waitSignal(c.plan_updated, timeout=30_000):
            c.to.setText(f"lab@{STS_DOMAIN}")
    assert refreshed.args[0] == [STS_DOMAIN]
    a = _plan(qtbot, c)
    assert a.plan.level is Level.TLS_REQUIRED and not a.plan.hold
    (rp,) = a.plan.recipients
    assert rp.method == "tls-required" and rp.why.startswith("MTA-STS enforce (id 20261123")
    assert _rows(c)[0].startswith(f"lab@{STS_DOMAIN}: TLS on every hop (MTA-STS enforce")
    # looked up once: changing the recipients asks only about the new domain
    with qtbot.waitSignal(c.tls_refreshed, timeout=30_000) as again:
        c.to.setText(f"lab@{STS_DOMAIN}, {demo.ALICE}")
    assert again.args[0] == [] and c.sts.looked_up == {STS_DOMAIN, "example.org"}


def test_without_a_tls_required_rule_or_for_demo_domains_nothing_is_looked_up(
    bob: Session,
) -> None:
    internet = tlsrefresh.StsRefresher(bob)  # the real Internet: must not be touched here
    assert internet.domains([demo.ALICE, demo.CAROL, "x@lab.test", KEYLESS], TLS_REQUIRED) == []
    internal = replace(TLS_REQUIRED, internal_domains=frozenset({"hospital.example.net"}))
    assert internet.domains(["a@hospital.example.net"], internal) == []
    assert internet.domains(["a@mail.partner-lab.org"], TLS_REQUIRED) == ["mail.partner-lab.org"]
    assert not tlsrefresh.may_need_tls(DEFAULT_POLICY)
    assert tlsrefresh.may_need_tls(DEFAULT_POLICY, Level.TLS_REQUIRED)
    # the default policy never asks for tls-required: no look-up at all, no network
    assert internet.refresh(["a@mail.partner-lab.org"], DEFAULT_POLICY, now=bob.clock()) == []


def test_no_network_pauses_look_ups_instead_of_slowing_every_message(
    bob: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Internet's DNS stands in for a loopback server that never answers (no network)."""
    monkeypatch.setattr(tlsrefresh, "_looked_up", set())
    monkeypatch.setattr(tlsrefresh, "_offline_until", 0.0)
    with DnsServer() as dns:
        dns.silent.update({"_mta-sts.clinic-one.org", "_mta-sts.clinic-two.org"})
        monkeypatch.setattr(
            tlsrefresh,
            "_internet",
            lambda: StsSources(dns=DnsResolver(["127.0.0.1"], dns.port, timeout=0.3), timeout=0.3),
        )
        refresher = tlsrefresh.StsRefresher(bob)
        recipients = ["a@clinic-one.org", "b@clinic-two.org"]
        assert refresher.refresh(recipients, TLS_REQUIRED, now=bob.clock()) == []
        asked = {name for name, _type in dns.queries}
        assert asked == {"_mta-sts.clinic-one.org"}  # the second domain was not tried
        assert refresher.domains(recipients, TLS_REQUIRED) == []  # paused
        assert refresher.refresh(recipients, TLS_REQUIRED, now=bob.clock()) == []
        assert {name for name, _type in dns.queries} == asked
        assert bob.tls_store().last_error("clinic-one.org")["error"] == "StsTimeout"  # type: ignore[index]
