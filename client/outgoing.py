"""Building the user's outgoing message: To/Cc/Bcc, plain text or rich text, attachments.

Theory of operation
-------------------
:func:`build_message` is the composer's (and the CLI's) one builder: an RFC 5322 message
(CRLF) with the plain text always present; when the user wrote rich text, the HTML is
passed through :func:`sanitize_outgoing_html` (nh3: formatting tags and a few harmless
style properties; no script, no URL of any kind, no remote image) and added as the
``text/html`` alternative. ``Bcc`` is written into the message because the send path
needs it to know the blind recipients: the policy gives each Bcc recipient a copy of
their own and the outbox removes the field from every copy before it leaves (see
:mod:`client.policy.decide`, :mod:`client.transport.outbox`). :func:`address_book` lists
the addresses the user can complete from: contacts' keys and addresses seen in the cache.
"""

from __future__ import annotations

import email.policy
import email.utils
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import getaddresses
from typing import TYPE_CHECKING

import nh3

from client.mime.bulk import Bulk
from client.mime.raw import decoded_payload

if TYPE_CHECKING:
    from client.services import Session

__all__ = ["DraftFields", "address_book", "build_message", "parse_draft", "sanitize_outgoing_html"]

_TAGS = {
    "a", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4", "hr", "i",
    "li", "ol", "p", "pre", "s", "span", "strong", "sub", "sup", "table", "tbody", "td",
    "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_STYLES = {
    "font-weight", "font-style", "text-decoration", "color", "background-color",
    "font-size", "text-align", "margin-left", "margin-right", "margin-top", "margin-bottom",
    "text-indent",
}  # fmt: skip


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "style" and any(bad in value.lower() for bad in ("url(", "expression", "\\")):
        return None
    return value


def sanitize_outgoing_html(html: str) -> str:
    """The HTML the composer sends: formatting only, nothing that reaches out."""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes={"*": {"style", "align", "dir"}, "td": {"colspan", "rowspan"}},
        attribute_filter=_attribute_filter,
        filter_style_properties=_STYLES,
        url_schemes=set(),
        link_rel=None,
        strip_comments=True,
    ).strip()


def build_message(
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    text: str,
    date: datetime,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    html: str | None = None,
    message_id: str | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    for name, values in (("To", to), ("Cc", cc), ("Bcc", bcc)):
        if values:
            msg[name] = ", ".join(values)
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date)
    domain = sender.rpartition("@")[2].strip("> ") or "sealmail.invalid"
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=domain)
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(sanitize_outgoing_html(html), subtype="html")
    bulk = Bulk()  # attachment bodies spliced in after the generator (client.mime.bulk)
    for name, media_type, data in attachments:
        maintype, _, subtype = media_type.partition("/")
        bulk.add_attachment(
            msg, data, maintype=maintype or "application", subtype=subtype or "octet-stream",
            filename=name,
        )  # fmt: skip
    return bulk.as_bytes(msg, email.policy.SMTP)


def _addresses(values: Iterable[str]) -> list[str]:
    return [a.strip().lower() for _, a in getaddresses(list(values)) if "@" in a]


def address_book(session: Session, account: str | None = None) -> list[str]:
    """Addresses to complete: contacts' keys and certificates, then senders and
    recipients seen in the local cache (headers only), each once, sorted."""
    found: set[str] = set()
    for info in session.keys_list():
        if not info.is_ca:
            found.update(e.lower() for e in info.emails)
    cache = session.cache()
    try:
        accounts = [account] if account else [a.email for a in session.account_list()]
        for acc in accounts:
            for folder in cache.folders(acc):
                for m in cache.list(acc, folder.name):
                    found.update(_addresses([m.sender, m.recipients]))
    finally:
        cache.close()
    return sorted(found)


@dataclass(frozen=True)
class DraftFields:
    """What the composer shows of a reopened draft."""

    sender: str
    to: str
    cc: str
    bcc: str
    subject: str
    text: str
    html: str | None
    attachments: tuple[tuple[str, bytes], ...]
    level: str | None  # the level the user chose (X-Sealmail-Level), if any
    draft_id: str | None


def parse_draft(raw: bytes) -> DraftFields:
    """The fields of a draft as :func:`build_message` wrote it (or another program)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)

    def field(name: str) -> str:
        return ", ".join(str(v) for v in (msg.get_all(name) or []))

    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    text = text_part.get_content() if text_part is not None else ""
    html = html_part.get_content() if html_part is not None else None
    files: list[tuple[str, bytes]] = []
    for part in msg.iter_attachments():
        data = decoded_payload(part)
        if isinstance(data, bytes):
            files.append((part.get_filename() or "attachment", data))
    token = str(msg.get("X-Sealmail-Draft") or "").strip().lower() or None
    return DraftFields(
        sender=field("From"),
        to=field("To"),
        cc=field("Cc"),
        bcc=field("Bcc"),
        subject=str(msg.get("Subject") or ""),
        text=text.replace("\r\n", "\n").rstrip("\n"),
        html=sanitize_outgoing_html(html) if html is not None else None,
        attachments=tuple(files),
        level=(str(msg.get("X-Sealmail-Level") or "").strip() or None),
        draft_id=token,
    )
