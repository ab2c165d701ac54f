"""client.crypto.cms against the real ``openssl cms`` (OpenSSL 3.0), in both directions.

Each test works in its own tmp dir; certificates come from tests.helpers.pki (RSA-2048,
P-256 and P-384 leaves under a two-level test CA). openssl is a project dependency (the
Makefile installs it), so these tests are never skipped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.crypto import cms
from client.errors import DecryptionFailed, TamperedMessage, UnsupportedMessage
from tests.helpers.pki import Leaf, Pki, make_pki, write_pem

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
KEY_TYPES = ["rsa2048", "p256", "p384"]
BIG = os.urandom(5 * 1024 * 1024)
SIZES = {"empty": b"", "small": b"Hello, World!\r\n", "5MB": BIG}


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def leaves(pki: Pki) -> dict[str, Leaf]:
    return {kt: pki.leaf(f"{kt}@example.org", kt) for kt in KEY_TYPES}  # type: ignore[arg-type]


Openssl = Callable[..., bytes]


@pytest.fixture
def openssl(tmp_path: Path) -> Openssl:
    def run(*args: str, input: bytes | None = None, ok: bool = True) -> bytes:
        proc = subprocess.run(
            ["openssl", *args], input=input, capture_output=True, cwd=tmp_path, timeout=120
        )
        if ok and proc.returncode != 0:
            raise AssertionError(f"openssl {' '.join(args)} failed: {proc.stderr.decode()}")
        if not ok and proc.returncode == 0:
            raise AssertionError(f"openssl {' '.join(args)} unexpectedly succeeded")
        return proc.stdout

    return run


@pytest.fixture
def files(tmp_path: Path, pki: Pki, leaves: dict[str, Leaf]) -> Path:
    pki.write_ca_file(tmp_path / "ca.pem")
    write_pem(tmp_path / "inter.pem", pki.intermediate)
    for kt, leaf in leaves.items():
        write_pem(tmp_path / f"{kt}.crt", leaf.cert)
        write_pem(tmp_path / f"{kt}.key", leaf.key)
    return tmp_path


# --- our signatures -> openssl cms -verify ------------------------------------------------------


@pytest.mark.parametrize("kt", KEY_TYPES)
@pytest.mark.parametrize("detached", [False, True], ids=["opaque", "detached"])
@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_our_signature_verifies_in_openssl(
    kt: str,
    detached: bool,
    size: str,
    leaves: dict[str, Leaf],
    pki: Pki,
    files: Path,
    openssl: Openssl,
) -> None:
    content = SIZES[size]
    leaf = leaves[kt]
    der = cms.sign(
        content,
        signer_cert=leaf.cert,
        signer_key=leaf.key,  # type: ignore[arg-type]
        extra_certs=[pki.intermediate],
        detached=detached,
        now=NOW,
    )
    (files / "sig.der").write_bytes(der)
    (files / "content").write_bytes(content)
    args = [
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        "sig.der",
        "-CAfile",
        "ca.pem",
        "-binary",
        "-purpose",
        "smimesign",
    ]
    if detached:
        args += ["-content", "content"]
    assert openssl(*args) == content


@pytest.mark.parametrize("digest", ["sha384", "sha512"])
def test_our_rsa_pss_and_digests_verify_in_openssl(
    digest: str, leaves: dict[str, Leaf], pki: Pki, files: Path, openssl: Openssl
) -> None:
    leaf = leaves["rsa2048"]
    for pad in ("pkcs1v15", "pss"):
        der = cms.sign(
            b"x",
            signer_cert=leaf.cert,
            signer_key=leaf.key,  # type: ignore[arg-type]
            extra_certs=[pki.intermediate],
            detached=False,
            now=NOW,
            digest=digest,
            rsa_padding=pad,  # type: ignore[arg-type]
        )
        (files / "sig.der").write_bytes(der)
        out = openssl("cms", "-verify", "-inform", "DER", "-in", "sig.der", "-CAfile", "ca.pem")
        assert out == b"x"


def test_openssl_reads_our_capabilities_and_key_preference(
    leaves: dict[str, Leaf], pki: Pki, files: Path, openssl: Openssl
) -> None:
    leaf = leaves["p256"]
    der = cms.sign(
        b"x",
        signer_cert=leaf.cert,
        signer_key=leaf.key,  # type: ignore[arg-type]
        extra_certs=[pki.intermediate],
        detached=False,
        now=NOW,
        encryption_cert=leaves["rsa2048"].cert,
    )
    (files / "sig.der").write_bytes(der)
    text = openssl("cms", "-cmsout", "-print", "-inform", "DER", "-in", "sig.der").decode()
    assert "S/MIME Capabilities" in text
    assert "aes-256-gcm" in text and "rsaesOaep" in text
    assert "id-smime-aa-encrypKeyPref" in text
    assert "UTCTIME:Jan  2 03:04:05 2026 GMT" in text


# --- openssl cms -sign -> our verify -----------------------------------------------------------

SIGN_MODES = {
    "opaque": ["-nodetach"],
    "opaque-binary": ["-nodetach", "-binary"],
    "detached": [],
    "detached-binary": ["-binary"],
    "stream-ber": ["-nodetach", "-stream", "-binary"],
    "noattr": ["-nodetach", "-noattr", "-binary"],
    "nosmimecap": ["-nodetach", "-nosmimecap", "-binary"],
    "sha512": ["-nodetach", "-md", "sha512", "-binary"],
    "ski": ["-nodetach", "-keyid", "-binary"],
}


@pytest.mark.parametrize("kt", KEY_TYPES)
@pytest.mark.parametrize("mode", list(SIGN_MODES))
def test_openssl_signature_verifies_here(
    kt: str, mode: str, files: Path, openssl: Openssl, leaves: dict[str, Leaf]
) -> None:
    content = b"Content-Type: text/plain\r\n\r\nHello\r\n"
    (files / "content").write_bytes(content)
    der = openssl(
        "cms",
        "-sign",
        "-in",
        "content",
        "-signer",
        f"{kt}.crt",
        "-inkey",
        f"{kt}.key",
        "-certfile",
        "inter.pem",
        "-outform",
        "DER",
        *SIGN_MODES[mode],
    )
    detached = "-nodetach" not in SIGN_MODES[mode]
    res = cms.verify(der, detached_content=content if detached else None)
    assert res.all_valid, [s.reason for s in res.signers]
    # without -binary openssl canonicalises to CRLF; our content already is CRLF
    assert res.content == content
    assert res.detached is detached
    (signer,) = res.signers
    assert signer.certificate == leaves[kt].cert
    assert len(res.certificates) == 2
    if mode == "noattr":
        assert signer.signing_time is None
    else:
        assert signer.signing_time is not None
    if mode in ("noattr", "nosmimecap"):
        assert signer.capabilities == ()
    else:
        assert "aes256-cbc" in signer.capabilities
    assert signer.digest_algorithm == ("sha512" if mode == "sha512" else "sha256")
    # and a changed content is refused
    if detached:
        bad = cms.verify(der, detached_content=content + b"!")
        assert not bad.all_valid
        assert "digest" in (bad.signers[0].reason or "") or mode == "noattr"


def test_openssl_rsa_pss_signature_verifies_here(files: Path, openssl: Openssl) -> None:
    (files / "content").write_bytes(b"pss")
    der = openssl(
        "cms",
        "-sign",
        "-in",
        "content",
        "-signer",
        "rsa2048.crt",
        "-inkey",
        "rsa2048.key",
        "-keyopt",
        "rsa_padding_mode:pss",
        "-nodetach",
        "-binary",
        "-outform",
        "DER",
    )
    res = cms.verify(der)
    assert res.all_valid
    assert res.signers[0].signature_algorithm == "rsa-pss"


def test_openssl_two_signers_reported_individually(files: Path, openssl: Openssl) -> None:
    (files / "content").write_bytes(b"two")
    der = openssl(
        "cms",
        "-sign",
        "-in",
        "content",
        "-signer",
        "rsa2048.crt",
        "-inkey",
        "rsa2048.key",
        "-signer",
        "p256.crt",
        "-inkey",
        "p256.key",
        "-nodetach",
        "-binary",
        "-outform",
        "DER",
    )
    res = cms.verify(der)
    assert len(res.signers) == 2
    assert res.all_valid


# --- our envelopes -> openssl cms -decrypt -----------------------------------------------------

CIPHERS = ["aes256-cbc", "aes128-cbc", "aes256-gcm", "aes128-gcm"]
RECIPIENT_MODES = [("rsa2048", "oaep"), ("rsa2048", "pkcs1v15"), ("p256", "auto"), ("p384", "auto")]


@pytest.mark.parametrize("cipher", CIPHERS)
@pytest.mark.parametrize(
    ("kt", "pad"), RECIPIENT_MODES, ids=[f"{k}-{p}" for k, p in RECIPIENT_MODES]
)
def test_our_envelope_decrypts_in_openssl(
    cipher: str, kt: str, pad: str, leaves: dict[str, Leaf], files: Path, openssl: Openssl
) -> None:
    content = b"Secret health data\r\n" * 3
    der = cms.encrypt(
        content,
        [leaves[kt].cert],
        cipher=cipher,  # type: ignore[arg-type]
        rsa_padding=pad,
        rng=os.urandom,
    )  # type: ignore[arg-type]
    (files / "env.der").write_bytes(der)
    out = openssl(
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "env.der",
        "-recip",
        f"{kt}.crt",
        "-inkey",
        f"{kt}.key",
        "-binary",
    )
    assert out == content


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
@pytest.mark.parametrize("cipher", ["aes256-cbc", "aes256-gcm"])
def test_our_envelope_sizes_and_many_recipients(
    size: str, cipher: str, leaves: dict[str, Leaf], files: Path, openssl: Openssl
) -> None:
    content = SIZES[size]
    der = cms.encrypt(
        content, [leaf.cert for leaf in leaves.values()], cipher=cipher, rng=os.urandom
    )  # type: ignore[arg-type]
    (files / "env.der").write_bytes(der)
    for kt in KEY_TYPES:
        out = openssl(
            "cms",
            "-decrypt",
            "-inform",
            "DER",
            "-in",
            "env.der",
            "-recip",
            f"{kt}.crt",
            "-inkey",
            f"{kt}.key",
            "-binary",
            "-out",
            "out",
        )
        assert out == b""
        assert (files / "out").read_bytes() == content


def test_openssl_refuses_our_tampered_gcm(
    leaves: dict[str, Leaf], files: Path, openssl: Openssl
) -> None:
    der = bytearray(
        cms.encrypt(b"abc" * 100, [leaves["p256"].cert], cipher="aes256-gcm", rng=os.urandom)
    )
    der[-40] ^= 1  # inside the ciphertext
    (files / "env.der").write_bytes(bytes(der))
    openssl(
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "env.der",
        "-recip",
        "p256.crt",
        "-inkey",
        "p256.key",
        ok=False,
    )


# --- openssl cms -encrypt -> our decrypt -------------------------------------------------------

OSSL_CIPHERS = {
    "-aes256": "aes256-cbc",
    "-aes128": "aes128-cbc",
    "-aes192": "aes192-cbc",
    "-aes-256-gcm": "aes256-gcm",
    "-aes-128-gcm": "aes128-gcm",
    "-des3": "des-ede3-cbc",
}
OSSL_RECIPIENTS = {
    "rsa-v15": ("rsa2048", []),
    "rsa-oaep": ("rsa2048", ["-keyopt", "rsa_padding_mode:oaep"]),
    "rsa-oaep-sha512": (
        "rsa2048",
        [
            "-keyopt",
            "rsa_padding_mode:oaep",
            "-keyopt",
            "rsa_oaep_md:sha512",
            "-keyopt",
            "rsa_mgf1_md:sha384",
        ],
    ),
    "p256": ("p256", []),
    "p384": ("p384", []),
    "p256-ski": ("p256", ["-keyid"]),
    "rsa-ski": ("rsa2048", ["-keyid"]),
}


@pytest.mark.parametrize("flag", list(OSSL_CIPHERS))
@pytest.mark.parametrize("rmode", list(OSSL_RECIPIENTS))
def test_openssl_envelope_decrypts_here(
    flag: str, rmode: str, leaves: dict[str, Leaf], files: Path, openssl: Openssl
) -> None:
    kt, extra = OSSL_RECIPIENTS[rmode]
    legacy_wrap = flag == "-des3" and kt.startswith("p")
    content = b"From openssl\r\n"
    (files / "content").write_bytes(content)
    der = openssl(
        "cms",
        "-encrypt",
        "-in",
        "content",
        "-binary",
        "-outform",
        "DER",
        flag,
        "-recip",
        f"{kt}.crt",
        *extra,
    )
    if legacy_wrap:
        # 3DES content with ECDH makes OpenSSL use id-alg-CMS3DESwrap (RFC 3217): not read
        with pytest.raises(UnsupportedMessage, match="cms3deswrap"):
            cms.decrypt(der, cert=leaves[kt].cert, key=leaves[kt].key)  # type: ignore[arg-type]
        return
    res = cms.decrypt(der, cert=leaves[kt].cert, key=leaves[kt].key)  # type: ignore[arg-type]
    assert res.content == content
    assert res.cipher == OSSL_CIPHERS[flag]
    assert res.aead is flag.endswith("gcm")
    # also without naming the certificate (every RecipientInfo of the key type is tried)
    assert cms.decrypt(der, key=leaves[kt].key).content == content  # type: ignore[arg-type]


@pytest.mark.parametrize("size", list(SIZES), ids=list(SIZES))
def test_openssl_envelope_sizes_stream(
    size: str, leaves: dict[str, Leaf], files: Path, openssl: Openssl
) -> None:
    content = SIZES[size]
    (files / "content").write_bytes(content)
    der = openssl(
        "cms",
        "-encrypt",
        "-in",
        "content",
        "-binary",
        "-outform",
        "DER",
        "-stream",
        "-aes256",
        "-recip",
        "rsa2048.crt",
        "-recip",
        "p256.crt",
    )
    for kt in ("rsa2048", "p256"):
        leaf = leaves[kt]
        assert cms.decrypt(der, cert=leaf.cert, key=leaf.key).content == content  # type: ignore[arg-type]


def test_openssl_envelope_for_someone_else_fails_opaquely(
    leaves: dict[str, Leaf], pki: Pki, files: Path, openssl: Openssl
) -> None:
    (files / "content").write_bytes(b"x")
    der = openssl(
        "cms",
        "-encrypt",
        "-in",
        "content",
        "-outform",
        "DER",
        "-aes-256-gcm",
        "-recip",
        "rsa2048.crt",
    )
    other = pki.leaf("mallory@example.org", "rsa2048")
    with pytest.raises(DecryptionFailed):
        cms.decrypt(der, cert=other.cert, key=other.key)  # type: ignore[arg-type]
    with pytest.raises(DecryptionFailed):  # v1.5 with the wrong key: implicit rejection
        cms.decrypt(der, key=other.key)  # type: ignore[arg-type]


def test_openssl_gcm_tag_flip_is_tampered(
    leaves: dict[str, Leaf], files: Path, openssl: Openssl
) -> None:
    (files / "content").write_bytes(b"x" * 100)
    der = bytearray(
        openssl(
            "cms",
            "-encrypt",
            "-in",
            "content",
            "-outform",
            "DER",
            "-aes-256-gcm",
            "-recip",
            "p256.crt",
        )
    )
    der[-1] ^= 0x80  # last byte of the mac
    leaf = leaves["p256"]
    with pytest.raises(TamperedMessage):
        cms.decrypt(bytes(der), cert=leaf.cert, key=leaf.key)  # type: ignore[arg-type]


# --- PWRI both ways ----------------------------------------------------------------------------


@pytest.mark.parametrize("cipher", CIPHERS)
def test_our_password_envelope_decrypts_in_openssl(
    cipher: str, files: Path, openssl: Openssl
) -> None:
    der = cms.encrypt_password(
        b"pw content",
        b"correct horse",
        cipher=cipher,  # type: ignore[arg-type]
        iterations=1000,
        rng=os.urandom,
    )
    (files / "env.der").write_bytes(der)
    out = openssl(
        "cms",
        "-decrypt",
        "-inform",
        "DER",
        "-in",
        "env.der",
        "-pwri_password",
        "correct horse",
        "-binary",
    )
    assert out == b"pw content"
    openssl(
        "cms", "-decrypt", "-inform", "DER", "-in", "env.der", "-pwri_password", "wrong", ok=False
    )


def test_openssl_cannot_write_password_gcm(files: Path, openssl: Openssl) -> None:
    """OpenSSL 3.0 refuses PWRI with an AEAD content cipher (it reads ours, see above)."""
    (files / "content").write_bytes(b"x")
    openssl(
        "cms",
        "-encrypt",
        "-in",
        "content",
        "-outform",
        "DER",
        "-aes-256-gcm",
        "-pwri_password",
        "s3cret",
        ok=False,
    )


@pytest.mark.parametrize("flag", ["-aes256", "-aes128", "-des3"])
def test_openssl_password_envelope_decrypts_here(flag: str, files: Path, openssl: Openssl) -> None:
    (files / "content").write_bytes(b"pw from openssl")
    der = openssl(
        "cms",
        "-encrypt",
        "-in",
        "content",
        "-binary",
        "-outform",
        "DER",
        flag,
        "-pwri_password",
        "s3cret",
    )
    assert cms.decrypt(der, password=b"s3cret").content == b"pw from openssl"
    with pytest.raises(DecryptionFailed):
        cms.decrypt(der, password=b"wrong")


def test_content_info_type_of_openssl_outputs(files: Path, openssl: Openssl) -> None:
    (files / "content").write_bytes(b"x")
    signed = openssl(
        "cms",
        "-sign",
        "-in",
        "content",
        "-signer",
        "p256.crt",
        "-inkey",
        "p256.key",
        "-outform",
        "DER",
    )
    env = openssl(
        "cms", "-encrypt", "-in", "content", "-outform", "DER", "-aes256", "-recip", "p256.crt"
    )
    auth = openssl(
        "cms", "-encrypt", "-in", "content", "-outform", "DER", "-aes-128-gcm", "-recip", "p256.crt"
    )
    data = openssl("cms", "-data_create", "-in", "content", "-outform", "DER")
    digest = openssl("cms", "-digest_create", "-in", "content", "-outform", "DER")
    assert cms.content_info_type(signed) == "signed-data"
    assert cms.content_info_type(env) == "enveloped-data"
    assert cms.content_info_type(auth) == "authenveloped-data"
    assert cms.content_info_type(data) == "data"
    assert cms.content_info_type(digest) == "digested-data"


@pytest.mark.parametrize("kdf", ["sha1", "sha224", "sha256", "sha384", "sha512"])
@pytest.mark.parametrize("kt", ["p256", "p384", "p521"])
def test_openssl_ecdh_kdf_variants_decrypt_here(
    kdf: str, kt: str, pki: Pki, tmp_path: Path, openssl: Openssl
) -> None:
    leaf = pki.leaf(f"{kt}-kdf@example.org", kt)  # type: ignore[arg-type]
    write_pem(tmp_path / "r.crt", leaf.cert)
    (tmp_path / "content").write_bytes(b"kdf")
    der = openssl(
        "cms",
        "-encrypt",
        "-in",
        "content",
        "-binary",
        "-outform",
        "DER",
        "-aes-256-gcm",
        "-recip",
        "r.crt",
        "-keyopt",
        f"ecdh_kdf_md:{kdf}",
    )
    res = cms.decrypt(der, cert=leaf.cert, key=leaf.key)  # type: ignore[arg-type]
    assert res.content == b"kdf"
    assert f"{kdf}kdf" in res.opened_by


def test_openssl_p521_reads_ours(pki: Pki, tmp_path: Path, openssl: Openssl) -> None:
    leaf = pki.leaf("p521@example.org", "p521")
    write_pem(tmp_path / "r.crt", leaf.cert)
    write_pem(tmp_path / "r.key", leaf.key)
    (tmp_path / "env.der").write_bytes(
        cms.encrypt(b"521", [leaf.cert], cipher="aes256-gcm", rng=os.urandom)
    )
    out = openssl(
        "cms", "-decrypt", "-inform", "DER", "-in", "env.der", "-recip", "r.crt", "-inkey", "r.key"
    )
    assert out == b"521"
