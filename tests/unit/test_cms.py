"""Unit tests of client.crypto.cms: round trips, tampering, errors, fuzzing.

Interop with the openssl CLI is in tests/interop/test_cms_openssl.py, third-party vectors in
tests/unit/test_cms_corpus.py.
"""

from __future__ import annotations

import hashlib
import os
import random
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from asn1crypto import cms as asn1_cms
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.crypto import cms
from client.crypto.cms_common import Rid, cert_rid
from client.crypto.cms_recipients import Ktri, unwrap_ktri
from client.errors import (
    DecryptionFailed,
    MalformedMessage,
    MessageTooLarge,
    NotEncrypted,
    NotSigned,
    SealmailError,
    TamperedMessage,
    UnsupportedMessage,
    UsageError,
)
from tests.helpers.pki import Leaf, Pki, make_pki

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def det_rng(seed: int = 1) -> Callable[[int], bytes]:
    """Deterministic test randomness."""
    r = random.Random(seed)

    def rng(n: int) -> bytes:
        return r.randbytes(n)

    return rng


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def rsa(pki: Pki) -> Leaf:
    return pki.leaf("rsa@example.org", "rsa2048")


@pytest.fixture(scope="module")
def p256(pki: Pki) -> Leaf:
    return pki.leaf("p256@example.org", "p256")


@pytest.fixture(scope="module")
def p384(pki: Pki) -> Leaf:
    return pki.leaf("p384@example.org", "p384")


@pytest.fixture(scope="module")
def p521(pki: Pki) -> Leaf:
    return pki.leaf("p521@example.org", "p521")


@pytest.fixture(scope="module")
def ed(pki: Pki) -> Leaf:
    return pki.leaf("ed@example.org", "ed25519")


def _sign(leaf: Leaf, content: bytes = b"hello\r\n", **kw: object) -> bytes:
    kw.setdefault("detached", False)
    return cms.sign(content, signer_cert=leaf.cert, signer_key=leaf.key, now=NOW, **kw)  # type: ignore[arg-type]


# --- public surface -----------------------------------------------------------------------------


def test_public_surface() -> None:
    assert sorted(cms.__all__) == sorted(
        [
            "DEFAULT_DECOMPRESS_LIMIT",
            "DEFAULT_PBKDF2_ITERATIONS",
            "SMIME_CAPABILITIES",
            "Decrypted",
            "EncryptCipher",
            "SignerResult",
            "VerifyResult",
            "content_info_type",
            "decompress",
            "decrypt",
            "describe_recipients",
            "encrypt",
            "encrypt_password",
            "encrypt_stream",
            "extract_certificates",
            "micalg",
            "parse_capabilities",
            "sign",
            "signing_digest",
            "verify",
        ]
    )
    for name in cms.__all__:
        assert hasattr(cms, name)


# --- sign / verify --------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["rsa", "p256", "p384", "p521", "ed"])
@pytest.mark.parametrize("detached", [False, True])
def test_sign_verify_round_trip(which: str, detached: bool, request: pytest.FixtureRequest) -> None:
    leaf: Leaf = request.getfixturevalue(which)
    der = _sign(leaf, b"body", detached=detached)
    res = cms.verify(der, detached_content=b"body" if detached else None)
    assert res.all_valid
    assert res.content == b"body"
    assert res.detached is detached
    assert res.content_type == "data"
    (s,) = res.signers
    assert s.certificate == leaf.cert
    assert s.signing_time == NOW
    assert s.capabilities == cms.SMIME_CAPABILITIES
    assert s.digest_algorithm == ("sha512" if which == "ed" else "sha256")
    assert res.certificates == (leaf.cert,)


def test_sign_options(rsa: Leaf, p256: Leaf, pki: Pki) -> None:
    der = _sign(
        rsa,
        rsa_padding="pss",
        digest="sha384",
        include_capabilities=False,
        encryption_cert=p256.cert,
        extra_certs=[pki.intermediate],
    )
    res = cms.verify(der)
    (s,) = res.signers
    assert s.valid and s.signature_algorithm == "rsa-pss" and s.digest_algorithm == "sha384"
    assert s.capabilities == ()
    pref = Rid(issuer_der=p256.cert.issuer.public_bytes(), serial=p256.cert.serial_number)
    assert s.encryption_key_preference == pref.describe()
    assert set(res.certificates) == {rsa.cert, p256.cert, pki.intermediate}


def test_sign_usage_errors(rsa: Leaf, p256: Leaf) -> None:
    with pytest.raises(UsageError):
        cms.sign(b"x", signer_cert=rsa.cert, signer_key=p256.key, detached=False, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        cms.sign(
            b"x",
            signer_cert=rsa.cert,
            signer_key=rsa.key,
            detached=False,  # type: ignore[arg-type]
            now=datetime(2026, 1, 1),
        )  # naive
    with pytest.raises(UsageError):
        _sign(rsa, digest="md5")


def test_signing_time_after_2049_is_generalized(rsa: Leaf) -> None:
    later = datetime(2051, 1, 1, tzinfo=UTC)
    der = cms.sign(b"x", signer_cert=rsa.cert, signer_key=rsa.key, detached=False, now=later)  # type: ignore[arg-type]
    assert cms.verify(der).signers[0].signing_time == later


def _flip(der: bytes, needle: bytes, offset: int = 0) -> bytes:
    i = der.index(needle) + offset
    return der[:i] + bytes([der[i] ^ 0x01]) + der[i + 1 :]


def test_tampered_content_signature_and_attrs(rsa: Leaf) -> None:
    content = b"The quick brown fox"
    der = _sign(rsa, content)
    # content
    bad = cms.verify(_flip(der, b"quick"))
    assert not bad.all_valid and "digest" in (bad.signers[0].reason or "")
    # detached content
    det = _sign(rsa, content, detached=True)
    bad = cms.verify(det, detached_content=content + b" ")
    assert not bad.all_valid
    # signature (last bytes of the DER are the signature)
    bad = cms.verify(der[:-5] + bytes([der[-5] ^ 1]) + der[-4:])
    assert bad.signers[0].reason == "signature does not match"
    # signed attributes: the signing time digits
    bad = cms.verify(_flip(der, b"260304050607Z"))
    assert bad.signers[0].reason == "signature does not match"


def test_missing_signer_certificate_and_extra_certificates(rsa: Leaf) -> None:
    der = _sign(rsa)
    ci = asn1_cms.ContentInfo.load(der)
    del ci["content"]["certificates"]
    stripped = ci.dump(force=True)
    res = cms.verify(stripped)
    assert not res.all_valid
    assert res.signers[0].reason == "signer certificate not included"
    assert res.signers[0].certificate is None
    assert "serial=" in res.signers[0].signer_id
    assert cms.verify(stripped, certificates=[rsa.cert]).all_valid


def test_multiple_signers_reported_individually(rsa: Leaf, p256: Leaf) -> None:
    a = asn1_cms.ContentInfo.load(_sign(rsa, b"same"))
    b = asn1_cms.ContentInfo.load(_sign(p256, b"other"))  # signs different content
    sd = a["content"]
    sd["signer_infos"] = [sd["signer_infos"][0], b["content"]["signer_infos"][0]]
    sd["certificates"] = [sd["certificates"][0], b["content"]["certificates"][0]]
    res = cms.verify(a.dump(force=True))
    by_cert = {s.certificate: s for s in res.signers}  # SET OF: order is by encoding
    assert by_cert[rsa.cert].valid
    assert not by_cert[p256.cert].valid
    assert "digest" in (by_cert[p256.cert].reason or "")
    assert not res.all_valid


def test_zero_signers_is_not_signed(rsa: Leaf) -> None:
    ci = asn1_cms.ContentInfo.load(_sign(rsa))
    ci["content"]["signer_infos"] = []
    der = ci.dump(force=True)
    with pytest.raises(NotSigned):
        cms.verify(der)
    assert cms.extract_certificates(der) == (rsa.cert,)


def test_verify_structure_errors(rsa: Leaf) -> None:
    with pytest.raises(MalformedMessage):
        cms.verify(_sign(rsa, detached=True))  # no content given
    with pytest.raises(MalformedMessage):
        cms.verify(_sign(rsa), detached_content=b"x")  # both
    with pytest.raises(NotSigned):
        cms.verify(cms.encrypt(b"x", [rsa.cert], rng=os.urandom))
    with pytest.raises(MalformedMessage):
        cms.verify(b"\x30\x03\x02\x01\x01")
    with pytest.raises(MalformedMessage):
        cms.verify(_sign(rsa) + b"\x00")  # trailing data


def test_no_signed_attributes(rsa: Leaf) -> None:
    """A SignerInfo without signed attributes: signature over the content itself."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    ci = asn1_cms.ContentInfo.load(_sign(rsa, b"plain"))
    si = ci["content"]["signer_infos"][0]
    del si["signed_attrs"]
    si["signature"] = rsa.key.sign(b"plain", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
    res = cms.verify(ci.dump(force=True))
    assert res.all_valid and res.signers[0].signing_time is None
    si["signature"] = rsa.key.sign(b"plainX", padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr,call-arg]
    assert not cms.verify(ci.dump(force=True)).all_valid


def test_content_type_attribute_must_match(rsa: Leaf) -> None:
    ci = asn1_cms.ContentInfo.load(_sign(rsa, b"x"))
    ci["content"]["encap_content_info"]["content_type"] = "1.2.3.4"
    res = cms.verify(ci.dump(force=True))
    assert res.signers[0].reason == "contentType attribute does not match the content"


# --- encrypt / decrypt ----------------------------------------------------------------------------

CIPHERS = ["aes256-cbc", "aes128-cbc", "aes256-gcm", "aes128-gcm"]


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize("which", ["rsa-oaep", "rsa-pkcs1v15", "p256", "p384", "p521"])
@pytest.mark.parametrize("content", [b"", b"x", b"y" * 1000], ids=["empty", "1", "1000"])
def test_encrypt_decrypt_round_trip(
    cipher: str, which: str, content: bytes, request: pytest.FixtureRequest
) -> None:
    leaf: Leaf = request.getfixturevalue(which.split("-")[0])
    pad = which.split("-")[1] if "-" in which else "auto"
    der = cms.encrypt(content, [leaf.cert], cipher=cipher, rsa_padding=pad, rng=os.urandom)  # type: ignore[arg-type]
    assert cms.content_info_type(der) == (
        "authenveloped-data" if cipher.endswith("gcm") else "enveloped-data"
    )
    res = cms.decrypt(der, cert=leaf.cert, key=leaf.key)  # type: ignore[arg-type]
    assert res.content == content
    assert res.cipher == cipher
    assert res.aead is cipher.endswith("gcm")
    assert res.content_type == "data"
    assert len(res.recipients) == 1 and res.opened_by == res.recipients[0]


def test_deterministic_with_rng(p256: Leaf) -> None:
    a = cms.encrypt(b"x", [p256.cert], rng=det_rng(5))
    b = cms.encrypt(b"x", [p256.cert], rng=det_rng(5))
    assert a == b
    assert cms.encrypt_password(b"x", b"pw", iterations=10, rng=det_rng(2)) == cms.encrypt_password(
        b"x", b"pw", iterations=10, rng=det_rng(2)
    )


def test_multiple_recipients(rsa: Leaf, p256: Leaf, p384: Leaf) -> None:
    der = cms.encrypt(b"all", [rsa.cert, p256.cert, p384.cert], cipher="aes256-gcm", rng=os.urandom)
    for leaf in (rsa, p256, p384):
        res = cms.decrypt(der, cert=leaf.cert, key=leaf.key)  # type: ignore[arg-type]
        assert res.content == b"all"
        assert len(res.recipients) == 3


def test_wrong_key_fails_opaquely(rsa: Leaf, p256: Leaf, pki: Pki) -> None:
    other_rsa = pki.leaf("o@example.org", "rsa2048")
    other_ec = pki.leaf("o2@example.org", "p256")
    for cipher in ("aes256-cbc", "aes256-gcm"):
        for pad in ("oaep", "pkcs1v15"):
            der = cms.encrypt(
                b"x" * 50,
                [rsa.cert],
                cipher=cipher,
                rsa_padding=pad,  # type: ignore[arg-type]
                rng=os.urandom,
            )
            with pytest.raises(DecryptionFailed) as e2:
                cms.decrypt(der, cert=other_rsa.cert, key=other_rsa.key)  # type: ignore[arg-type]
            if cipher == "aes256-cbc" and pad == "pkcs1v15":
                continue  # key alone: see test_wrong_key_without_its_certificate_on_cbc
            with pytest.raises(DecryptionFailed) as e1:
                cms.decrypt(der, key=other_rsa.key)  # type: ignore[arg-type]
            assert str(e1.value) == str(e2.value)
        der = cms.encrypt(b"x", [p256.cert], cipher=cipher, rng=os.urandom)  # type: ignore[arg-type]
        with pytest.raises(DecryptionFailed):
            cms.decrypt(der, key=other_ec.key)  # type: ignore[arg-type]
        with pytest.raises(DecryptionFailed):
            cms.decrypt(der, key=rsa.key)  # type: ignore[arg-type]


def test_wrong_key_without_its_certificate_on_cbc(rsa: Leaf, pki: Pki) -> None:
    """PKCS#1 v1.5 key transport + AES-CBC, wrong key and no certificate to pick the
    RecipientInfo: the v1.5 unwrap yields a random key (no padding oracle), so only the
    CBC padding check can notice, and about 1 in 256 random keys pass it. OpenSSL's
    `cms -decrypt` documents the same ("typically output garbage"). What must hold: the
    plaintext never comes out, most tries raise, and the message is the opaque one."""
    other_rsa = pki.leaf("o3@example.org", "rsa2048")
    plain = b"x" * 50
    der = cms.encrypt(
        plain, [rsa.cert], cipher="aes256-cbc", rsa_padding="pkcs1v15", rng=os.urandom
    )
    with pytest.raises(DecryptionFailed) as with_cert:
        cms.decrypt(der, cert=other_rsa.cert, key=other_rsa.key)  # type: ignore[arg-type]
    garbage = 0
    for _ in range(200):
        try:
            got = cms.decrypt(der, key=other_rsa.key)  # type: ignore[arg-type]
        except DecryptionFailed as e:
            assert str(e) == str(with_cert.value)
        else:
            assert got.content != plain
            garbage += 1
    # Binomial(200, ~1/255): 12 or more happens with probability below 1e-8.
    assert garbage < 12


def test_pkcs1v15_implicit_rejection(rsa: Leaf) -> None:
    """A v1.5 key transport with garbage never raises by itself: it yields a random key."""
    for garbage in (b"\x00" * 256, os.urandom(256), b"\x01" * 10):
        ri = Ktri(
            rid=cert_rid(rsa.cert),
            alg_oid="1.2.840.113549.1.1.1",
            alg_params=None,
            encrypted_key=garbage,
        )
        got = unwrap_ktri(ri, rsa.key, 32)  # type: ignore[arg-type]
        assert got is not None and len(got[0]) == 32 and got[1] is False
    # and a GCM message whose v1.5 key was damaged is "cannot decrypt", not "tampered"
    der = cms.encrypt(
        b"x" * 50, [rsa.cert], cipher="aes256-gcm", rsa_padding="pkcs1v15", rng=os.urandom
    )
    ci = asn1_cms.ContentInfo.load(der)
    ktri = ci["content"]["recipient_infos"][0].chosen
    ek = bytearray(ktri["encrypted_key"].native)
    ek[5] ^= 1
    ktri["encrypted_key"] = bytes(ek)
    with pytest.raises(DecryptionFailed) as exc:
        cms.decrypt(ci.dump(force=True), cert=rsa.cert, key=rsa.key)  # type: ignore[arg-type]
    assert type(exc.value) is DecryptionFailed


@pytest.mark.parametrize("which", ["rsa", "p256"])
def test_tampered_gcm(which: str, request: pytest.FixtureRequest) -> None:
    leaf: Leaf = request.getfixturevalue(which)
    content = b"z" * 64
    der = cms.encrypt(content, [leaf.cert], cipher="aes256-gcm", rng=det_rng(3))
    ci = asn1_cms.ContentInfo.load(der)
    auth = ci["content"]
    ct = bytes(auth["auth_encrypted_content_info"]["encrypted_content"].native)
    tag = bytes(auth["mac"].native)
    for field, value in (
        ("ct", ct[:10] + bytes([ct[10] ^ 1]) + ct[11:]),
        ("tag", tag[:-1] + bytes([tag[-1] ^ 1])),
    ):
        ci2 = asn1_cms.ContentInfo.load(der)
        if field == "ct":
            ci2["content"]["auth_encrypted_content_info"]["encrypted_content"] = value
        else:
            ci2["content"]["mac"] = value
        with pytest.raises(TamperedMessage):
            cms.decrypt(ci2.dump(force=True), cert=leaf.cert, key=leaf.key)  # type: ignore[arg-type]


def test_gcm_auth_attrs_are_aad(p256: Leaf) -> None:
    der = cms.encrypt(b"q", [p256.cert], cipher="aes128-gcm", rng=os.urandom)
    ci = asn1_cms.ContentInfo.load(der)
    ci["content"]["auth_attrs"] = [{"type": "content_type", "values": ["data"]}]
    with pytest.raises(TamperedMessage):  # we encrypted without AAD; now there is AAD
        cms.decrypt(ci.dump(force=True), cert=p256.cert, key=p256.key)  # type: ignore[arg-type]


def test_tampered_cbc_last_block_fails(rsa: Leaf) -> None:
    der = cms.encrypt(b"w" * 40, [rsa.cert], cipher="aes256-cbc", rng=det_rng(9))
    ci = asn1_cms.ContentInfo.load(der)
    eci = ci["content"]["encrypted_content_info"]
    ct = bytearray(eci["encrypted_content"].native)
    ct[-20] ^= 0x55  # in the block before the last: breaks the padding
    eci["encrypted_content"] = bytes(ct)
    with pytest.raises(DecryptionFailed):
        cms.decrypt(ci.dump(force=True), cert=rsa.cert, key=rsa.key)  # type: ignore[arg-type]


def test_decrypt_structure_and_usage_errors(rsa: Leaf) -> None:
    der = cms.encrypt(b"x", [rsa.cert], rng=os.urandom)
    with pytest.raises(UsageError):
        cms.decrypt(der)
    with pytest.raises(UsageError):
        cms.decrypt(der, cert=rsa.cert)
    with pytest.raises(NotEncrypted):
        cms.decrypt(_sign(rsa), key=rsa.key)  # type: ignore[arg-type]
    with pytest.raises(MalformedMessage):
        cms.decrypt(b"garbage", key=rsa.key)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        cms.encrypt(b"x", [rsa.cert], cipher="des", rng=os.urandom)  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        cms.encrypt(b"x", [], rng=os.urandom)
    with pytest.raises(UsageError):
        cms.encrypt(b"x", [rsa.cert], rng=lambda n: b"short")


def test_unsupported_cipher(rsa: Leaf) -> None:
    der = cms.encrypt(b"x", [rsa.cert], rng=os.urandom)
    ci = asn1_cms.ContentInfo.load(der)
    ci["content"]["encrypted_content_info"]["content_encryption_algorithm"] = {
        "algorithm": "rc2",
        "parameters": {"rc2_parameter_version": 58, "iv": b"12345678"},
    }
    with pytest.raises(UnsupportedMessage):
        cms.decrypt(ci.dump(force=True), key=rsa.key)  # type: ignore[arg-type]


@pytest.mark.parametrize("cipher", CIPHERS)
def test_password_round_trip(cipher: str) -> None:
    der = cms.encrypt_password(
        b"pw body",
        b"hunter2",
        cipher=cipher,
        iterations=100,  # type: ignore[arg-type]
        rng=os.urandom,
    )
    res = cms.decrypt(der, password=b"hunter2")
    assert res.content == b"pw body" and res.cipher == cipher
    assert res.recipients[0].startswith("pwri pbkdf2")
    with pytest.raises(DecryptionFailed):
        cms.decrypt(der, password=b"hunter3")
    with pytest.raises(UsageError):
        cms.encrypt_password(b"x", b"", rng=os.urandom)


def test_password_iteration_cap() -> None:
    der = cms.encrypt_password(b"x", b"pw", iterations=10, rng=os.urandom)
    ci = asn1_cms.ContentInfo.load(der)
    pwri = ci["content"]["recipient_infos"][0].chosen
    pwri["key_derivation_algorithm"]["parameters"]["iteration_count"] = 10**9
    with pytest.raises(MessageTooLarge):
        cms.decrypt(ci.dump(force=True), password=b"pw")


# --- helpers --------------------------------------------------------------------------------------


def test_parse_capabilities() -> None:
    caps = asn1_cms.SMIMECapabilites(
        [
            {"capability_id": "aes256_cbc"},
            {"capability_id": "1.2.3.4"},
            {"capability_id": "tripledes_3key"},
        ]
    )
    assert cms.parse_capabilities(caps.dump()) == ("aes256-cbc", "1.2.3.4", "des-ede3-cbc")
    with pytest.raises(MalformedMessage):
        cms.parse_capabilities(b"\x04\x01x")


def _compressed(data: bytes) -> bytes:
    cd = asn1_cms.CompressedData(
        {
            "version": "v0",
            "compression_algorithm": {"algorithm": "zlib"},
            "encap_content_info": {"content_type": "data", "content": zlib.compress(data)},
        }
    )
    return asn1_cms.ContentInfo({"content_type": "compressed_data", "content": cd}).dump()


def test_decompress() -> None:
    der = _compressed(b"hello " * 100)
    assert cms.content_info_type(der) == "compressed-data"
    assert cms.decompress(der) == ("data", b"hello " * 100)
    bomb = _compressed(b"\x00" * (8 * 1024 * 1024))
    assert len(bomb) < 20_000
    with pytest.raises(MessageTooLarge):
        cms.decompress(bomb, max_size=1024 * 1024)
    assert len(cms.decompress(bomb, max_size=8 * 1024 * 1024)[1]) == 8 * 1024 * 1024
    with pytest.raises(MalformedMessage):
        cms.decompress(_compressed(b"x")[:-3])


def test_content_info_type() -> None:
    for bad in (b"", b"\x30\x00", b"\x04\x00", b"\x30\x02\x05\x00", os.urandom(40)):
        with pytest.raises(MalformedMessage):
            cms.content_info_type(bad)
    assert cms.content_info_type(asn1_cms.ContentInfo({"content_type": "1.2.3"}).dump()) == "1.2.3"


# --- fuzzing ------------------------------------------------------------------------------------

_FUZZ = settings(
    max_examples=300,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def samples(rsa: Leaf, p256: Leaf) -> list[bytes]:
    return [
        _sign(rsa, b"fuzz me"),
        _sign(p256, b"fuzz me", detached=True),
        cms.encrypt(b"fuzz", [rsa.cert, p256.cert], rng=os.urandom),
        cms.encrypt(b"fuzz", [rsa.cert, p256.cert], cipher="aes128-gcm", rng=os.urandom),
        cms.encrypt_password(b"fuzz", b"pw", iterations=2, rng=os.urandom),
        _compressed(b"fuzz"),
    ]


def _exercise(der: bytes, rsa: Leaf, p256: Leaf) -> None:
    for call in (
        lambda: cms.content_info_type(der),
        lambda: cms.verify(der),
        lambda: cms.verify(der, detached_content=b"fuzz me"),
        lambda: cms.decrypt(der, cert=rsa.cert, key=rsa.key),  # type: ignore[arg-type]
        lambda: cms.decrypt(der, key=p256.key),  # type: ignore[arg-type]
        lambda: cms.decrypt(der, password=b"pw"),
        lambda: cms.decompress(der, max_size=1 << 20),
        lambda: cms.extract_certificates(der),
    ):
        try:
            call()
        except SealmailError:
            pass


@_FUZZ
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes, rsa: Leaf, p256: Leaf) -> None:
    _exercise(data, rsa, p256)
    _exercise(b"\x30\x80" + data, rsa, p256)


@_FUZZ
@given(
    which=st.integers(0, 5),
    edits=st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.integers(0, 255),
            st.sampled_from(["set", "insert", "delete", "truncate"]),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_fuzz_mutated_der(
    which: int, edits: list[tuple[int, int, str]], samples: list[bytes], rsa: Leaf, p256: Leaf
) -> None:
    buf = bytearray(samples[which])
    for pos, val, op in edits:
        i = pos % max(len(buf), 1)
        if op == "set" and buf:
            buf[i] = val
        elif op == "insert":
            buf.insert(i, val)
        elif op == "delete" and buf:
            del buf[i]
        elif op == "truncate":
            del buf[i:]
    _exercise(bytes(buf), rsa, p256)


def test_mutation_of_every_byte_of_a_signature(rsa: Leaf) -> None:
    """Changing any single byte of a signed message never yields 'all valid' with the
    original content, and never leaks a non-Sealmail exception."""
    der = _sign(rsa, b"every byte")
    digest = hashlib.sha256(der).digest()
    assert len(digest) == 32
    for i in range(len(der)):
        mutated = der[:i] + bytes([der[i] ^ 0x04]) + der[i + 1 :]
        try:
            res = cms.verify(mutated)
        except SealmailError:
            continue
        # some bytes (e.g. inside certificates we do not validate here) may change harmlessly
        if res.all_valid:
            assert res.content == b"every byte"
            assert res.signers[0].certificate is not None
