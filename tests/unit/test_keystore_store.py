"""The Keystore: import, generate, list, export, lookups, expiry/revocation, concurrency."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pysequoia as ps
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from keystore import (
    autocrypt,
    bundle,
    certs,
    discovery,
    index,
    openpgp,
    pgpgen,
    profile,
    secrets,
    store,
    validate,
    wkd,
)
from keystore import certs as x509m
from keystore.errors import (
    BadPassword,
    InvalidKeyMaterial,
    KeyNotFound,
    NoKeyForRecipient,
    NoSigningKey,
    UsageError,
)
from keystore.secrets import KdfParams
from keystore.store import Keystore
from tests.helpers.memkeyring import MemoryKeyring
from tests.helpers.pki_matrix import EMAIL, NOW, Matrix, make_matrix

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
REAL_NOW = dt.datetime.now(dt.UTC)

KsFactory = Callable[[str], Keystore]


@pytest.fixture
def make_ks(tmp_path: Path) -> Iterator[KsFactory]:
    opened: list[Keystore] = []

    def make(name: str = "profile") -> Keystore:
        ks = Keystore.open(tmp_path / name, keyring_backend=MemoryKeyring(), env={})
        opened.append(ks)
        return ks

    yield make
    for ks in opened:
        ks.close()
    MemoryKeyring.store.clear()


@pytest.fixture
def ks(make_ks: KsFactory) -> Keystore:
    return make_ks("profile")


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return make_matrix()


def _pem(*objs: x509.Certificate) -> bytes:
    return b"".join(o.public_bytes(serialization.Encoding.PEM) for o in objs)


# --- public surface -------------------------------------------------------------------


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


@pytest.mark.parametrize(
    "module",
    [
        autocrypt,
        bundle,
        certs,
        discovery,
        index,
        openpgp,
        pgpgen,
        profile,
        secrets,
        store,
        validate,
        wkd,
    ],
)
def test_every_module_declares_its_exports(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names, key=_isort_key)
    for name in names:
        assert hasattr(module, name), name
    assert (module.__doc__ or "").strip().splitlines()[0]


def test_keystore_never_imports_client_ui_or_qt() -> None:
    code = (
        "import sys, keystore.store, keystore.validate\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('client', 'ui', 'PySide6')]\n"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- OpenPGP --------------------------------------------------------------------------


def test_generate_pgp_lists_and_exports(ks: Keystore) -> None:
    info = ks.generate_pgp("Alice@Example.org", "Alice", now=REAL_NOW)
    assert info.kind == "pgp" and info.secret and info.origin == "generated"
    assert info.emails == ("alice@example.org",)
    assert info.confirmed and not info.revoked
    assert info.expires is not None and info.expires > REAL_NOW + dt.timedelta(days=365 * 2)
    assert len(info.fingerprint) == 40 and info.fingerprint == info.fingerprint.upper()
    assert [k.fingerprint for k in ks.list()] == [info.fingerprint]
    armored = ks.export_public(info.fingerprint)
    assert armored.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert b"PRIVATE" not in armored
    as_json = info.to_json()
    assert set(as_json) >= {"fingerprint", "kind", "emails", "secret", "expires"}
    json.dumps(as_json)


def test_generated_keys_encrypt_as_seipd_v1(ks: Keystore) -> None:
    """gpg 2.2 cannot read SEIPDv2: our keys must not advertise it."""
    from pysequoia.packet import PacketPile, Tag

    for algo in ("cv25519", "rsa3072"):
        info = ks.generate_pgp(f"{algo}@example.org", now=REAL_NOW, algo=algo)  # type: ignore[arg-type]
        msg = ps.encrypt(b"x", [ks.get_pgp_cert(info.fingerprint)], armor=False)
        versions = [p.body[0] for p in PacketPile.from_bytes(msg) if p.tag in (Tag.PKESK, Tag.SEIP)]
        assert versions == [3, 1]


def test_pgp_round_trip_between_profiles(make_ks: KsFactory) -> None:
    a, b = make_ks("a"), make_ks("b")
    info = a.generate_pgp("alice@example.org", now=REAL_NOW)
    (imported,) = b.import_bytes(a.export_public(info.fingerprint))
    assert imported.fingerprint == info.fingerprint
    assert not imported.secret and imported.origin == "imported"
    # b encrypts, a decrypts with its stored secret.
    pgp_certs, _ = b.encryption_keys_for("alice@example.org", now=REAL_NOW)
    msg = ps.encrypt(b"hi alice", pgp_certs)
    (key,) = a.decryption_keys("pgp")
    assert ps.decrypt(msg, key.decryptor()).bytes == b"hi alice"


def test_secret_import_and_several_keys_in_one_file(make_ks: KsFactory) -> None:
    a, b = make_ks("a"), make_ks("b")
    k1 = a.generate_pgp("one@example.org", now=REAL_NOW)
    k2 = a.generate_pgp("two@example.org", now=REAL_NOW)
    blob = a.export_secret_pgp(k1.fingerprint) + b"\n" + a.export_public(k2.fingerprint)
    got = {i.fingerprint: i for i in b.import_bytes(blob)}
    assert got[k1.fingerprint].secret and not got[k2.fingerprint].secret
    signer = b.signing_identity_for("one@example.org", "pgp", now=REAL_NOW)
    assert signer.pgp is not None
    signed = ps.sign(signer.pgp.signer(), b"text")
    verified = ps.verify(signed, store=lambda ids: b.pgp_certs_for_keyids(ids))
    assert verified.bytes == b"text" and len(verified.valid_sigs) == 1


def test_binary_import_and_reimport_merges(ks: Keystore, make_ks: KsFactory) -> None:
    other = make_ks("other")
    info = other.generate_pgp("bob@example.org", now=REAL_NOW)
    binary = bytes(other.get_pgp_cert(info.fingerprint))
    assert ks.import_bytes(binary)[0].fingerprint == info.fingerprint
    assert ks.import_bytes(binary, origin="discovered")[0].origin == "imported"
    ks.import_bytes(other.export_secret_pgp(info.fingerprint))
    assert ks.get(info.fingerprint).secret
    ks.import_bytes(binary)  # a public re-import never drops the secret
    assert ks.get(info.fingerprint).secret


def test_discovered_key_is_unconfirmed_until_imported(ks: Keystore, make_ks: KsFactory) -> None:
    other = make_ks("other")
    info = other.generate_pgp("bob@example.org", now=REAL_NOW)
    (d,) = ks.import_bytes(other.export_public(info.fingerprint), origin="discovered")
    assert d.origin == "discovered" and not d.confirmed
    assert ks.set_flags(info.fingerprint, confirmed=True).confirmed


def test_set_expiry_and_expired_key_is_not_offered(ks: Keystore) -> None:
    info = ks.generate_pgp("alice@example.org", now=REAL_NOW)
    soon = REAL_NOW + dt.timedelta(days=10)
    assert ks.set_expiry(info.fingerprint, soon).expires == soon.replace(microsecond=0)
    later = REAL_NOW + dt.timedelta(days=11)
    found = ks.recipient_keys("alice@example.org", now=later)
    assert not found.pgp and "expired" in found.reasons[0]
    with pytest.raises(NoSigningKey):
        ks.signing_identity_for("alice@example.org", "pgp", now=later)
    assert ks.recipient_keys("alice@example.org", now=REAL_NOW).pgp
    # still usable to decrypt old mail
    assert len(ks.decryption_keys("pgp")) == 1


def test_revoke_and_import_revocation_certificate(ks: Keystore, make_ks: KsFactory) -> None:
    other = make_ks("other")
    info = other.generate_pgp("bob@example.org", now=REAL_NOW)
    ks.import_bytes(other.export_public(info.fingerprint))
    revcert = other.revoke(info.fingerprint)
    assert revcert.startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert other.get(info.fingerprint).revoked
    (updated,) = ks.import_bytes(revcert)
    assert updated.fingerprint == info.fingerprint and updated.revoked
    found = ks.recipient_keys("bob@example.org", now=REAL_NOW)
    assert not found.any and "revoked" in found.reasons[0]
    with pytest.raises(NoKeyForRecipient):
        ks.require_recipient("bob@example.org", now=REAL_NOW)


def test_revocation_for_unknown_key_is_key_not_found(ks: Keystore, make_ks: KsFactory) -> None:
    other = make_ks("other")
    info = other.generate_pgp("bob@example.org", now=REAL_NOW)
    with pytest.raises(KeyNotFound):
        ks.import_bytes(other.revocation_certificate(info.fingerprint))


def test_keyid_lookup_finds_subkeys(ks: Keystore) -> None:
    info = ks.generate_pgp("alice@example.org", now=REAL_NOW)
    ids = openpgp.key_ids(ks.get_pgp_cert(info.fingerprint))
    assert len(ids) == 2
    for keyid, fpr in ids:
        assert [c.fingerprint.upper() for c in ks.pgp_certs_for_keyids([keyid])] == [
            info.fingerprint
        ]
        assert len(ks.pgp_certs_for_keyids([fpr.upper()])) == 1
    assert ks.pgp_certs_for_keyids(["0123456789abcdef"]) == []
    assert ks.get(ids[1][0]).fingerprint == info.fingerprint  # resolve by subkey id


def test_delete_and_unknown_fingerprints(ks: Keystore) -> None:
    info = ks.generate_pgp("alice@example.org", now=REAL_NOW)
    with pytest.raises(UsageError, match="secret key"):
        ks.delete(info.fingerprint)  # never without the explicit flag
    assert len(ks.list()) == 1
    ks.delete(info.fingerprint.lower(), secret=True)
    assert ks.list() == []
    with pytest.raises(KeyNotFound):
        ks.get(info.fingerprint)
    with pytest.raises(UsageError):
        ks.get("not hex!")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n",
        b"\x30\x03\x02\x01\x01",
        b"\x99\x00\x01",
    ],
    ids=["empty", "text", "bad-armor", "bad-der", "bad-packet"],
)
def test_bad_input_is_invalid_key_material(ks: Keystore, data: bytes) -> None:
    with pytest.raises(InvalidKeyMaterial):
        ks.import_bytes(data)
    assert ks.list() == []


def test_trust_flag_is_refused_for_openpgp(ks: Keystore, make_ks: KsFactory) -> None:
    other = make_ks("other")
    info = other.generate_pgp("bob@example.org", now=REAL_NOW)
    with pytest.raises(UsageError):
        ks.import_bytes(other.export_public(info.fingerprint), trust=True)


def test_named_secrets_round_trip(ks: Keystore) -> None:
    assert ks.get_secret("imap:alice") is None
    ks.put_secret("imap:alice", b"pw")
    assert ks.get_secret("imap:alice") == b"pw"
    assert ks.delete_secret("imap:alice")
    assert ks.get_secret("imap:alice") is None


def test_listing_needs_no_unlock(tmp_path: Path) -> None:
    import keyring.backends.fail

    first = Keystore.open(
        tmp_path / "p",
        keyring_backend=keyring.backends.fail.Keyring(),
        passphrase="pp",
        kdf=KdfParams(n=2**12),
        env={},
    )
    info = first.generate_pgp("alice@example.org", now=REAL_NOW)
    first.close()

    def never(reason: str) -> str:
        raise AssertionError("asked for the passphrase to list keys")

    second = Keystore.open(
        tmp_path / "p",
        keyring_backend=keyring.backends.fail.Keyring(),
        passphrase_callback=never,
        env={},
    )
    assert [k.fingerprint for k in second.list()] == [info.fingerprint]
    assert second.export_public(info.fingerprint)
    assert second.recipient_keys("alice@example.org", now=REAL_NOW).pgp
    second.close()
    third = Keystore.open(
        tmp_path / "p",
        keyring_backend=keyring.backends.fail.Keyring(),
        passphrase="wrong",
        env={},
    )
    with pytest.raises(BadPassword):
        third.get_pgp_tsk(info.fingerprint)
    third.close()


# --- X.509 ----------------------------------------------------------------------------


def test_generate_smime_selfsigned(ks: Keystore) -> None:
    for algo in ("ec-p256", "rsa-3072"):
        info = ks.generate_smime_selfsigned("alice@example.org", "Alice", now=REAL_NOW, key=algo)  # type: ignore[arg-type]
        assert info.kind == "x509" and info.secret and info.trust_anchor
        assert len(info.fingerprint) == 64
        cert = ks.get_x509(info.fingerprint)
        assert info.expires == cert.not_valid_after_utc
        assert (cert.not_valid_after_utc - REAL_NOW).days in (729, 730)
        assert certs.cert_emails(cert) == ("alice@example.org",)
        assert (
            validate.check_usage(cert, "encrypt") == "" and validate.check_usage(cert, "sign") == ""
        )
        assert ks.export_public(info.fingerprint).startswith(b"-----BEGIN CERTIFICATE-----")
        assert certs.key_matches(cert, ks.get_x509_key(info.fingerprint))
    ident = ks.signing_identity_for("alice@example.org", "x509", now=REAL_NOW)
    assert ident.cert is not None and ident.key is not None
    assert len(ks.recipient_keys("alice@example.org", now=REAL_NOW).x509) == 2


def test_pinned_selfsigned_still_expires(ks: Keystore) -> None:
    info = ks.generate_smime_selfsigned("alice@example.org", now=REAL_NOW)
    later = REAL_NOW + dt.timedelta(days=800)
    found = ks.recipient_keys("alice@example.org", now=later)
    assert not found.x509 and "expired" in found.reasons[0]
    cert = ks.get_x509(info.fingerprint)
    status = ks.cert_status(cert, "alice@example.org", usage="sign", now=later)
    assert status.status == "expired"
    with pytest.raises(NoSigningKey):
        ks.signing_identity_for("alice@example.org", "x509", now=later)


def test_ca_bundle_with_trust_and_recipient_lookup(ks: Keystore, matrix: Matrix) -> None:
    infos = ks.import_bytes(_pem(matrix.pki.root, matrix.pki.intermediate), trust=True)
    assert [i.is_ca for i in infos] == [True, True]
    assert all(i.trust_anchor for i in infos)
    ks.set_flags(infos[1].fingerprint, trust_anchor=False)  # only the root is an anchor
    good = matrix.leaves["good"]
    (leaf,) = ks.import_bytes(good.cert.public_bytes(serialization.Encoding.DER))
    assert not leaf.trust_anchor and not leaf.secret
    found = ks.recipient_keys(EMAIL, now=NOW)
    assert found.x509 == (good.cert,)
    assert ks.trust_anchors() == [matrix.pki.root]


def test_revoked_leaf_with_stored_crl(ks: Keystore, matrix: Matrix) -> None:
    ks.import_bytes(_pem(matrix.pki.root), trust=True)
    ks.import_bytes(_pem(matrix.pki.intermediate))
    ks.import_bytes(_pem(matrix.leaves["revoked"].cert))
    assert ks.recipient_keys(EMAIL, now=NOW).x509  # no CRL known yet: soft-fail
    crl_pem = matrix.crl.public_bytes(serialization.Encoding.PEM)
    assert ks.import_bytes(crl_pem) == []
    found = ks.recipient_keys(EMAIL, now=NOW)
    assert not found.x509 and "revoked" in found.reasons[0]


def test_matrix_through_the_keystore(ks: Keystore, matrix: Matrix) -> None:
    from tests.helpers.pki_matrix import EXPECTED

    ks.import_bytes(_pem(matrix.pki.root), trust=True)
    ks.import_bytes(_pem(matrix.pki.intermediate))
    ks.add_crl(matrix.crl.public_bytes(serialization.Encoding.DER))
    for case, want in EXPECTED.items():
        # as the message core does: certificates carried in the message come along
        got = ks.cert_status(
            matrix.leaves[case].cert,
            EMAIL,
            usage="encrypt",
            now=NOW,
            extra_certs=[matrix.other_pki.intermediate],
        )
        assert got.status == want, (case, got)


def test_pkcs7_bundle_import(ks: Keystore, matrix: Matrix) -> None:
    bundle = pkcs7.serialize_certificates(
        [matrix.pki.root, matrix.pki.intermediate, matrix.leaves["good"].cert],
        serialization.Encoding.DER,
    )
    infos = ks.import_bytes(bundle, trust=True)
    assert len(infos) == 3
    assert [i.trust_anchor for i in infos] == [True, True, False]
    pem_bundle = pkcs7.serialize_certificates([matrix.pki.root], serialization.Encoding.PEM)
    assert ks.import_bytes(pem_bundle)[0].is_ca


def test_pkcs12_identity_with_chain(ks: Keystore, matrix: Matrix) -> None:
    good = matrix.leaves["good"]
    p12 = pkcs12.serialize_key_and_certificates(
        b"alice",
        good.key,
        good.cert,
        list(good.chain),  # type: ignore[arg-type]
        serialization.BestAvailableEncryption(b"p12pass"),
    )
    with pytest.raises(BadPassword):
        ks.import_bytes(p12)
    with pytest.raises(BadPassword):
        ks.import_bytes(p12, passphrase=b"wrong")
    assert ks.list() == []
    infos = ks.import_bytes(p12, passphrase=b"p12pass", trust=True)
    own = [i for i in infos if i.secret]
    assert len(own) == 1 and own[0].emails == (EMAIL,) and not own[0].trust_anchor
    assert {i.trust_anchor for i in infos if i.is_ca} == {True}
    ident = ks.signing_identity_for(EMAIL, "x509", now=NOW)
    assert ident.cert == good.cert and ident.chain == (matrix.pki.intermediate, matrix.pki.root)
    (cert, key) = ks.decryption_keys("x509")[0]
    assert certs.key_matches(cert, key)
    exported = ks.export_pkcs12(own[0].fingerprint, b"new pass")
    _k2, c2, extra = pkcs12.load_key_and_certificates(exported, b"new pass")
    assert c2 == good.cert and len(extra) == 2


def test_loose_private_key_joins_its_certificate(ks: Keystore, matrix: Matrix) -> None:
    good = matrix.leaves["good_ec"]
    with pytest.raises(InvalidKeyMaterial):
        ks.import_bytes(good.key_pem())
    (info,) = ks.import_bytes(good.cert_pem())
    assert not info.secret
    (info,) = ks.import_bytes(good.key_pem())
    assert info.secret
    (both,) = make_ks_both = ks.import_bytes(good.cert_pem() + good.key_pem())
    assert both.secret and make_ks_both


def test_encrypted_pem_key(ks: Keystore, matrix: Matrix) -> None:
    good = matrix.leaves["good_ec"]
    enc = good.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"keypass"),
    )
    with pytest.raises(BadPassword):
        ks.import_bytes(good.cert_pem() + enc)
    with pytest.raises(BadPassword):
        ks.import_bytes(good.cert_pem() + enc, passphrase=b"nope")
    (info,) = ks.import_bytes(good.cert_pem() + enc, passphrase=b"keypass")
    assert info.secret


# --- corpus ---------------------------------------------------------------------------


def test_rfc9216_certificates_and_keys() -> None:
    d = CORPUS / "rfc9216-examples-cms" / "certs-and-keys"
    assert d.is_dir(), "shared corpus missing"


def test_rfc9216_corpus_import(ks: Keystore) -> None:
    d = CORPUS / "rfc9216-examples-cms" / "certs-and-keys"
    ca = CORPUS / "rfc9216-ca"
    for crt in sorted(d.glob("*.crt")):
        (info,) = ks.import_bytes(crt.read_bytes())
        assert info.kind == "x509" and info.emails, crt.name
    for key in sorted(d.glob("*.p8.pem")):
        infos = ks.import_bytes(key.read_bytes())
        assert infos and all(i.secret for i in infos), key.name
    emails = {e for i in ks.list() for e in i.emails}
    assert {"alice@smime.example", "bob@smime.example"} <= emails
    anchors = sorted(ca.glob("*")) if ca.is_dir() else []
    for anchor in anchors:
        if anchor.suffix in (".crt", ".pem", ".der"):
            ks.import_bytes(anchor.read_bytes(), trust=True)


@pytest.mark.parametrize(
    "name", ["Alice.p12", "Bob.p12", "Dave.p12", "Alice-ec.p12", "Fran.p12", "Fran-ec.p12"]
)
def test_thunderbird_pkcs12_import(ks: Keystore, name: str) -> None:
    """NSS-made PKCS#12 (BER, password "nss"): key + leaf + the issuing CA."""
    tb = CORPUS / "thunderbird-smime"
    (ca,) = ks.import_bytes((tb / "TestCA.pem").read_bytes(), trust=True)
    assert ca.trust_anchor and ca.is_ca
    infos = ks.import_bytes((tb / name).read_bytes(), passphrase=b"nss", trust=True)
    own = [i for i in infos if i.secret]
    assert len(own) == 1
    # Fran's files hold no CA certificate, so --trust pins the leaf itself
    assert own[0].trust_anchor == name.startswith("Fran")
    assert all(i.trust_anchor for i in infos if i.is_ca)
    addr = own[0].emails[0]
    assert addr == name.removesuffix(".p12").lower() + "@example.com"
    when = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)  # the NSS test certs start 2026-01-26
    found = ks.recipient_keys(addr, now=when)
    assert [x509m.x509_fingerprint(c) for c in found.x509] == [own[0].fingerprint], found
    assert ks.signing_identity_for(addr, "x509", now=when).key is not None
    before = ks.recipient_keys(addr, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    if name.startswith("Fran"):  # valid from 2019 to 9999
        assert before.x509
    else:
        assert not before.x509 and "not-yet-valid" in before.reasons[0]


# --- two processes --------------------------------------------------------------------

_WORKER = """
import sys, datetime as dt
from keystore.store import Keystore
ks = Keystore.open(sys.argv[1])
now = dt.datetime.now(dt.UTC)
for i in range(int(sys.argv[3])):
    ks.generate_pgp(f"{sys.argv[2]}{i}@example.org", now=now)
print(len(ks.list()))
"""


def test_two_processes_share_one_profile(tmp_path: Path) -> None:
    import os

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "SEALMAIL_PROFILE_PASSPHRASE": "shared passphrase",
        "PYTHONPATH": str(REPO),
    }
    prof = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(prof), who, "8"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b", "c")
    ]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    import keyring.backends.fail

    ks = Keystore.open(
        prof,
        keyring_backend=keyring.backends.fail.Keyring(),
        passphrase="shared passphrase",
        env={},
    )
    infos = ks.list()
    assert len(infos) == 24
    # one master key for all three: every secret opens
    assert len(ks.decryption_keys("pgp")) == 24
    ks.close()
