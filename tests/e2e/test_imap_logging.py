"""Logging hygiene against real Dovecot: DEBUG logs never carry the password or message text.

imapclient logs every command at DEBUG, including the start and end of each literal it
sends (an APPENDed message), and routes imaplib's wire trace to a logger of its own.
With the root logger at DEBUG and capturing everything, a login, an APPEND and a FETCH
of the body through :mod:`client.transport.imap` must leave none of the password, the
body text or the subject in any record, while imapclient's ordinary records still arrive
(so the capture is shown to work).
"""

from __future__ import annotations

import logging
import uuid

import pytest

from client.transport.imap import connect
from tests.servers.rig import MailRig

USER = "carol@example.test"


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_debug_logs_carry_no_password_and_no_message_text(
    mail_rig: MailRig, caplog: pytest.LogCaptureFixture, security: str
) -> None:
    token = uuid.uuid4().hex[:12]
    body = f"Potassium 4.1 mmol/L, patient {token}"
    subject = f"Lab {token[::-1]}"
    raw = (
        f"From: {USER}\r\nTo: {USER}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.test>\r\n\r\n{body}\r\n"
    ).encode()
    password = mail_rig.password(USER)
    folder = f"Log{token[:6]}"
    caplog.set_level(logging.DEBUG)  # the root logger, and so every library logger
    s = connect(
        "127.0.0.1",
        mail_rig.imaps_port if security == "tls" else mail_rig.imap_port,
        security=security,  # type: ignore[arg-type]
        username=USER,
        password=password,
        ca_file=str(mail_rig.ca_file),
    )
    try:
        s.create_folder(folder)
        uid = s.append(folder, raw, flags=["\\Seen"])
        assert uid is not None
        s.multiappend(folder, [raw])  # imapclient sends these literals itself
        s.select(folder)
        assert s.fetch_body(uid) == raw
        assert [r.uid for r in s.fetch_headers([uid])] == [uid]
        s.client.delete_folder(folder)
    finally:
        s.close()
    _assert_clean(caplog.records, password, body, token, subject)


def test_trace_filter_covers_any_imapclient_connection(
    mail_rig: MailRig, caplog: pytest.LogCaptureFixture
) -> None:
    """A connection made without :mod:`client.transport.imap` (imaplib's trace on)."""
    token = uuid.uuid4().hex[:12]
    body = f"Potassium 4.1 mmol/L, patient {token}"
    subject = f"Lab {token[::-1]}"
    raw = f"From: {USER}\r\nSubject: {subject}\r\n\r\n{body}\r\n".encode()
    folder = f"Log{token[:6]}"
    caplog.set_level(logging.DEBUG)
    c = mail_rig.imap(USER)  # a plain IMAPClient: imaplib debug = 5, routed to logging
    try:
        assert c._imap.debug == 5
        c.create_folder(folder)
        c.append(folder, raw)
        c.multiappend(folder, [raw])
        c.select_folder(folder)
        data = c.fetch(c.search("ALL"), ["BODY.PEEK[]"])
        assert [d[b"BODY[]"] for d in data.values()] == [raw, raw]
        c.delete_folder(folder)
    finally:
        c.logout()
    _assert_clean(caplog.records, mail_rig.password(USER), body, token, subject)


def _assert_clean(
    records: list[logging.LogRecord], password: str, body: str, token: str, subject: str
) -> None:
    # the capture works: imapclient's ordinary records are there ...
    assert any(r.name.startswith("imapclient") and "Logged in" in r.getMessage() for r in records)
    # ... and nothing of the secret or of the message is, in any record
    for r in records:
        text = f"{r.getMessage()} {r.args!r}"
        for secret in (password, body, token, subject, token[::-1]):
            assert secret not in text, (r.name, r.levelname, r.msg)
    assert not [r for r in records if r.name == "imapclient.imaplib"]
