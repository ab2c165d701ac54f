"""S/MIME through the ``sealmail`` CLI, judged by the installed ``openssl cms`` — both ways.

Identities come from a test PKI (root -> intermediate -> leaves) as PKCS#12 files made by
``openssl pkcs12`` (so the import path is exercised too); the root is imported with
``--trust``. Sealmail -> openssl: encrypt (+sign) to RSA, P-256 and P-384 recipients and
let openssl decrypt and verify the chain. openssl -> Sealmail: openssl signs and/or
encrypts (CBC, GCM, OAEP) and Sealmail opens it and reports the signature.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.helpers.messages import body_of, make_message
from tests.helpers.pki import Leaf, Pki, make_pki, write_pem

ALICE = "alice@example.org"  # Sealmail user
BOB = "bob@example.net"  # openssl user
P12_PASS = "p12-pass"


def openssl(*args: str, input: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def _p12(leaf: Leaf, tmp: Path, name: str, legacy: bool = False) -> Path:
    key = write_pem(tmp / f"{name}.key", leaf.key)
    cert = write_pem(tmp / f"{name}.crt", leaf.cert)
    chain = write_pem(tmp / f"{name}.chain", *leaf.chain)
    out = tmp / f"{name}.p12"
    openssl(
        "pkcs12", "-export", "-inkey", str(key), "-in", str(cert), "-certfile", str(chain),
        "-passout", f"pass:{P12_PASS}", "-out", str(out), *(["-legacy"] if legacy else []),
    )  # fmt: skip
    return out


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def _setup(cli: Cli, pki: Pki, tmp: Path, alice_type: str, bob_type: str) -> tuple[Leaf, Leaf]:
    alice = pki.leaf(ALICE, alice_type)  # type: ignore[arg-type]
    bob = pki.leaf(BOB, bob_type)  # type: ignore[arg-type]
    write_pem(tmp / "root.pem", pki.root)
    cli.ok("keys", "import", str(tmp / "root.pem"), "--trust")
    cli.ok(
        "keys", "import", str(_p12(alice, tmp, "alice")),
        "--passphrase-fd", "0", input=P12_PASS.encode(),
    )  # fmt: skip
    write_pem(tmp / "bob.pem", bob.cert)
    cli.ok("keys", "import", str(tmp / "bob.pem"))
    write_pem(tmp / "bob.key", bob.key)
    write_pem(tmp / "chain.pem", pki.intermediate)
    return alice, bob


@pytest.mark.parametrize("bob_type", ["rsa2048", "p256", "p384"])
@pytest.mark.parametrize("sign", [False, True])
def test_sealmail_to_openssl(cli: Cli, pki: Pki, tmp_path: Path, bob_type: str, sign: bool) -> None:
    _setup(cli, pki, tmp_path, "rsa2048", bob_type)
    payload = os.urandom(200_000)
    (tmp_path / "in.eml").write_bytes(make_message(ALICE, BOB, attachments=[("x.bin", payload)]))
    out = tmp_path / "out.eml"
    args = ["message", "encrypt", str(tmp_path / "in.eml"), "--to", BOB, "--method", "smime"]
    cli.ok(*args, *(["--sign"] if sign else []), "-o", str(out))
    assert b"results are attached" not in out.read_bytes()
    inner = openssl(
        "cms", "-decrypt", "-in", str(out), "-recip", str(tmp_path / "bob.pem"),
        "-inkey", str(tmp_path / "bob.key"),
    )  # fmt: skip
    if sign:
        (tmp_path / "signed.eml").write_bytes(inner)
        inner = openssl(
            "cms", "-verify", "-in", str(tmp_path / "signed.eml"),
            "-CAfile", str(tmp_path / "root.pem"), "-purpose", "smimesign",
        )  # fmt: skip
    text, files = body_of(inner)
    assert "Grüße aus der Praxis" in text
    assert files == [("x.bin", payload)]


def test_sealmail_signed_only_to_openssl(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    _setup(cli, pki, tmp_path, "p256", "rsa2048")
    (tmp_path / "in.eml").write_bytes(make_message(ALICE, BOB, body="Trailing space   \nFrom x\n"))
    out = tmp_path / "out.eml"
    cli.ok("message", "sign", str(tmp_path / "in.eml"), "--from", ALICE, "--method", "smime",
           "-o", str(out))  # fmt: skip
    inner = openssl("cms", "-verify", "-in", str(out), "-CAfile", str(tmp_path / "root.pem"))
    assert "Trailing space" in body_of(inner)[0]
    report = json.loads(cli.ok("message", "verify", str(out), "--json").text)
    assert [(s["status"], s["signer"]) for s in report["signatures"]] == [("good", ALICE)]


def _bob_signs(tmp: Path, inner: bytes) -> None:
    """``openssl cms -sign`` of ``inner`` by Bob (with the chain) -> tmp/signed.eml."""
    (tmp / "inner.eml").write_bytes(inner)
    signed = openssl(
        "cms", "-sign", "-in", str(tmp / "inner.eml"), "-signer", str(tmp / "bob.pem"),
        "-inkey", str(tmp / "bob.key"), "-certfile", str(tmp / "chain.pem"),
    )  # fmt: skip
    (tmp / "signed.eml").write_bytes(signed)


@pytest.mark.parametrize(
    "cipher,oaep",
    [("-aes256", False), ("-aes128", True), ("-aes-256-gcm", False), ("-des3", False)],
)
def test_openssl_to_sealmail(cli: Cli, pki: Pki, tmp_path: Path, cipher: str, oaep: bool) -> None:
    alice, _bob = _setup(cli, pki, tmp_path, "rsa2048", "p256")
    write_pem(tmp_path / "alice.pem", alice.cert)
    inner = make_message(BOB, ALICE, attachments=[("a.bin", os.urandom(50_000))])
    _bob_signs(tmp_path, inner)
    extra = ["-keyopt", "rsa_padding_mode:oaep"] if oaep else []
    enc = openssl(
        "cms", "-encrypt", "-in", str(tmp_path / "signed.eml"), cipher,
        "-from", BOB, "-to", ALICE, "-subject", "[...]",
        "-recip", str(tmp_path / "alice.pem"), *extra,
    )  # fmt: skip
    (tmp_path / "enc.eml").write_bytes(enc)
    out = tmp_path / "out.eml"
    report = json.loads(
        cli.ok("message", "decrypt", str(tmp_path / "enc.eml"), "-o", str(out), "--json").text
    )
    assert report["encrypted"] and report["method"] == "smime"
    assert [(s["status"], s["signer"]) for s in report["signatures"]] == [("good", BOB)]
    assert body_of(out.read_bytes()) == body_of(inner)


def test_openssl_signature_untrusted_and_tampered(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    _setup(cli, pki, tmp_path, "rsa2048", "rsa2048")
    other = make_pki()  # a CA Sealmail does not trust
    eve = other.leaf("eve@example.com", "p256")
    write_pem(tmp_path / "eve.pem", eve.cert)
    write_pem(tmp_path / "eve.key", eve.key)
    (tmp_path / "inner.eml").write_bytes(make_message("eve@example.com", ALICE))
    signed = openssl(
        "cms", "-sign", "-in", str(tmp_path / "inner.eml"), "-signer", str(tmp_path / "eve.pem"),
        "-inkey", str(tmp_path / "eve.key"),
    )  # fmt: skip
    (tmp_path / "s.eml").write_bytes(signed)
    res = cli("message", "verify", str(tmp_path / "s.eml"), "--json")
    assert res.returncode != 0
    assert [s["status"] for s in json.loads(res.text)["signatures"]] == ["untrusted"]
    tampered = signed.replace(b"results are attached", b"results are attacked")
    assert tampered != signed
    (tmp_path / "t.eml").write_bytes(tampered)
    res = cli("message", "verify", str(tmp_path / "t.eml"), "--json")
    assert [s["status"] for s in json.loads(res.text)["signatures"]] == ["bad"]


def test_legacy_p12_import_and_decrypt(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    alice = pki.leaf(ALICE, "rsa2048")
    cli.ok("keys", "import", str(_p12(alice, tmp_path, "legacy", legacy=True)),
           "--passphrase-fd", "0", input=P12_PASS.encode())  # fmt: skip
    write_pem(tmp_path / "alice.pem", alice.cert)
    (tmp_path / "m.eml").write_bytes(make_message(BOB, ALICE))
    enc = openssl("cms", "-encrypt", "-in", str(tmp_path / "m.eml"), "-aes256",
                  "-recip", str(tmp_path / "alice.pem"))  # fmt: skip
    (tmp_path / "enc.eml").write_bytes(enc)
    res = cli.ok("message", "decrypt", str(tmp_path / "enc.eml"))
    assert "Grüße aus der Praxis" in body_of(res.stdout)[0]
    # wrong passphrase for a PKCS#12: a clear error, exit 4, nothing imported
    other = cli("keys", "import", str(tmp_path / "legacy.p12"), "--passphrase-fd", "0",
                input=b"wrong")  # fmt: skip
    assert other.returncode == 4 and other.stderr.startswith("error: ")


def test_sha1_signature_is_refused_by_policy(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    _setup(cli, pki, tmp_path, "rsa2048", "rsa2048")
    (tmp_path / "inner.eml").write_bytes(make_message(BOB, ALICE))
    for md, expected in (("sha256", "good"), ("sha1", "bad")):
        signed = openssl(
            "cms", "-sign", "-md", md, "-from", BOB, "-in", str(tmp_path / "inner.eml"),
            "-signer", str(tmp_path / "bob.pem"), "-inkey", str(tmp_path / "bob.key"),
            "-certfile", str(tmp_path / "chain.pem"),
        )  # fmt: skip
        (tmp_path / f"{md}.eml").write_bytes(signed)
        report = json.loads(cli("message", "verify", str(tmp_path / f"{md}.eml"), "--json").text)
        assert [s["status"] for s in report["signatures"]] == [expected], md
        if expected == "bad":
            assert "no longer accepted" in report["signatures"][0]["detail"]


@pytest.mark.slow
def test_20_mb_attachment_both_ways(cli: Cli, pki: Pki, tmp_path: Path) -> None:
    alice, _ = _setup(cli, pki, tmp_path, "p256", "rsa2048")
    big = os.urandom(20 * 1024 * 1024)
    (tmp_path / "in.eml").write_bytes(make_message(ALICE, BOB, attachments=[("ct.dcm", big)]))
    out = tmp_path / "out.eml"
    cli.ok("message", "encrypt", str(tmp_path / "in.eml"), "--to", BOB, "--method", "smime",
           "--sign", "-o", str(out))  # fmt: skip
    (tmp_path / "signed.eml").write_bytes(openssl(
        "cms", "-decrypt", "-in", str(out), "-recip", str(tmp_path / "bob.pem"),
        "-inkey", str(tmp_path / "bob.key"),
    ))  # fmt: skip
    inner = openssl("cms", "-verify", "-in", str(tmp_path / "signed.eml"),
                    "-CAfile", str(tmp_path / "root.pem"))  # fmt: skip
    assert body_of(inner)[1] == [("ct.dcm", big)]
    write_pem(tmp_path / "alice.pem", alice.cert)
    enc = openssl("cms", "-encrypt", "-aes-256-gcm", "-in", str(tmp_path / "in.eml"),
                  "-recip", str(tmp_path / "alice.pem"))  # fmt: skip
    (tmp_path / "enc.eml").write_bytes(enc)
    res = cli.ok("message", "decrypt", str(tmp_path / "enc.eml"), "-o", str(tmp_path / "d.eml"))
    assert res.returncode == 0
    assert body_of((tmp_path / "d.eml").read_bytes())[1] == [("ct.dcm", big)]


@pytest.mark.parametrize("alice_type", ["rsa2048", "p256"])  # OpenSSL 3.0 cannot verify Ed25519 CMS
def test_streamed_sign_encrypt_opens_in_openssl_to_the_in_memory_entity(
    cli: Cli, pki: Pki, tmp_path: Path, alice_type: str
) -> None:
    """`message encrypt --method smime --sign` of a file streams it: one pass hashes the
    inner entity for the detached signature, the next frames and encrypts it (DER with
    definite lengths computed in advance). openssl must decrypt and verify it, and the
    signed entity must be byte for byte the one compose.prepare() builds in memory."""
    from datetime import UTC, datetime

    from client.mime import compose

    _setup(cli, pki, tmp_path, alice_type, "rsa2048")
    src = tmp_path / "in.eml"
    src.write_bytes(make_message(ALICE, BOB, attachments=[("scan.bin", os.urandom(3 << 20))]))
    out = tmp_path / "out.eml"
    cli.ok("message", "encrypt", str(src), "--to", BOB, "--method", "smime", "--sign",
           "-o", str(out))  # fmt: skip
    decrypted = openssl(
        "cms", "-decrypt", "-in", str(out), "-recip", str(tmp_path / "bob.pem"),
        "-inkey", str(tmp_path / "bob.key"),
    )  # fmt: skip
    (tmp_path / "signed.eml").write_bytes(decrypted)
    assert b"micalg=sha-256" in decrypted.split(b"\r\n\r\n", 1)[0]
    verified = openssl(
        "cms", "-verify", "-in", str(tmp_path / "signed.eml"),
        "-CAfile", str(tmp_path / "root.pem"), "-purpose", "smimesign",
    )  # fmt: skip
    expected = compose.prepare(src.read_bytes(), encrypt=True, now=datetime.now(UTC),
                               rng=os.urandom).inner  # fmt: skip
    # openssl hashed the CRLF form (our bytes) and writes the content in text mode
    assert verified.replace(b"\r\n", b"\n") == expected.replace(b"\r\n", b"\n")


def test_decrypt_of_a_file_streams_and_agrees_with_stdin(
    cli: Cli, pki: Pki, tmp_path: Path
) -> None:
    """``message decrypt FILE -o OUT`` opens the file in passes (client/crypto/streamopen);
    from stdin the message is opened in memory. Both give the same message and report."""
    alice, _bob = _setup(cli, pki, tmp_path, "rsa2048", "p256")
    inner = make_message(BOB, ALICE, attachments=[("scan.bin", os.urandom(300_000))])
    _bob_signs(tmp_path, inner)
    alice_pem = write_pem(tmp_path / "alice-cert.pem", alice.cert)
    enc = openssl("cms", "-encrypt", "-in", str(tmp_path / "signed.eml"), "-aes256",
                  "-from", BOB, "-to", ALICE, "-recip", str(alice_pem))  # fmt: skip
    (tmp_path / "enc.eml").write_bytes(enc)
    decrypt = ["message", "decrypt", "--json", "-o"]
    streamed = json.loads(cli.ok(*decrypt, str(tmp_path / "a.eml"), str(tmp_path / "enc.eml")).text)
    in_memory = json.loads(cli.ok(*decrypt, str(tmp_path / "b.eml"), "-", input=enc).text)
    assert streamed == in_memory
    assert [(s["status"], s["signer"]) for s in streamed["signatures"]] == [("good", BOB)]
    assert (tmp_path / "a.eml").read_bytes() == (tmp_path / "b.eml").read_bytes()
    assert body_of((tmp_path / "a.eml").read_bytes()) == body_of(inner)
