"""client.crypto.cms against third-party CMS vectors in ../shared/corpus.

* ``rfc4134/``: RFC 4134 "Examples of S/MIME Messages" (as distributed by Bouncy Castle
  C#); see the corpus MANIFEST.md section 9. Certificates are from 1999; we check the
  signatures only (path validation is the keystore's job).
* ``rfc9216-examples-cms/`` + ``rfc9216-ca/``: CryptoSys CMS examples with the RFC 9216
  LAMPS sample keys (MANIFEST.md section 4a), including vectors OpenSSL 3.0 cannot read
  (Ed25519 signatures, ChaCha20-Poly1305, X25519+HKDF key agreement).

Plaintext of every example: "This is some sample content." The corpus is part of the
test setup (CI runs with ../shared beside the repository): a missing corpus fails.
"""

from __future__ import annotations

import base64
import email
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    load_der_private_key,
    load_pem_private_key,
)

from client.crypto import cms
from client.errors import DecryptionFailed, NotSigned, UnsupportedMessage

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
R4134 = CORPUS / "rfc4134"
R9216 = CORPUS / "rfc9216-examples-cms"
SAMPLE = b"This is some sample content."


@pytest.fixture(scope="module", autouse=True)
def _corpus_present() -> None:
    if not (R4134.is_dir() and R9216.is_dir()):
        pytest.fail(f"test corpus missing: expected {CORPUS} (../shared/corpus)")


def _cert4134(name: str) -> x509.Certificate:
    return x509.load_der_x509_certificate((R4134 / name).read_bytes())


# --- RFC 4134 -----------------------------------------------------------------------------------

SIGNED_4134 = {
    # file: (signature algorithm, signer certificate file)
    "4.1.bin": ("dsa", "AliceDSSSignByCarlNoInherit.cer"),
    "4.2.bin": ("rsa", "AliceRSASignByCarl.cer"),
    "4.4.bin": ("dsa", "AliceDSSSignByCarlNoInherit.cer"),
    "4.5.bin": ("rsa", "AliceRSASignByCarl.cer"),
    "4.7.bin": ("dsa", "AliceDSSSignByCarlNoInherit.cer"),  # signer named by SKI
    "4.10.bin": ("dsa", "AliceDSSSignByCarlNoInherit.cer"),  # many odd signed attributes
}


@pytest.mark.parametrize("name", list(SIGNED_4134))
def test_rfc4134_signed(name: str) -> None:
    res = cms.verify((R4134 / name).read_bytes())
    assert res.all_valid, [s.reason for s in res.signers]
    assert res.content == SAMPLE
    (signer,) = res.signers
    alg, cert_file = SIGNED_4134[name]
    assert signer.signature_algorithm == alg
    assert signer.digest_algorithm == "sha1"
    assert signer.certificate == _cert4134(cert_file)


def test_rfc4134_4_3_detached() -> None:
    der = (R4134 / "4.3.bin").read_bytes()
    res = cms.verify(der, detached_content=(R4134 / "ExContent.bin").read_bytes())
    assert res.all_valid and res.detached
    assert not cms.verify(der, detached_content=SAMPLE + b"!").all_valid


def test_rfc4134_4_6_multiple_signers() -> None:
    """Alice (DSS) verifies; Diane's DSA certificate inherits its domain parameters from
    the CA (RFC 3279 2.3.2), which cryptography cannot parse: reported, not valid."""
    res = cms.verify((R4134 / "4.6.bin").read_bytes())
    assert len(res.signers) == 2
    good = [s for s in res.signers if s.valid]
    bad = [s for s in res.signers if not s.valid]
    assert len(good) == 1 and good[0].certificate == _cert4134("AliceDSSSignByCarlNoInherit.cer")
    assert len(bad) == 1 and bad[0].reason is not None and "could not be parsed" in bad[0].reason
    assert not res.all_valid


def test_rfc4134_4_11_certs_only() -> None:
    der = (R4134 / "4.11.bin").read_bytes()
    with pytest.raises(NotSigned):
        cms.verify(der)
    certs = cms.extract_certificates(der)
    assert set(certs) == {
        _cert4134("CarlDSSSelf.cer"),
        _cert4134("AliceDSSSignByCarlNoInherit.cer"),
    }


def test_rfc4134_4_8_multipart_signed() -> None:
    raw = (R4134 / "4.8.eml").read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    boundary = b"\r\n------=_NextBoundry____Fri,_06_Sep_2002_00:25:21"
    signed_part = raw.split(boundary)[1][2:]  # after the CRLF ending the boundary line
    sig = email.message_from_bytes(raw).get_payload()[1].get_payload(decode=True)  # type: ignore[index,union-attr]
    res = cms.verify(sig, detached_content=signed_part)
    assert res.all_valid
    assert res.content == b"\r\n" + SAMPLE


def test_rfc4134_4_9_opaque_signed() -> None:
    msg = email.message_from_bytes((R4134 / "4.9.eml").read_bytes())
    res = cms.verify(msg.get_payload(decode=True))  # type: ignore[arg-type]
    assert res.all_valid
    assert res.content == b"\r\n" + SAMPLE


def _bob4134() -> tuple[x509.Certificate, object]:
    key = load_der_private_key((R4134 / "BobPrivRSAEncrypt.pri").read_bytes(), None)
    return _cert4134("BobRSASignByCarl.cer"), key


def test_rfc4134_5_1_tripledes() -> None:
    cert, key = _bob4134()
    res = cms.decrypt((R4134 / "5.1.bin").read_bytes(), cert=cert, key=key)  # type: ignore[arg-type]
    assert res.content == SAMPLE
    assert res.cipher == "des-ede3-cbc" and not res.aead


def test_rfc4134_5_2_rc2_is_unsupported() -> None:
    cert, key = _bob4134()
    with pytest.raises(UnsupportedMessage, match="rc2"):
        cms.decrypt((R4134 / "5.2.bin").read_bytes(), cert=cert, key=key)  # type: ignore[arg-type]


def test_rfc4134_5_3_eml() -> None:
    cert, key = _bob4134()
    msg = email.message_from_bytes((R4134 / "5.3.eml").read_bytes())
    res = cms.decrypt(msg.get_payload(decode=True), cert=cert, key=key)  # type: ignore[arg-type]
    assert res.content == SAMPLE


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("3.1.bin", "data"),
        ("3.2.bin", "data"),
        ("6.0.bin", "digested-data"),
        ("7.1.bin", "encrypted-data"),
        ("7.2.bin", "encrypted-data"),
        ("4.1.bin", "signed-data"),
        ("5.1.bin", "enveloped-data"),
    ],
)
def test_rfc4134_content_types(name: str, kind: str) -> None:
    assert cms.content_info_type((R4134 / name).read_bytes()) == kind


# --- RFC 9216 examples (CryptoSys) --------------------------------------------------------------

KEYS = R9216 / "certs-and-keys"


def _pem_cert(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((KEYS / name).read_bytes())


def _pem_key(name: str) -> object:
    return load_pem_private_key((KEYS / name).read_bytes(), None)


def _p7m(name: str) -> bytes:
    der = (R9216 / "binary-files" / f"{name}.p7m").read_bytes()
    pem = (R9216 / "pem-encoded" / f"{name}.pem").read_text()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    assert base64.b64decode(body) == der  # the two copies agree
    return der


@pytest.mark.parametrize(
    ("name", "alg"),
    [
        ("signedByAliceRSA", "rsa"),
        ("signedByAliceRSAPSS", "rsa-pss"),
        ("signedByCarlosEd25519", "ed25519"),
    ],
)
def test_rfc9216_signed(name: str, alg: str) -> None:
    res = cms.verify(_p7m(name))
    assert res.all_valid
    assert res.content == SAMPLE
    (signer,) = res.signers
    assert signer.signature_algorithm == alg
    if alg.startswith("rsa"):
        ca = x509.load_pem_x509_certificate(
            (
                CORPUS / "rfc9216-ca" / "Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem"
            ).read_bytes()
        )
        assert signer.certificate == _pem_cert("lamps-alice.crt")
        signer.certificate.verify_directly_issued_by(ca)


def test_rfc9216_detached_ed25519() -> None:
    res = cms.verify(_p7m("signedByCarlosDetached"), detached_content=SAMPLE)
    assert res.all_valid and res.detached
    assert res.signers[0].certificate == _pem_cert("lamps-carlos.crt")


def test_rfc9216_two_signers_without_certificates() -> None:
    der = _p7m("signedByAliceAndCarlosNoCerts")
    res = cms.verify(der)
    assert [s.reason for s in res.signers] == ["signer certificate not included"] * 2
    assert not res.all_valid
    res = cms.verify(
        der, certificates=[_pem_cert("lamps-alice.crt"), _pem_cert("lamps-carlos.crt")]
    )
    assert res.all_valid
    assert sorted(s.signature_algorithm for s in res.signers) == ["ed25519", "rsa"]


BOB = ("lamps-bob.encrypt.crt", "lamps-bob.decrypt.p8.pem")
DANA = ("lamps-dana.encrypt.crt", "lamps-dana.decrypt.p8.pem")


@pytest.mark.parametrize(
    ("name", "who", "cipher"),
    [
        ("encryptedForBobRSAOaep", BOB, "aes128-cbc"),
        ("encryptedForBobAndDana", BOB, "aes128-cbc"),
        ("encryptedForBobAndDana", DANA, "aes128-cbc"),  # X25519 + HKDF (RFC 8418)
        ("authEnvelopedForBobChaCha20Poly1305", BOB, "chacha20-poly1305"),  # RFC 8103
        ("authEnvelopedForDanaX25519HKDF", DANA, "aes128-gcm"),
    ],
)
def test_rfc9216_encrypted(name: str, who: tuple[str, str], cipher: str) -> None:
    cert, key = _pem_cert(who[0]), _pem_key(who[1])
    assert cms.describe_recipients(_p7m(name))
    res = cms.decrypt(_p7m(name), cert=cert, key=key)  # type: ignore[arg-type]
    assert res.content == SAMPLE
    assert res.cipher == cipher
    assert cms.decrypt(_p7m(name), key=key).content == SAMPLE  # type: ignore[arg-type]


def test_rfc9216_kekri_is_described_not_opened() -> None:
    der = _p7m("encryptedKekri")
    cert, key = _pem_cert(BOB[0]), _pem_key(BOB[1])
    with pytest.raises(DecryptionFailed):
        cms.decrypt(der, cert=cert, key=key)  # type: ignore[arg-type]
    with pytest.raises(DecryptionFailed):
        cms.decrypt(der, password=b"keyid")
    # the KEK itself is not in the corpus; the RecipientInfo is at least described
    assert cms.describe_recipients(der) == ("kekri keyid=6b65796964 (not supported)",)


def test_rfc9216_wrong_recipient() -> None:
    # Bob's message opened with Dana's key: opaque failure
    with pytest.raises(DecryptionFailed):
        cms.decrypt(_p7m("encryptedForBobRSAOaep"), key=_pem_key(DANA[1]))  # type: ignore[arg-type]
