"""``sealmail keys`` revoke/expire/delete/status/discover/export-identity as a real process."""

from __future__ import annotations

import datetime as dt
import json
import os
import struct
from pathlib import Path

import pytest

from keystore import bundle
from keystore.errors import BadPassword, InvalidKeyMaterial
from keystore.secrets import KdfParams
from tests.conftest import Cli

PW = {"SEALMAIL_PASSPHRASE": "bundle passphrase"}


def _gen(cli: Cli, email: str = "alice@example.org") -> str:
    out = cli.ok("keys", "generate", "--email", email, "--kind", "pgp", "--json")
    return str(json.loads(out.stdout)["fingerprint"])


def test_revoke_expire_delete(cli: Cli, tmp_path: Path) -> None:
    fpr = _gen(cli)
    res = cli.ok("keys", "expire", fpr, "--in", "10", "--json")
    expires = dt.datetime.fromisoformat(json.loads(res.stdout)["expires"])
    assert dt.timedelta(days=9) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(days=10)
    never = json.loads(cli.ok("keys", "expire", fpr, "--never", "--json").stdout)
    assert never["expires"] is None
    rev = cli.ok("keys", "revoke", fpr, "-o", str(tmp_path / "rev.asc"))
    assert "revoked" in rev.text
    assert (tmp_path / "rev.asc").read_bytes().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK")
    listed = json.loads(cli.ok("keys", "list", "--json").stdout)
    assert listed[0]["revoked"] is True
    st = json.loads(cli.ok("keys", "status", "alice@example.org", "--json").stdout)
    assert not st["usable"] and any("revoked" in r for r in st["reasons"])
    refused = cli("keys", "delete", fpr)
    assert refused.returncode == 2 and "--secret" in refused.stderr
    cli.ok("keys", "delete", fpr, "--secret")
    assert json.loads(cli.ok("keys", "list", "--json").stdout) == []


def test_status_json_shape(cli: Cli, cli_factory: object, tmp_path: Path) -> None:
    other = Cli(tmp_path / "other")
    fpr = _gen(other, "bob@example.org")
    (tmp_path / "bob.asc").write_bytes(other.ok("keys", "export", fpr).stdout)
    cli.ok("keys", "import", str(tmp_path / "bob.asc"))
    st = json.loads(cli.ok("keys", "status", "Bob@Example.org", "--json").stdout)
    assert st["email"] == "bob@example.org" and st["usable"] and st["confirmed"]
    assert st["methods"][0]["method"] == "pgp" and st["methods"][0]["fingerprint"] == fpr
    assert st["changed_key"] is False and st["discovered_only"] is False
    none = json.loads(cli.ok("keys", "status", "nobody@example.org", "--json").stdout)
    assert none["usable"] is False and none["reasons"]


def test_discover_failure_is_typed_and_cached(cli: Cli) -> None:
    first = cli("keys", "discover", "someone@sealmail-test.invalid", "--timeout", "3")
    assert first.returncode == 3, first.stderr
    assert first.stderr.startswith("error: ") and "hint: " in first.stderr
    again = cli("keys", "discover", "someone@sealmail-test.invalid")
    assert again.returncode == 3 and "cached" in again.stderr


def test_identity_bundle_round_trip(cli: Cli, tmp_path: Path) -> None:
    fpr = _gen(cli)
    cli.ok("keys", "generate", "--email", "alice@example.org", "--kind", "smime")
    out = tmp_path / "me.sealid"
    cli.ok("keys", "export-identity", "-o", str(out), env=PW)
    blob = out.read_bytes()
    assert blob.startswith(bundle.MAGIC) and b"PRIVATE" not in blob
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    second = Cli(tmp_path / "device2")
    wrong = second("keys", "import-identity", str(out), env={"SEALMAIL_PASSPHRASE": "nope"})
    assert wrong.returncode == 4
    r, w = os.pipe()
    os.write(w, b"bundle passphrase\n")
    os.close(w)
    try:
        got = json.loads(
            second.ok(
                "keys",
                "import-identity",
                str(out),
                "--passphrase-fd",
                str(r),
                "--json",
                pass_fds=(r,),
            ).stdout
        )
    finally:
        os.close(r)
    assert {i["kind"] for i in got} == {"pgp", "x509"} and all(i["secret"] for i in got)
    assert fpr in {i["fingerprint"] for i in got}
    # the S/MIME self-signed certificate stays pinned, so it validates on the new device
    st = json.loads(second.ok("keys", "status", "alice@example.org", "--json").stdout)
    assert {m["method"] for m in st["methods"]} == {"pgp", "smime"}


def test_bundle_format_refuses_tampering_and_hostile_parameters() -> None:
    now = dt.datetime.now(dt.UTC)
    item = bundle.BundleItem("pgp", "AB", secret=b"x", password=None)
    blob = bundle.seal_bundle([item], b"pw", now=now, kdf=KdfParams(n=2**10))
    assert bundle.open_bundle(blob, b"pw") == [item]
    with pytest.raises(BadPassword):
        bundle.open_bundle(blob, b"wrong")
    with pytest.raises(BadPassword):  # header bound as associated data
        bundle.open_bundle(blob.replace(b'"r": 8', b'"r": 9'), b"pw")
    (hlen,) = struct.unpack(">H", blob[8:10])
    header = blob[10 : 10 + hlen].replace(b'"n": 1024', b'"n": 4194304')
    hostile = bundle.MAGIC + struct.pack(">H", len(header)) + header + blob[10 + hlen :]
    with pytest.raises(InvalidKeyMaterial, match="out-of-range"):
        bundle.open_bundle(hostile, b"pw")
    with pytest.raises(InvalidKeyMaterial):
        bundle.open_bundle(b"SEALID\x00\x02rest", b"pw")
