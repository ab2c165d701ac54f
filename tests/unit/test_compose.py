"""Building protected messages: 7-bit safety, header protection, exact bytes."""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
import os
from datetime import UTC, datetime

import pytest

from client.errors import MalformedMessage
from client.mime import compose
from client.mime.headers import protected_headers_of
from client.mime.raw import parse_entity, split_multipart, to_crlf

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def rng(n: int) -> bytes:
    return bytes(range(n))


def _msg(body: bytes, ctype: bytes = b"text/plain; charset=utf-8", cte: bytes = b"8bit") -> bytes:
    return (
        b"From: Dr. Alice <alice@example.org>\nTo: bob@example.net\nBcc: secret@example.com\n"
        b"Subject: =?utf-8?q?Befund_M=C3=BCller?=\nContent-Type: " + ctype + b"\n"
        b"Content-Transfer-Encoding: " + cte + b"\n\n" + body
    )


def test_8bit_text_becomes_quoted_printable_and_decodes_back() -> None:
    body = "Grüße — line with trailing space   \nFrom the lab\n".encode()
    p = compose.prepare(_msg(body), encrypt=True, now=NOW, rng=rng)
    assert p.inner.isascii()
    inner = email.message_from_bytes(p.inner, policy=email.policy.default)
    assert inner["Content-Transfer-Encoding"] == "quoted-printable"
    assert inner.get_content().replace("\r\n", "\n") == body.decode()
    assert b"\r\nFrom " not in p.inner and not p.inner.startswith(b"From ")
    assert b"   \r\n" not in p.inner  # trailing whitespace would not survive transports


def test_safe_base64_attachment_is_passed_through_byte_for_byte() -> None:
    blob = base64.encodebytes(os.urandom(100_000)).replace(b"\n", b"\r\n")
    raw = (
        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="BB"\r\n\r\n--BB\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Übersicht\r\n".encode()
        + b"\r\n--BB\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + blob
        + b"\r\n--BB--\r\n"
    )
    p = compose.prepare(raw, encrypt=False, now=NOW, rng=rng)
    parts = split_multipart(parse_entity(p.inner, canonical=True))
    assert len(parts) == 2
    assert parts[1].endswith(blob)  # the attachment part is untouched
    assert parse_entity(parts[0], canonical=True).transfer_encoding == "quoted-printable"


def test_header_protection_encrypted() -> None:
    p = compose.prepare(_msg(b"hi\n"), encrypt=True, now=NOW, rng=rng)
    outer = dict(p.outer)
    assert outer["Subject"] == "[...]"
    assert "Bcc" not in outer and b"secret@example.com" not in p.inner
    assert p.recipients == ("bob@example.net", "secret@example.com")
    entity = parse_entity(p.inner, canonical=True)
    assert entity.param("hp") == "cipher"
    scheme, fields = protected_headers_of(entity)
    assert scheme == "rfc9788"
    got = dict(fields)
    assert got["Subject"] == "Befund Müller"
    assert email.utils.parseaddr(got["From"]) == ("Dr. Alice", "alice@example.org")
    assert "Message-ID" in got and "Date" in got  # added when missing
    hp_outer = [str(v) for v in entity.headers.get_all("HP-Outer") or []]
    assert "Subject: [...]" in hp_outer


def test_header_protection_signed_only_keeps_subject_outside() -> None:
    p = compose.prepare(_msg(b"hi\n"), encrypt=False, now=NOW, rng=rng)
    assert dict(p.outer)["Subject"] == "Befund Müller"
    entity = parse_entity(p.inner, canonical=True)
    assert entity.param("hp") == "clear"
    assert entity.headers.get_all("HP-Outer") is None


def test_no_header_protection_leaves_no_trace() -> None:
    p = compose.prepare(_msg(b"hi\n"), encrypt=True, header_protection=False, now=NOW, rng=rng)
    assert dict(p.outer)["Subject"] == "Befund Müller"
    assert parse_entity(p.inner, canonical=True).param("hp") is None


def test_message_without_content_type_and_body() -> None:
    p = compose.prepare(
        b"From: a@example.org\nTo: b@example.org\n\n", encrypt=True, now=NOW, rng=rng
    )
    assert parse_entity(p.inner, canonical=True).content_type == "text/plain"
    with pytest.raises(MalformedMessage):
        compose.prepare(b"just some text without any header", encrypt=True, now=NOW, rng=rng)


def test_wrapped_signed_part_is_exactly_the_inner_bytes() -> None:
    p = compose.prepare(_msg(b"hello\n"), encrypt=False, now=NOW, rng=rng)
    signed = compose.wrap_pgp_signed(
        p.inner,
        b"-----BEGIN PGP SIGNATURE-----\n\nAA==\n-----END PGP SIGNATURE-----\n",
        "pgp-sha256",
        rng,
    )
    whole = compose.assemble(p.outer, signed)
    top = parse_entity(whole, canonical=True)
    first, second = split_multipart(top)
    assert first == p.inner
    assert parse_entity(second, canonical=True).content_type == "application/pgp-signature"
    assert top.param("micalg") == "pgp-sha256"


def test_to_crlf_handles_mixed_endings() -> None:
    assert to_crlf(b"a\nb\r\nc\rd") == b"a\r\nb\r\nc\r\nd"
    same = b"a\r\nb\r\n"
    assert to_crlf(same) is same


@pytest.mark.parametrize(
    "body,expected",
    [
        (b"--B\r\nA\r\n--B\r\nB\r\n--B--\r\n", [b"A", b"B"]),
        (b"pre\r\n--B \t\r\nA\r\n--BX\r\n--B--", [b"A\r\n--BX"]),  # prefix is not a delimiter
        (b"--B\r\n\r\n--B\r\nx\r\n--B--\r\n", [b"", b"x"]),  # empty part
        (b"--B\r\nA\r\n--B\r\nunterminated", [b"A", b"unterminated"]),
    ],
)
def test_split_multipart_delimiters(body: bytes, expected: list[bytes]) -> None:
    entity = parse_entity(
        b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + body, canonical=True
    )
    assert split_multipart(entity) == expected
