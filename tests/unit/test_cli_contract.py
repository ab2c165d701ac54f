"""The ``sealmail`` CLI contract: exit codes, one-line errors, JSON shapes, no partial output."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import Cli
from tests.helpers.messages import make_message

KEY_FIELDS = {"fingerprint", "kind", "emails", "secret", "expires"}


def test_help_and_version(cli: Cli) -> None:
    assert cli.ok("--version").text.startswith("sealmail ")
    helptext = cli.ok("--help").text
    for command in ("keys", "message"):
        assert command in helptext


def test_keys_generate_list_export(cli: Cli, tmp_path: Path) -> None:
    out = json.loads(
        cli.ok("keys", "generate", "--email", "a@example.org", "--kind", "pgp", "--json").text
    )
    assert set(out) == {"fingerprint"}
    fpr = out["fingerprint"]
    cli.ok("keys", "generate", "--email", "a@example.org", "--kind", "smime")
    keys = json.loads(cli.ok("keys", "list", "--json").text)
    assert {k["kind"] for k in keys} == {"pgp", "x509"}
    for k in keys:
        assert KEY_FIELDS <= set(k)
        assert k["emails"] == ["a@example.org"] and k["secret"] is True
    exported = cli.ok("keys", "export", fpr).stdout
    assert exported.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert b"PRIVATE" not in exported
    x509 = next(k["fingerprint"] for k in keys if k["kind"] == "x509")
    cli.ok("keys", "export", x509, "-o", str(tmp_path / "c.pem"))
    assert (tmp_path / "c.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")


def test_errors_are_one_line_with_hint_and_write_nothing(cli: Cli, tmp_path: Path) -> None:
    plain = tmp_path / "plain.eml"
    plain.write_bytes(make_message("a@example.org", "b@example.org"))
    out = tmp_path / "out.eml"
    res = cli("message", "decrypt", str(plain), "-o", str(out))
    assert res.returncode not in (0, 70)
    lines = res.stderr.splitlines()
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    assert not out.exists()
    res = cli("keys", "export", "ABCDEF0123456789ABCDEF")
    assert res.returncode == 3 and res.stderr.startswith("error: ")
    res = cli("message", "decrypt", str(plain), "--json")
    assert res.returncode == 2 and "-o OUT" in res.stderr
    res = cli("message", "encrypt", str(plain), "--to", "nobody@example.org", "-o", str(out))
    assert res.returncode == 3 and "nobody@example.org" in res.stderr
    assert not out.exists()
    res = cli("keys", "import", str(tmp_path / "missing.asc"))
    assert res.returncode == 2 and "cannot read" in res.stderr


def test_garbage_input_is_a_clear_error_not_a_crash(cli: Cli, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    cases = {
        "random": os.urandom(4096),
        "pgp-armor": b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=x\n\n--x\n\nVersion: 1\n--x\n\n-----BEGIN PGP MESSAGE-----\n\nAAAA\n-----END PGP MESSAGE-----\n--x--\n',
        "smime": b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\nContent-Transfer-Encoding: base64\n\nMIIBAAAA\n",
        "key": b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nxsBNBFxx\n-----END PGP PUBLIC KEY BLOCK-----\n",
    }
    for name, data in cases.items():
        junk.write_bytes(data)
        for args in (
            ("message", "decrypt", str(junk)),
            ("message", "verify", str(junk)),
            ("keys", "import", str(junk)),
        ):
            res = cli(*args)
            assert res.returncode not in (0, 70), (name, args, res.stderr)
            assert res.stderr.startswith("error: "), (name, args, res.stderr)
            assert "Traceback" not in res.stderr


def test_profile_passphrase_protects_the_profile(cli: Cli) -> None:
    cli.ok("keys", "generate", "--email", "a@example.org", "--kind", "pgp")
    res = cli("keys", "generate", "--email", "b@example.org", "--kind", "pgp",
              env={"SEALMAIL_PROFILE_PASSPHRASE": "wrong"})  # fmt: skip
    assert res.returncode == 4 and res.stderr.startswith("error: ")
    env = {k: v for k, v in cli.env.items() if k != "SEALMAIL_PROFILE_PASSPHRASE"}
    saved, cli.env = cli.env, env
    try:
        res = cli("keys", "generate", "--email", "c@example.org", "--kind", "pgp")
    finally:
        cli.env = saved
    assert res.returncode == 3 and "SEALMAIL_PROFILE_PASSPHRASE" in res.stderr
