"""The outer mail that carries a password envelope to a recipient without keys — sans I/O.

Theory of operation
-------------------
:func:`envelope_mail` takes the message the user wrote (RFC 5322, transport fields already
removed) and a password, and returns a new, ordinary message to one recipient:

- its header names only the sender and that recipient, keeps the Message-ID and Date (the
  outbox finds its witness by Message-ID), and has a neutral Subject — the real subject,
  which may hold PHI, is inside the envelope;
- its body is a short plain-text note and the Sealmail envelope page
  (``secure-message.html``, :func:`client.envelope.create.create`) holding the text, the
  subject and every attachment, encrypted under the password.

The password never appears in the mail (``create`` refuses a text that contains it); the
caller keeps it in the secret store and tells the sender once, to phone it.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses

from client.envelope.create import create
from client.envelope.format import Attachment
from client.mime.bulk import Bulk
from client.mime.raw import decode_text, filename_of, headers_of, leaves

__all__ = ["ENVELOPE_FILENAME", "envelope_mail", "split_message"]

ENVELOPE_FILENAME = "secure-message.html"
Rng = Callable[[int], bytes]

_NOTE = (
    "{who} sent you a secure message.\r\n\r\n"
    "Open the attached file {name} in a web browser (it works offline) and enter the\r\n"
    "password {who_short} gives you by phone or text message. The password is never sent\r\n"
    "by e-mail. You can reply securely from the page.\r\n"
)


def split_message(raw: bytes) -> tuple[str, str, list[Attachment]]:
    """(subject, the message text, attachments) of ``raw``; an HTML-only body is a file.

    The leaves come from :func:`client.mime.raw.leaves` (linear, in windows), not the
    ``email`` feed parser, which walked a 25 MB attachment line by line in Python while
    the app waited for the GIL (issue 8).
    """
    subject = str(headers_of(raw, email.policy.default).get("Subject", "") or "")
    text: str | None = None
    files: list[Attachment] = []
    for leaf in leaves(raw):
        part = leaf.headers
        ctype = part.get_content_type()
        name = filename_of(part)
        inline = part.get_content_disposition() != "attachment" and not name
        data = leaf.decoded_body()
        if inline and ctype == "text/plain" and text is None:
            text = decode_text(part, data)
            continue
        if not name:
            ext = {"text/html": "html", "text/plain": "txt"}.get(ctype, "bin")
            name = (
                f"message.{ext}" if inline and ctype == "text/html" else f"part-{len(files)}.{ext}"
            )
        files.append(Attachment(name, data))
    return subject, (text or "").replace("\r\n", "\n"), files


def envelope_mail(
    raw: bytes,
    recipient: str,
    password: bytes,
    *,
    now: datetime,
    rng: Rng,
) -> bytes:
    """An ordinary mail to ``recipient`` carrying ``raw`` as a Sealmail envelope."""
    head = headers_of(raw, email.policy.default)
    senders = getaddresses([str(v) for v in head.get_all("From", [])])
    sender_name, sender_addr = senders[0] if senders else ("", "")
    subject, text, files = split_message(raw)
    created = create(
        text,
        files,
        password,
        now=now,
        rng=rng,
        output="html",
        sender=sender_addr or None,
        recipient=recipient,
        subject=subject,
    )
    who = sender_name or sender_addr or "Someone"
    out = EmailMessage(policy=email.policy.SMTP)
    if senders:
        out["From"] = formataddr((sender_name, sender_addr))
    out["To"] = recipient
    out["Subject"] = f"Secure message from {who}"
    out["Date"] = str(head.get("Date") or format_datetime(now))
    if head.get("Message-ID"):
        out["Message-ID"] = str(head["Message-ID"]).strip()
    for name in ("In-Reply-To", "References"):
        if head.get(name):
            out[name] = str(head[name])
    out.set_content(
        _NOTE.format(who=who, who_short=sender_name or "the sender", name=created.suggested_name),
        cte="quoted-printable",
    )
    bulk = Bulk()  # the envelope's base64 is spliced in after the generator
    bulk.add_attachment(
        out, created.data, maintype="text", subtype="html", filename=created.suggested_name
    )
    return bulk.as_bytes(out)
