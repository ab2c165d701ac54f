"""Keystore against the real tools: PKCS#12 from `openssl pkcs12`, keys from and into `gpg`."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pysequoia as ps
import pytest
from cryptography.hazmat.primitives import serialization

from keystore.errors import BadPassword
from keystore.store import Keystore
from tests.helpers.gnupg import Gpg
from tests.helpers.memkeyring import MemoryKeyring
from tests.helpers.pki_matrix import EMAIL, NOW, Matrix, make_matrix


def now_real() -> dt.datetime:
    """The real clock, read when used: gpg stamps its keys with it (a module-level value
    read at collection time would make keys made minutes later "not valid yet")."""
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def ks(tmp_path: Path) -> Iterator[Keystore]:
    store = Keystore.open(tmp_path / "profile", keyring_backend=MemoryKeyring(), env={})
    yield store
    store.close()
    MemoryKeyring.store.clear()


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return make_matrix()


def _openssl(*args: str) -> bytes:
    proc = subprocess.run(["openssl", *args], capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "legacy-rc2-3des"])
@pytest.mark.parametrize("case", ["good", "good_ec"])
def test_openssl_pkcs12_import(
    ks: Keystore, matrix: Matrix, tmp_path: Path, legacy: bool, case: str
) -> None:
    leaf = matrix.leaves[case]
    (tmp_path / "key.pem").write_bytes(leaf.key_pem())
    (tmp_path / "cert.pem").write_bytes(leaf.cert_pem())
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in leaf.chain)
    (tmp_path / "chain.pem").write_bytes(chain)
    args = [
        "pkcs12",
        "-export",
        "-inkey",
        str(tmp_path / "key.pem"),
        "-in",
        str(tmp_path / "cert.pem"),
        "-certfile",
        str(tmp_path / "chain.pem"),
        "-passout",
        "pass:Secr3t!",
        "-out",
        str(tmp_path / "id.p12"),
        "-name",
        "alice",
    ]
    if legacy:
        args.append("-legacy")  # RC2-40 certs + 3DES key, SHA-1 MAC: what Windows writes
    _openssl(*args)
    # the file really is what we asked for: legacy files need -legacy to be read
    legacy_read = subprocess.run(
        [
            "openssl",
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            str(tmp_path / "id.p12"),
            "-passin",
            "pass:Secr3t!",
        ],
        capture_output=True,
        check=False,
    )
    assert (legacy_read.returncode != 0) == legacy
    data = (tmp_path / "id.p12").read_bytes()
    with pytest.raises(BadPassword):
        ks.import_bytes(data, passphrase=b"wrong")
    infos = ks.import_bytes(data, passphrase=b"Secr3t!", trust=True)
    own = [i for i in infos if i.secret]
    assert len(own) == 1 and own[0].emails == (EMAIL,)
    assert sum(1 for i in infos if i.is_ca and i.trust_anchor) == 2
    assert ks.recipient_keys(EMAIL, now=NOW).x509 == (leaf.cert,)
    # asking for one kind only checks that kind
    assert ks.recipient_keys(EMAIL, now=NOW, kinds=("x509",)).x509 == (leaf.cert,)
    pgp_only = ks.recipient_keys(EMAIL, now=NOW, kinds=("pgp",))
    assert pgp_only.x509 == () and not pgp_only.any
    ident = ks.signing_identity_for(EMAIL, "x509", now=NOW)
    assert ident.key is not None
    assert (
        ident.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        == leaf.key_pem()
    )


@pytest.mark.parametrize("legacy", [False, True], ids=["aes", "legacy-3des"])
def test_exported_pkcs12_opens_in_openssl(ks: Keystore, tmp_path: Path, legacy: bool) -> None:
    info = ks.generate_smime_selfsigned("alice@example.org", "Alice", now=now_real())
    out = tmp_path / "out.p12"
    out.write_bytes(ks.export_pkcs12(info.fingerprint, b"exp0rt", legacy=legacy))
    pem = _openssl(
        "pkcs12",
        "-in",
        str(out),
        "-passin",
        "pass:exp0rt",
        "-nodes",
        *(["-legacy"] if legacy else []),
    )
    assert b"BEGIN PRIVATE KEY" in pem and b"BEGIN CERTIFICATE" in pem
    cert_pem = pem[pem.index(b"-----BEGIN CERTIFICATE-----") :]
    (tmp_path / "c.pem").write_bytes(cert_pem)
    fpr = _openssl("x509", "-in", str(tmp_path / "c.pem"), "-noout", "-fingerprint", "-sha256")
    assert fpr.decode().strip().split("=")[1].replace(":", "") == info.fingerprint


@pytest.mark.parametrize("algo", ["ed25519", "rsa3072"])
def test_gpg_key_imported_public_and_secret(ks: Keystore, gpg: Gpg, algo: str) -> None:
    fpr = gpg.generate("Gina Gpg <gina@example.net>", algo=algo)
    (pub,) = ks.import_bytes(gpg.export(fpr))
    assert pub.fingerprint == fpr and not pub.secret and pub.emails == ("gina@example.net",)
    # We encrypt to gina; gpg decrypts.
    (cert,) = ks.recipient_keys("gina@example.net", now=now_real()).pgp
    res = gpg.check("--decrypt", input=ps.encrypt(b"to gina", [cert]))
    assert res.stdout == b"to gina"
    # The secret (unprotected, binary) joins the same row.
    (sec,) = ks.import_bytes(gpg.export(fpr, secret=True, armor=False))
    assert sec.fingerprint == fpr and sec.secret
    signed = gpg.check("--sign", "--armor", "-u", fpr, input=b"from gina").stdout
    assert ps.verify(signed, store=ks.pgp_certs_for_keyids).bytes == b"from gina"
    enc = gpg.check("--encrypt", "--armor", "-r", fpr, input=b"for sealmail").stdout
    (key,) = ks.decryption_keys("pgp")
    assert ps.decrypt(enc, key.decryptor()).bytes == b"for sealmail"


def test_gpg_protected_secret_key(ks: Keystore, gpg: Gpg) -> None:
    fpr = gpg.generate("Pat <pat@example.net>", passphrase="gpg-pass")
    armored = gpg.check("--armor", "--export-secret-keys", fpr, passphrase="gpg-pass").stdout
    with pytest.raises(BadPassword):
        ks.import_bytes(armored)
    with pytest.raises(BadPassword):
        ks.import_bytes(armored, passphrase=b"wrong")
    assert ks.list() == []
    (info,) = ks.import_bytes(armored, passphrase=b"gpg-pass")
    assert info.secret
    ident = ks.signing_identity_for("pat@example.net", "pgp", now=now_real())
    assert ident.pgp is not None
    signed = ps.sign(ident.pgp.signer(), b"signed by pat")
    gpg.check("--verify", input=signed)
    enc = gpg.check("--encrypt", "--armor", "-r", fpr, input=b"to pat").stdout
    assert ps.decrypt(enc, ident.pgp.decryptor()).bytes == b"to pat"


@pytest.mark.parametrize("algo", ["cv25519", "rsa3072"])
def test_sealmail_key_works_in_gpg(ks: Keystore, gpg: Gpg, algo: str) -> None:
    info = ks.generate_pgp("sam@example.org", "Sam", now=now_real(), algo=algo)  # type: ignore[arg-type]
    gpg.import_key(ks.export_public(info.fingerprint))
    listed = gpg.check("--with-colons", "--list-keys", info.fingerprint).stdout.decode()
    assert f"fpr:::::::::{info.fingerprint}:" in listed
    # gpg encrypts+signs to our key with its defaults; it honours "no compression".
    gpg.import_key(ks.export_secret_pgp(info.fingerprint))
    enc = gpg.check(
        "--encrypt",
        "--sign",
        "--armor",
        "-r",
        info.fingerprint,
        "-u",
        info.fingerprint,
        input=b"round trip",
    ).stdout
    (key,) = ks.decryption_keys("pgp")
    out = ps.decrypt(enc, key.decryptor(), store=ks.pgp_certs_for_keyids)
    assert out.bytes == b"round trip" and len(out.valid_sigs) == 1
    # Sealmail encrypts only to its own key: gpg 2.2 must read it (SEIPDv1).
    ours = ps.encrypt(b"to gpg", [ks.get_pgp_cert(info.fingerprint)], signer=key.signer())
    res = gpg.check("--decrypt", input=ours)
    assert res.stdout == b"to gpg"
    assert res.has("GOODSIG") and res.has("DECRYPTION_OKAY")


def test_sealmail_expiry_and_revocation_seen_by_gpg(ks: Keystore, gpg: Gpg) -> None:
    info = ks.generate_pgp("rita@example.org", now=now_real())
    ks.set_expiry(info.fingerprint, now_real() + dt.timedelta(days=30))
    gpg.import_key(ks.export_public(info.fingerprint))
    cols = gpg.check("--with-colons", "--list-keys", info.fingerprint).stdout.decode()
    pub = next(line for line in cols.splitlines() if line.startswith("pub:"))
    expires = int(pub.split(":")[6])
    assert abs(expires - int((now_real() + dt.timedelta(days=30)).timestamp())) < 5
    # gpg with --trust-model always has no trustdb, and a revocation import wants to
    # update it: the import itself is what counts here.
    res = gpg.run("--import", input=ks.revoke(info.fingerprint))
    assert "revocation certificate imported" in res.stderr
    cols = gpg.check("--with-colons", "--list-keys", info.fingerprint).stdout.decode()
    assert any(line.startswith("pub:r:") for line in cols.splitlines())
