"""What goes into a password envelope: split_message's text, subject and attachments.

split_message reads the leaves with Sealmail's linear MIME splitter (the feed parser walked
a 25 MB attachment line by line while the app waited). The reference below is the email
package's own walk over the same message, so both must agree part for part.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from client.policy.envelopemail import split_message


def _reference(raw: bytes) -> tuple[str, str, list[tuple[str, bytes]]]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = None
    files: list[tuple[str, bytes]] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        inline = part.get_content_disposition() != "attachment" and not name
        data = part.get_payload(decode=True) or b""
        if inline and part.get_content_type() == "text/plain" and text is None:
            text = data.decode(part.get_content_charset() or "utf-8", "replace")
            continue
        if not name:
            ext = {"text/html": "html", "text/plain": "txt"}.get(part.get_content_type(), "bin")
            inline_html = inline and part.get_content_type() == "text/html"
            name = f"message.{ext}" if inline_html else f"part-{len(files)}.{ext}"
        files.append((name, data))
    return str(msg["Subject"] or ""), (text or "").replace("\r\n", "\n"), files


def _messages() -> list[bytes]:
    out = []
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "a@x.example", "b@y.example", "Befund für Frau Müller"
    m.set_content("Grüße,\nthe scan is attached.\n")
    m.add_alternative("<p>Grüße</p>", subtype="html")
    m.add_attachment(bytes(range(256)) * 300, maintype="application", subtype="dicom",
                     filename="ct-schädel.dcm")  # fmt: skip
    m.add_attachment(b"name,ssn\r\nDoe,123-45-6789\r\n", maintype="text", subtype="csv",
                     filename="list.csv")  # fmt: skip
    out.append(m.as_bytes(policy=email.policy.SMTP))

    inner = EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("inner text\n")
    outer = EmailMessage()
    outer["Subject"] = "fwd"
    outer.set_content("see below\n")
    outer.add_attachment(inner)  # message/rfc822
    out.append(outer.as_bytes(policy=email.policy.SMTP))

    html_only = EmailMessage()
    html_only["Subject"] = "html"
    html_only.set_content("<b>only html</b>", subtype="html")
    out.append(html_only.as_bytes(policy=email.policy.SMTP))
    return out


@pytest.mark.parametrize("raw", _messages(), ids=["mixed", "rfc822", "html-only"])
def test_split_message_agrees_with_the_email_package(raw: bytes) -> None:
    subject, text, files = split_message(raw)
    ref_subject, ref_text, ref_files = _reference(raw)
    assert (subject, text) == (ref_subject, ref_text)
    assert [(f.name, f.data) for f in files] == ref_files


def test_split_message_keeps_attachment_bytes_and_survives_unknown_charsets() -> None:
    payload = bytes(range(256)) * 1000
    m = EmailMessage()
    m["Subject"] = "x"
    m.set_content("hello\n")
    m.add_attachment(payload, maintype="application", subtype="octet-stream", filename="b.bin")
    raw = m.as_bytes(policy=email.policy.SMTP).replace(b'charset="utf-8"', b"charset=x-nonesuch")
    subject, text, files = split_message(raw)
    assert (subject, text) == ("x", "hello\n")
    assert [(f.name, f.data == payload) for f in files] == [("b.bin", True)]
