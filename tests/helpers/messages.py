"""Plain RFC 5322 test messages and small MIME helpers for interop tests."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

__all__ = ["body_of", "extract_part", "make_message", "pgp_mime_encrypted", "pgp_mime_signed"]


def make_message(
    sender: str,
    to: str,
    subject: str = "Laborergebnis für Frau Müller",
    body: str = "Grüße aus der Praxis — the results are attached.\n",
    attachments: list[tuple[str, bytes]] | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = "<test-1@example.org>"
    msg["Date"] = "Mon, 23 Nov 2026 08:00:00 +0000"
    msg.set_content(body)
    for name, data in attachments or []:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes(policy=email.policy.SMTP)


def body_of(raw: bytes) -> tuple[str, list[tuple[str, bytes]]]:
    """The text body and the attachments (name, bytes) of a message."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = ""
    files: list[tuple[str, bytes]] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        if name:
            payload = part.get_payload(decode=True)
            files.append((name, payload if isinstance(payload, bytes) else b""))
        elif part.get_content_type() == "text/plain" and not text:
            text = part.get_content()
    return text, files


def extract_part(raw: bytes, index: int) -> bytes:
    """The decoded body of the ``index``-th part of a top-level multipart message."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    payload = msg.get_payload()
    assert isinstance(payload, list), "not a multipart message"
    data = payload[index].get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def pgp_mime_encrypted(headers: str, armored: bytes) -> bytes:
    return (
        headers.rstrip("\n").replace("\n", "\r\n").encode() + b"\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b1"\r\n'
        b"\r\n--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        b"\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n"
        + armored.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        + b"\r\n--b1--\r\n"
    )


def pgp_mime_signed(headers: str, signed_part: bytes, armored_sig: bytes, micalg: str) -> bytes:
    return (
        headers.rstrip("\n").replace("\n", "\r\n").encode()
        + b"\r\nMIME-Version: 1.0\r\n"
        + f'Content-Type: multipart/signed; micalg={micalg}; protocol="application/pgp-signature"; boundary="s1"\r\n'.encode()
        + b"\r\n--s1\r\n"
        + signed_part
        + b"\r\n--s1\r\nContent-Type: application/pgp-signature\r\n\r\n"
        + armored_sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        + b"\r\n--s1--\r\n"
    )
