"""PGP/MIME through the ``sealmail`` CLI, judged by the installed gpg — both directions.

Sealmail -> gpg: every message Sealmail writes is decrypted and verified by gpg, for gpg
keys of each family (cv25519, RSA-3072, NIST P-256) and for a key Sealmail generated and
the user took to GnuPG (the SEIPDv2 trap: pysequoia's keys advertise SEIPDv2, which gpg
2.2 cannot read, so Sealmail must write SEIPDv1+MDC).

gpg -> Sealmail: what gpg writes by default (compressed sign+encrypt, ZIP/ZLIB/BZIP2,
armored or binary) opens in Sealmail with the signature verified.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.helpers.gnupg import Gpg
from tests.helpers.messages import (
    body_of,
    extract_part,
    make_message,
    pgp_mime_encrypted,
    pgp_mime_signed,
)

ALICE = "alice@example.org"  # Sealmail user
BOB = "bob@example.net"  # gpg user


def _fpr(cli: Cli, email: str) -> str:
    keys = json.loads(cli.ok("keys", "list", "--json").text)
    return next(k["fingerprint"] for k in keys if k["kind"] == "pgp" and email in k["emails"])


@pytest.fixture
def pair(cli: Cli, gpg: Gpg, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Alice in Sealmail, Bob in gpg, each knowing the other's public key."""
    algo = getattr(request, "param", "ed25519")
    cli.ok("keys", "generate", "--email", ALICE, "--name", "Alice", "--kind", "pgp")
    gpg.generate(f"Bob <{BOB}>", algo)
    (tmp_path / "bob.asc").write_bytes(gpg.export(BOB))
    cli.ok("keys", "import", str(tmp_path / "bob.asc"))
    gpg.import_key(cli.ok("keys", "export", _fpr(cli, ALICE)).stdout)
    return cli, gpg


@pytest.mark.parametrize("pair", ["ed25519", "rsa3072", "nistp256"], indirect=True)
@pytest.mark.parametrize("sign", [False, True])
def test_sealmail_to_gpg(pair, tmp_path: Path, sign: bool) -> None:  # type: ignore[no-untyped-def]
    cli, gpg = pair
    attachment = os.urandom(300_000)
    src = tmp_path / "in.eml"
    src.write_bytes(
        make_message(ALICE, BOB, attachments=[("empty.bin", b""), ("scan.pdf", attachment)])
    )
    args = ["message", "encrypt", str(src), "--to", BOB, "-o", str(tmp_path / "out.eml")]
    cli.ok(*args, *(["--sign"] if sign else []))
    out = (tmp_path / "out.eml").read_bytes()
    assert b"Laborergebnis" not in out and b"results are attached" not in out
    ciphertext = extract_part(out, 1)
    res = gpg.run("--decrypt", input=ciphertext)
    assert res.returncode == 0, res.stderr
    assert res.has("DECRYPTION_OKAY") and res.has("GOODMDC")
    assert "not integrity protected" not in res.stderr
    assert res.has("GOODSIG") == sign and res.has("VALIDSIG") == sign
    text, files = body_of(res.stdout)
    assert "Grüße aus der Praxis" in text
    assert files == [("empty.bin", b""), ("scan.pdf", attachment)]
    # RFC 9788: the real subject travels inside only
    assert b"Subject: [...]" in out
    assert b"Laborergebnis" in res.stdout or b"=?utf-8?" in res.stdout


def test_sealmail_signed_only_verifies_in_gpg(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli, gpg = pair
    src = tmp_path / "in.eml"
    src.write_bytes(make_message(ALICE, BOB, body="Zeile mit Leerzeichen am Ende   \nFrom here\n"))
    cli.ok("message", "sign", str(src), "--from", ALICE, "-o", str(tmp_path / "out.eml"))
    out = (tmp_path / "out.eml").read_bytes()
    # the first part, byte-exact (CRLF), is what the detached signature covers
    import email as _email

    boundary = _email.message_from_bytes(out).get_boundary()
    assert boundary
    body = out.split(b"\r\n\r\n", 1)[1]
    delim = b"--" + boundary.encode()
    signed = body.split(delim + b"\r\n", 1)[1].split(b"\r\n" + delim, 1)[0]
    sig = extract_part(out, 1)
    (tmp_path / "data").write_bytes(signed)
    (tmp_path / "sig.asc").write_bytes(sig)
    res = gpg.run("--verify", str(tmp_path / "sig.asc"), str(tmp_path / "data"))
    assert res.has("GOODSIG") and res.has("VALIDSIG"), res.stderr
    # Sealmail verifies its own message too
    report = json.loads(cli.ok("message", "verify", str(tmp_path / "out.eml"), "--json").text)
    assert [s["status"] for s in report["signatures"]] == ["good"]


def test_sealmail_made_key_taken_to_gnupg(cli_factory, gpg: Gpg, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A key made by Sealmail, moved to GnuPG, must still read mail other Sealmails send it."""
    from keystore.store import Keystore

    alice, sender = cli_factory("alice"), cli_factory("sender")
    alice.ok("keys", "generate", "--email", ALICE, "--kind", "pgp")
    sender.ok("keys", "generate", "--email", "carol@example.com", "--kind", "pgp")
    fpr = _fpr(alice, ALICE)
    store = Keystore.open(alice.profile, passphrase="profile passphrase for tests")
    try:
        gpg.import_key(store.export_secret_pgp(fpr))
        (tmp_path / "alice.asc").write_bytes(store.export_public(fpr))
    finally:
        store.close()
    sender.ok("keys", "import", str(tmp_path / "alice.asc"))
    gpg.import_key(sender.ok("keys", "export", _fpr(sender, "carol@example.com")).stdout)
    src = tmp_path / "in.eml"
    src.write_bytes(make_message("carol@example.com", ALICE))
    # encrypted only to Alice's Sealmail-made key (plus the sender's own, also Sealmail-made)
    sender.ok(
        "message", "encrypt", str(src), "--to", ALICE, "--sign", "-o", str(tmp_path / "o.eml")
    )
    res = gpg.run("--decrypt", input=extract_part((tmp_path / "o.eml").read_bytes(), 1))
    assert res.returncode == 0 and res.has("DECRYPTION_OKAY"), res.stderr
    assert res.has("GOODMDC") and res.has("VALIDSIG")
    assert "unknown version" not in res.stderr


@pytest.mark.parametrize("compress", ["zip", "zlib", "bzip2", "uncompressed"])
@pytest.mark.parametrize("armor", [True, False])
def test_gpg_to_sealmail(pair, tmp_path: Path, compress: str, armor: bool) -> None:  # type: ignore[no-untyped-def]
    cli, gpg = pair
    inner = make_message(BOB, ALICE, attachments=[("big.bin", os.urandom(1_000_000))])
    args = ["--sign", "--encrypt", "-r", ALICE, "-u", BOB, "--compress-algo", compress]
    res = gpg.check(*args, *(["--armor"] if armor else []), input=inner)
    payload = res.stdout if armor else base64.encodebytes(res.stdout)
    msg = pgp_mime_encrypted(f"From: {BOB}\nTo: {ALICE}\nSubject: [...]", payload)
    if not armor:
        msg = msg.replace(
            b"Content-Type: application/octet-stream\r\n",
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n",
        )
    (tmp_path / "in.eml").write_bytes(msg)
    out = tmp_path / "out.eml"
    report = json.loads(
        cli.ok("message", "decrypt", str(tmp_path / "in.eml"), "-o", str(out), "--json").text
    )
    assert report["encrypted"] and report["method"] == "pgp"
    assert [s["status"] for s in report["signatures"]] == ["good"]
    assert report["signatures"][0]["signer"] == BOB
    assert body_of(out.read_bytes()) == body_of(inner)
    # a file is opened by streaming (but bzip2), standard input in memory: the same result
    mem = tmp_path / "mem.eml"
    same = json.loads(cli.ok("message", "decrypt", "-", "-o", str(mem), "--json", input=msg).text)
    assert same == report
    assert mem.read_bytes() == out.read_bytes()


def test_gpg_detached_signature_verifies(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli, gpg = pair
    part = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nSigned by gpg.\r\n"
    sig = gpg.check("--detach-sign", "--armor", "-u", BOB, input=part).stdout
    msg = pgp_mime_signed(f"From: {BOB}\nTo: {ALICE}\nSubject: hi", part, sig, "pgp-sha256")
    (tmp_path / "s.eml").write_bytes(msg)
    report = json.loads(cli.ok("message", "verify", str(tmp_path / "s.eml"), "--json").text)
    assert [(s["status"], s["signer"]) for s in report["signatures"]] == [("good", BOB)]
    # one changed byte in the signed part: bad
    (tmp_path / "t.eml").write_bytes(msg.replace(b"Signed by gpg.", b"Signed by gpG."))
    res = cli("message", "verify", str(tmp_path / "t.eml"), "--json")
    assert res.returncode != 0
    assert [s["status"] for s in json.loads(res.text)["signatures"]] == ["bad"]


def test_unknown_signer_and_mismatch(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli, gpg = pair
    stranger = Gpg()
    try:
        stranger.generate("Mallory <mallory@evil.example>")
        part = b"Content-Type: text/plain\r\n\r\nPay this invoice.\r\n"
        sig = stranger.check("--detach-sign", "--armor", input=part).stdout
        msg = pgp_mime_signed(f"From: {BOB}\nTo: {ALICE}\nSubject: x", part, sig, "pgp-sha256")
        (tmp_path / "u.eml").write_bytes(msg)
        report = json.loads(cli("message", "verify", str(tmp_path / "u.eml"), "--json").text)
        assert [s["status"] for s in report["signatures"]] == ["unknown-key"]
        # Bob's real key, but the From says somebody else: signer-mismatch
        sig = gpg.check("--detach-sign", "--armor", "-u", BOB, input=part).stdout
        msg = pgp_mime_signed(f"From: ceo@example.org\nTo: {ALICE}", part, sig, "pgp-sha256")
        (tmp_path / "m.eml").write_bytes(msg)
        res = cli("message", "verify", str(tmp_path / "m.eml"), "--json")
        assert res.returncode != 0
        assert [s["status"] for s in json.loads(res.text)["signatures"]] == ["signer-mismatch"]
    finally:
        stranger.close()


def test_tampered_ciphertext_releases_nothing(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli, gpg = pair
    inner = make_message(BOB, ALICE)
    ct = gpg.check("--encrypt", "-r", ALICE, "--compress-algo", "none", input=inner).stdout
    for pos in (len(ct) // 2, len(ct) - 5):  # inside the ciphertext, inside the MDC
        bad = bytearray(ct)
        bad[pos] ^= 0x01
        msg = pgp_mime_encrypted(f"From: {BOB}\nTo: {ALICE}", base64.encodebytes(bytes(bad)))
        msg = msg.replace(
            b"Content-Type: application/octet-stream\r\n",
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n",
        )
        (tmp_path / "x.eml").write_bytes(msg)
        out = tmp_path / "x.out"
        res = cli("message", "decrypt", str(tmp_path / "x.eml"), "-o", str(out))
        assert res.returncode != 0
        assert res.stderr.startswith("error: ")
        assert "Traceback" not in res.stderr
        assert not out.exists()


@pytest.mark.slow
def test_20_mb_attachment_both_ways(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cli, gpg = pair
    big = os.urandom(20 * 1024 * 1024)
    src = tmp_path / "in.eml"
    src.write_bytes(make_message(ALICE, BOB, attachments=[("mri.dcm", big)]))
    cli.ok("message", "encrypt", str(src), "--to", BOB, "--sign", "-o", str(tmp_path / "o.eml"))
    res = gpg.run("--decrypt", input=extract_part((tmp_path / "o.eml").read_bytes(), 1))
    assert res.has("DECRYPTION_OKAY") and res.has("GOODSIG"), res.stderr
    assert body_of(res.stdout)[1] == [("mri.dcm", big)]
    inner = make_message(BOB, ALICE, attachments=[("mri.dcm", big)])
    ct = gpg.check("--sign", "--encrypt", "--armor", "-r", ALICE, "-u", BOB, input=inner).stdout
    (tmp_path / "g.eml").write_bytes(pgp_mime_encrypted(f"From: {BOB}\nTo: {ALICE}", ct))
    report = json.loads(
        cli.ok(
            "message", "decrypt", str(tmp_path / "g.eml"), "-o", str(tmp_path / "d.eml"), "--json"
        ).text
    )
    assert [s["status"] for s in report["signatures"]] == ["good"]
    assert body_of((tmp_path / "d.eml").read_bytes())[1] == [("mri.dcm", big)]


def test_gpg_cleartext_signed_mail_verifies_and_shows_the_text(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Inline ``gpg --clearsign`` in a text/plain body: good signature, dash-escaped lines
    shown as written, and a message stuffed with extra BEGIN markers before it still opens."""
    from client.crypto import pgpsig

    cli, gpg = pair
    text = b"Results attached.\r\n- a line gpg dash-escapes\r\n-----not armor\r\nBye"
    signed = gpg.check("--clearsign", "-u", BOB, input=text).stdout
    shown, sig = pgpsig.split_cleartext(signed)
    assert shown.replace(b"\r\n", b"\n") == text.replace(b"\r\n", b"\n")
    assert sig.startswith(b"-----BEGIN PGP SIGNATURE-----")
    assert sig.endswith(b"-----END PGP SIGNATURE-----")
    # quoted damaged frames before the real one: the first well-formed frame is used
    stuffed = b"-----BEGIN PGP SIGNED MESSAGE-----\n" * 3 + signed
    assert pgpsig.split_cleartext(stuffed) == pgpsig.split_cleartext(signed)
    msg = make_message(BOB, ALICE, body=signed.decode())
    (tmp_path / "c.eml").write_bytes(msg)
    report = json.loads(cli.ok("message", "verify", str(tmp_path / "c.eml"), "--json").text)
    assert [(s["status"], s["signer"]) for s in report["signatures"]] == [("good", BOB)]
    (tmp_path / "d.eml").write_bytes(msg.replace(b"Results attached.", b"Results attacked."))
    res = cli("message", "verify", str(tmp_path / "d.eml"), "--json")
    assert [s["status"] for s in json.loads(res.text)["signatures"]] == ["bad"]


@pytest.mark.parametrize("algo", ["ed25519", "rsa3072", "nistp256"])
def test_streamed_signature_from_a_gnupg_key_verifies_in_gpg(
    cli: Cli, gpg: Gpg, tmp_path: Path, algo: str
) -> None:
    """`message encrypt --sign` of a file streams it, signing with Sealmail's own signature
    code (client.crypto.pgpsign) for every key family, also with a passphrase-protected
    key from GnuPG; gpg must verify it and get the exact inner entity prepare() builds."""
    from datetime import UTC, datetime

    from client.mime import compose

    alice_gpg = Gpg()
    try:
        alice_fpr = alice_gpg.generate(f"Alice <{ALICE}>", algo, passphrase="alice pw")
        (tmp_path / "alice-sec.asc").write_bytes(
            alice_gpg.run("--export-secret-keys", "-a", ALICE, passphrase="alice pw").stdout
        )
    finally:
        alice_gpg.close()
    cli.ok("keys", "import", str(tmp_path / "alice-sec.asc"), "--passphrase-fd", "0",
           input=b"alice pw")  # fmt: skip
    gpg.generate(f"Bob <{BOB}>")
    (tmp_path / "bob.asc").write_bytes(gpg.export(BOB))
    cli.ok("keys", "import", str(tmp_path / "bob.asc"))
    gpg.import_key(cli.ok("keys", "export", _fpr(cli, ALICE)).stdout)

    attachment = os.urandom(3 << 20)  # several 1 MiB partial-length chunks
    src = tmp_path / "in.eml"
    src.write_bytes(make_message(ALICE, BOB, attachments=[("scan.pdf", attachment)]))
    cli.ok("message", "encrypt", str(src), "--to", BOB, "--sign", "-o", str(tmp_path / "out.eml"))
    res = gpg.run("--decrypt", input=extract_part((tmp_path / "out.eml").read_bytes(), 1))
    assert res.returncode == 0, res.stderr
    assert res.has("GOODMDC") and res.has("GOODSIG")
    valid = [line.split() for line in res.status if line.split()[1:2] == ["VALIDSIG"]]
    assert [v[2] for v in valid] == [alice_fpr]
    now = datetime.now(UTC)
    expected = compose.prepare(src.read_bytes(), encrypt=True, now=now, rng=os.urandom).inner
    assert res.stdout == expected  # make_message sets Date and Message-ID: no rng is used
