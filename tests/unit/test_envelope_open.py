"""Opening attachments (client.envelope.open, .output, .vendors, .passwords) and the CLI.

Vendor samples are synthetic: short HTML written here from the public descriptions of each
vendor's envelope (file name and the words and host names the page shows); no vendor
file is copied. The real-tool cases (gpg, openssl) are in tests/interop.
"""

from __future__ import annotations

import json
import math
import os
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.envelope import create as env_create
from client.envelope import format as fmt
from client.envelope import open as env_open
from client.envelope import passwords, vendors
from client.envelope.output import save_files
from client.errors import (
    BadPassword,
    TamperedMessage,
    UnsupportedMessage,
    UsageError,
    VendorEnvelope,
)
from tests.conftest import Cli

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PW = "bazok-tifum-ruveg-nodal"
Kind = env_open.OpenKind


class _NoKeys:
    def pgp_secret_keys(self) -> list[tuple[bytes, bytes | None]]:
        return []


def _open(data: bytes, pw: str | None = PW, name: str | None = None) -> env_open.Opened:
    return env_open.open_bytes(
        data,
        keys=_NoKeys(),  # type: ignore[arg-type]
        password=lambda: pw.encode() if pw else None,
        now=NOW,
        filename=name,
    )


@pytest.fixture(scope="module")
def envelope() -> bytes:
    files = [fmt.Attachment("r.pdf", b"%PDF-1.4 results"), fmt.Attachment("n.txt", b"notes")]
    return env_create.create("Hello", files, PW.encode(), now=NOW, rng=os.urandom).data


VENDOR_SAMPLES = {
    "proofpoint": (
        "SecureMessageAtt.html",
        b"<html><body><form action='https://securemail.example.com/formpostdir/safeformpost.aspx'>"
        b"<p>You have received a secure message</p><p>Powered by Proofpoint Encryption</p>"
        b"<input type=hidden name=msg></form></body></html>",
    ),
    "cisco": (
        "securedoc_20260301T120000.html",
        b"<html><head><title>Registered Envelope</title></head><body>"
        b"<p>Cisco Secure Email Encryption Service</p><a href='https://res.cisco.com/websafe'>"
        b"Open Online</a></body></html>",
    ),
    "microsoft": (
        "message.html",
        b"<!DOCTYPE html><html><body><p>You've received an encrypted message</p>"
        b"<p>Microsoft Purview Message Encryption</p>"
        b"<form action='https://outlook.office365.com/Encryption/retrieve.ashx'></form>"
        b"</body></html>",
    ),
    "zix": (
        "ZixMessage.html",
        b"<html><body>Secure Message Center<br>ZixCorp secure email"
        b"<form action='https://web1.zixmail.net/s/login'></form></body></html>",
    ),
    "virtru": (
        "secure.tdf.html",
        b"<html><body><p>Protected with Virtru</p>"
        b"<a href='https://secure.virtru.com/start'>Unlock message</a></body></html>",
    ),
}


# -- detection ----------------------------------------------------------------------------


def test_detect_sealmail(envelope: bytes) -> None:
    assert env_open.detect(envelope) is Kind.SEALMAIL_ENVELOPE
    container = fmt.seal("r", [], PW, now=NOW, rng=os.urandom, kind=fmt.Kind.REPLY)
    assert env_open.detect(container) is Kind.SEALMAIL_REPLY
    assert env_open.detect(b"") is Kind.UNKNOWN
    assert env_open.detect(b"just some text\n") is Kind.UNKNOWN
    assert env_open.detect(b"<html><body>hi</body></html>", "message.html") is Kind.UNKNOWN


@pytest.mark.parametrize("key", sorted(VENDOR_SAMPLES))
def test_vendor_portals_named(key: str) -> None:
    name, html = VENDOR_SAMPLES[key]
    assert env_open.detect(html, name) is Kind.VENDOR_PORTAL
    vendor = vendors.recognise(html, name)
    assert vendor is not None and vendor.key == key
    with pytest.raises(VendorEnvelope) as info:
        _open(html, name=name)
    assert vendor.name in str(info.value)
    assert info.value.hint == vendor.how_to_open


def test_rpmsg_recognised() -> None:
    blob = b"\x76\xe8\x04\x60\xc4\x11\xe3\x86" + os.urandom(200)
    assert vendors.recognise(blob, "message.rpmsg").key == "microsoft"  # type: ignore[union-attr]
    assert vendors.recognise(os.urandom(100), "message.rpmsg").key == "microsoft"  # type: ignore[union-attr]


def test_no_vendor_false_positives() -> None:
    for html in (
        b"<html><body>The crest of the hill; a zixel? fix the mixer</body></html>",
        b"<html><body>Please see proofpointless remarks</body></html>",
    ):
        assert vendors.recognise(html, "letter.html") is None


# -- opening ------------------------------------------------------------------------------


def test_open_envelope(envelope: bytes) -> None:
    opened = _open(envelope)
    assert opened.kind is Kind.SEALMAIL_ENVELOPE and opened.message == "Hello"
    assert [f.name for f in opened.files] == ["r.pdf", "n.txt"]
    with pytest.raises(BadPassword):
        _open(envelope, pw="wrong-password")
    with pytest.raises(UsageError, match="password"):
        _open(envelope, pw=None)


def test_open_unknown_refused() -> None:
    with pytest.raises(UnsupportedMessage):
        _open(b"PK\x03\x04 a zip file")


def test_create_refuses_password_in_message_and_big_files() -> None:
    with pytest.raises(UsageError, match="contains the password"):
        env_create.create(f"the password is {PW}", [], PW.encode(), now=NOW)
    with pytest.raises(UsageError, match="too short"):
        env_create.create("x", [], b"abc", now=NOW)
    big = fmt.Attachment("big", b"\0" * (25 * 1024 * 1024 + 1))
    with pytest.raises(UsageError, match="25 MiB"):
        env_create.create("x", [big], PW.encode(), now=NOW)
    with pytest.raises(UsageError, match="exactly one file"):
        env_create.create("x", [], PW.encode(), now=NOW, output="gpg")


def test_safe_names() -> None:
    assert env_open.safe_name("../../etc/passwd", "f") == "passwd"
    assert env_open.safe_name("C:\\Users\\x\\.bashrc", "f") == "bashrc"
    assert env_open.safe_name("a\x00b\nc", "f") == "a_b_c"
    assert env_open.safe_name("..", "fallback") == "fallback"
    assert env_open.safe_name(None, "fallback") == "fallback"


# -- output -------------------------------------------------------------------------------


def test_save_all_or_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    paths = save_files(out, [("a.txt", b"A"), ("b.txt", b"B")])
    assert [p.name for p in paths] == ["a.txt", "b.txt"]
    again = save_files(out, [("a.txt", b"A2")])
    assert again[0].name == "a (1).txt" and (out / "a.txt").read_bytes() == b"A"
    assert oct((out / "a.txt").stat().st_mode & 0o777) == "0o600"

    real_link = os.link
    calls = []

    def failing_link(src: str, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", failing_link)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(UsageError, match="No space"):
        save_files(out, [("c.txt", b"C"), ("d.txt", b"D")])
    assert sorted(p.name for p in out.iterdir()) == before  # nothing left, no temp files
    with pytest.raises(UsageError):
        save_files(out, [("../x", b"")])


# -- passwords ----------------------------------------------------------------------------


def test_passwords_speakable_and_strong() -> None:
    r = random.Random(7)
    pw = passwords.generate(lambda n: r.randbytes(n))
    words = pw.split("-")
    assert len(words) == 4 and all(len(w) == 5 for w in words)
    assert all(w[0] in passwords.CONSONANTS and w[1] in passwords.VOWELS for w in words)
    assert passwords.entropy_bits() >= 60
    assert math.isclose(passwords.entropy_bits(6), 6 * math.log2(16**3 * 25))
    r2 = random.Random(7)
    assert passwords.generate(lambda n: r2.randbytes(n)) == pw
    seen = {passwords.generate(os.urandom) for _ in range(500)}
    assert len(seen) == 500
    with pytest.raises(UsageError):
        passwords.generate(os.urandom, words=3)
    with pytest.raises(UsageError):
        passwords.generate(lambda n: b"\xff" * n)  # never below the rejection limit


def test_password_letters_uniform() -> None:
    r = random.Random(3)
    counts: dict[str, int] = {}
    for _ in range(2000):
        for ch in passwords.generate(lambda n: r.randbytes(n)).replace("-", "")[::2]:
            counts[ch] = counts.get(ch, 0) + 1
    consonant_counts = [counts[c] for c in passwords.CONSONANTS]
    assert max(consonant_counts) / min(consonant_counts) < 1.25


# -- CLI ----------------------------------------------------------------------------------


def _fd(value: bytes) -> int:
    r, w = os.pipe()
    os.write(w, value)
    os.close(w)
    return r


def test_cli_create_open_tamper_vendor(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "r.pdf").write_bytes(b"%PDF results")
    pw_fd, msg_fd = _fd(PW.encode()), _fd(b"Dear patient,\nsee attached.\n")
    try:
        cli.ok(
            "envelope", "create", str(tmp_path / "r.pdf"), "--message-fd", str(msg_fd),
            "--password-fd", str(pw_fd), "--to", "pat@example.net", "--remember",
            "-o", str(tmp_path / "env.html"), pass_fds=(pw_fd, msg_fd),
        )  # fmt: skip
    finally:
        os.close(pw_fd)
        os.close(msg_fd)
    html = (tmp_path / "env.html").read_bytes()
    assert PW.encode() not in html

    # the remembered password opens it (--from), and --json has the promised shape
    res = cli.ok("envelope", "open", str(tmp_path / "env.html"), "--from", "Pat@example.net",
                 "--json", "-o", str(tmp_path / "out"))  # fmt: skip
    doc = json.loads(res.text)
    assert doc["kind"] == "sealmail-envelope"
    assert doc["message"] == "Dear patient,\nsee attached."
    assert [(f["name"], f["size"]) for f in doc["files"]] == [("r.pdf", 12)]
    assert len(doc["files"][0]["sha256"]) == 64
    assert (tmp_path / "out" / "r.pdf").read_bytes() == b"%PDF results"
    assert (tmp_path / "out" / "message.txt").exists()

    wrong_fd = _fd(b"wrong-password")
    try:
        res = cli("envelope", "open", str(tmp_path / "env.html"), "--password-fd",
                  str(wrong_fd), "-o", str(tmp_path / "w"), pass_fds=(wrong_fd,))  # fmt: skip
    finally:
        os.close(wrong_fd)
    assert res.returncode == 4 and "password is wrong" in res.stderr
    assert not (tmp_path / "w").exists()

    i = html.index(b"</script>") - 30  # inside the payload's last chunk
    tampered = tmp_path / "tampered.html"
    tampered.write_bytes(html[:i] + (b"A" if html[i:i + 1] != b"A" else b"B") + html[i + 1:])  # fmt: skip
    pw_fd = _fd(PW.encode())
    try:
        res = cli("envelope", "open", str(tampered), "--password-fd", str(pw_fd),
                  "-o", str(tmp_path / "t"), pass_fds=(pw_fd,))  # fmt: skip
    finally:
        os.close(pw_fd)
    assert res.returncode == 7 and "modified" in res.stderr
    assert not (tmp_path / "t").exists()

    name, sample = VENDOR_SAMPLES["cisco"]
    (tmp_path / name).write_bytes(sample)
    res = cli("envelope", "open", str(tmp_path / name), "--json")
    assert res.returncode == 5 and "Cisco" in res.stderr and "res.cisco.com" in res.stderr

    pw = cli.ok("envelope", "password").text.strip()
    assert len(pw.split("-")) == 4


def test_envelope_tampered_api(envelope: bytes) -> None:
    i = envelope.index(b"</script>") - 30
    bad = envelope[:i] + (b"A" if envelope[i : i + 1] != b"A" else b"B") + envelope[i + 1 :]
    with pytest.raises(TamperedMessage):
        _open(bad)
