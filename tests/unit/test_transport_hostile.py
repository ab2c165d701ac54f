"""Hostile servers: no credential and no message byte may reach them; mail stays queued.

Every server here records all bytes it receives (tests/servers/hostile.py).
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest

from client.errors import TlsRequired
from client.services import Session
from client.transport import imap as imap_mod
from client.transport import smtp as smtp_mod
from client.transport.accounts import Account
from client.transport.outbox_state import State
from keystore.store import Keystore
from tests.servers.hostile import IMAP_MODES, SMTP_MODES
from tests.servers.rig import MailRig

USER = "alice@example.test"
PASSWORD = "hostile-never-sees-this-Pw-51"
BODY_MARKER = "PHI-MARKER-diagnosis-E11.9-potassium"


def _secrets() -> list[bytes]:
    plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    return [PASSWORD.encode(), plain, base64.b64encode(PASSWORD.encode()), BODY_MARKER.encode()]


def _assert_clean(data: bytes) -> None:
    for s in _secrets():
        assert s not in data, f"{s!r} leaked to the hostile server"


@pytest.mark.parametrize("mode", [m for m in SMTP_MODES if m != "drop-mid-data"])
def test_smtp_hostile_holds_message(mode: str, hostile, mail_rig: MailRig, tmp_path: Path) -> None:
    srv = hostile("smtp", mode)
    session = Session(Keystore.open(tmp_path / "p", passphrase="pp"))
    try:
        session.account_add(
            Account(
                email=USER,
                imap_host="127.0.0.1",
                imap_port=mail_rig.imaps_port,
                imap_security="tls",
                smtp_host="127.0.0.1",
                smtp_port=srv.port,
                smtp_security="tls" if mode.startswith("tls-") else "starttls",
                username=USER,
                ca_file=str(mail_rig.ca_file),
            ),
            PASSWORD.encode(),
        )
        mid = f"<{uuid.uuid4().hex}@example.test>"
        raw = (
            f"From: {USER}\r\nTo: bob@example.test\r\nSubject: x\r\nMessage-ID: {mid}\r\n\r\n"
            f"{BODY_MARKER}\r\n"
        ).encode()
        entry = session.send(raw)
        assert entry.state is State.HELD, entry
        assert entry.reason and "TLS" in entry.reason
        assert [e.message_id for e in session.outbox_list()] == [mid]
        assert srv.connections >= 1
        _assert_clean(srv.data)
        if mode in ("no-starttls", "starttls-refused"):
            assert b"AUTH" not in srv.data and b"MAIL FROM" not in srv.data.upper()
    finally:
        session.close()


def test_smtp_drop_mid_data_keeps_message_queued(
    hostile, mail_rig: MailRig, tmp_path: Path
) -> None:
    srv = hostile("smtp", "drop-mid-data")
    session = Session(Keystore.open(tmp_path / "p", passphrase="pp"))
    try:
        session.account_add(
            Account(
                email=USER,
                imap_host="127.0.0.1",
                imap_port=mail_rig.imaps_port,
                imap_security="tls",
                smtp_host="127.0.0.1",
                smtp_port=srv.port,
                smtp_security="starttls",
                username=USER,
                ca_file=str(mail_rig.ca_file),
            ),
            mail_rig.password(USER).encode(),
        )
        mid = f"<{uuid.uuid4().hex}@example.test>"
        raw = f"From: {USER}\r\nTo: bob@example.test\r\nMessage-ID: {mid}\r\n\r\nhello\r\n".encode()
        entry = session.send(raw)
        assert entry.state in (State.QUEUED, State.COMMITTING), entry
        assert entry.reason
        # a later run resolves it from the server (the real Dovecot): never arrived -> queued
        box = session.outbox(witness_wait=0.2)
        acc = session.accounts().get()
        box.process(
            acc,
            smtp=lambda: session.account_smtp(acc),
            imap=lambda: session.account_imap(acc),
            policy=session.policy_hook,
        )
        assert box.get(mid).state in (State.QUEUED, State.COMMITTING)
        assert mid not in mail_rig.message_ids("bob@example.test")
    finally:
        session.close()


@pytest.mark.parametrize("mode", IMAP_MODES)
def test_imap_hostile_refused_before_login(mode: str, hostile, mail_rig: MailRig) -> None:
    srv = hostile("imap", mode)
    with pytest.raises(TlsRequired):
        imap_mod.connect(
            "127.0.0.1",
            srv.port,
            security="tls" if mode.startswith("tls-") else "starttls",
            username=USER,
            password=PASSWORD,
            ca_file=str(mail_rig.ca_file),
            timeout=10,
        )
    assert srv.connections == 1
    _assert_clean(srv.data)
    assert b"LOGIN" not in srv.data.upper() and b"AUTHENTICATE" not in srv.data.upper()


def _submit(mail_rig: MailRig) -> smtp_mod.SmtpSession:
    """A verified STARTTLS submission session on the real rig."""
    return smtp_mod.submit_connect(
        "127.0.0.1",
        mail_rig.smtp_port,
        security="starttls",
        username=USER,
        password=mail_rig.password(USER),
        ca_file=str(mail_rig.ca_file),
    )


def test_requiretls_refused_when_not_offered(hostile, mail_rig: MailRig) -> None:
    """The real server offers REQUIRETLS only after TLS; a plain hostile never gets that far."""
    from client.errors import RequireTlsUnavailable

    with _submit(mail_rig) as s:
        assert s.offers_requiretls
        s.conn.esmtp_features.pop("requiretls")  # as if the server had not offered it
        with pytest.raises(RequireTlsUnavailable):
            s.send(USER, ["bob@example.test"], b"Subject: x\r\n\r\nbody\r\n", require_tls=True)


def test_8bit_content_is_declared_with_body_8bitmime(mail_rig: MailRig) -> None:
    """A message with octets above 127 goes with BODY=8BITMIME (RFC 6152), an ASCII one
    without it; checked by what the real submission server recorded."""
    sent = []
    with _submit(mail_rig) as s:
        start = len(mail_rig.submission.accepted)
        for body in ("Grüße aus der Praxis", "plain ascii"):
            raw = f"Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
            s.send(USER, [USER], raw.encode())
            sent.append(raw.encode())
    got = mail_rig.submission.accepted[start:]
    assert [tx.data.endswith(raw) for tx, raw in zip(got, sent, strict=True)] == [True, True]
    assert ["BODY=8BITMIME" in tx.mail_options for tx in got] == [True, False]
