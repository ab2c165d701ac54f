"""S/MIME certificate validation: the matrix of cases and the exact status of each."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keystore.validate import CertStatus, ValidationSettings, check_usage, validate_email_cert
from tests.helpers.pki_matrix import EMAIL, EXPECTED, NOW, Matrix, make_matrix


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return make_matrix()


def _status(
    m: Matrix,
    case: str,
    *,
    email: str | None = EMAIL,
    usage: str = "encrypt",
    now: dt.datetime = NOW,
    crls: bool = True,
    settings: ValidationSettings | None = None,
) -> CertStatus:
    return validate_email_cert(
        m.leaves[case].cert,
        email,
        usage=usage,  # type: ignore[arg-type]
        now=now,
        trust_anchors=[m.pki.root],
        intermediates=[m.pki.intermediate, m.other_pki.intermediate],
        crls=[m.crl] if crls else [],
        settings=settings,
    )


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_matrix_encrypt(matrix: Matrix, case: str) -> None:
    result = _status(matrix, case)
    assert result.status == EXPECTED[case], result
    assert result.detail


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_matrix_sign_same_as_encrypt(matrix: Matrix, case: str) -> None:
    assert _status(matrix, case, usage="sign").status == EXPECTED[case]


def test_address_compare_is_case_insensitive(matrix: Matrix) -> None:
    assert _status(matrix, "good", email="Alice@Example.ORG").valid


def test_address_none_skips_the_address_check(matrix: Matrix) -> None:
    assert _status(matrix, "wrong_address", email=None).valid


def test_revoked_without_crl_is_valid_in_soft_fail(matrix: Matrix) -> None:
    # soft-fail: no revocation information known -> not held against the certificate
    assert _status(matrix, "revoked", crls=False).status == "valid"


def test_hard_fail_without_revocation_info_is_not_valid(matrix: Matrix) -> None:
    res = _status(
        matrix, "good", crls=False, settings=ValidationSettings(revocation_mode="require")
    )
    assert res.status == "invalid"


def test_expired_leaf_was_valid_in_its_time(matrix: Matrix) -> None:
    then = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    assert _status(matrix, "expired", now=then, crls=False).status == "valid"


def test_everything_expires_after_the_ca(matrix: Matrix) -> None:
    later = dt.datetime(2046, 1, 1, tzinfo=dt.UTC)
    assert _status(matrix, "good", now=later, crls=False).status == "expired"


def test_no_trust_anchors_is_untrusted(matrix: Matrix) -> None:
    res = validate_email_cert(
        matrix.leaves["good"].cert, EMAIL, usage="encrypt", now=NOW, trust_anchors=[]
    )
    assert res.status == "untrusted"


def test_missing_intermediate_is_untrusted(matrix: Matrix) -> None:
    res = validate_email_cert(
        matrix.leaves["good"].cert, EMAIL, usage="encrypt", now=NOW, trust_anchors=[matrix.pki.root]
    )
    assert res.status == "untrusted"


def test_intermediate_as_anchor_is_enough(matrix: Matrix) -> None:
    res = validate_email_cert(
        matrix.leaves["good"].cert,
        EMAIL,
        usage="encrypt",
        now=NOW,
        trust_anchors=[matrix.pki.intermediate],
        crls=[matrix.crl],
    )
    assert res.valid


def test_crl_given_as_der_bytes(matrix: Matrix) -> None:
    res = validate_email_cert(
        matrix.leaves["revoked"].cert,
        EMAIL,
        usage="encrypt",
        now=NOW,
        trust_anchors=[matrix.pki.root],
        intermediates=[matrix.pki.intermediate],
        crls=[matrix.crl.public_bytes(serialization.Encoding.DER)],
    )
    assert res.status == "revoked"


def test_works_inside_a_running_event_loop(matrix: Matrix) -> None:
    async def inside() -> CertStatus:
        return _status(matrix, "revoked")

    assert asyncio.run(inside()).status == "revoked"


def test_usage_rules_for_key_types(matrix: Matrix) -> None:
    assert check_usage(matrix.leaves["good"].cert, "encrypt") == ""
    assert check_usage(matrix.leaves["good_ec"].cert, "encrypt") == ""
    assert check_usage(matrix.leaves["good_ec"].cert, "sign") == ""
    assert "emailProtection" in check_usage(matrix.leaves["wrong_eku"].cert, "sign")


def test_signing_only_key_usage_is_wrong_usage_to_encrypt(matrix: Matrix) -> None:
    # A leaf whose keyUsage allows signing only: fine to verify, not to encrypt to.
    leaf = matrix.leaves["good"]
    pki = matrix.pki
    builder = (
        x509.CertificateBuilder()
        .subject_name(leaf.cert.subject)
        .issuer_name(pki.intermediate.subject)
        .public_key(leaf.key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(leaf.cert.not_valid_before_utc)
        .not_valid_after(leaf.cert.not_valid_after_utc)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(EMAIL)]), critical=False)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
    )
    from cryptography.hazmat.primitives import hashes

    cert = builder.sign(pki.intermediate_key, hashes.SHA256())  # type: ignore[arg-type]
    common = {
        "now": NOW,
        "trust_anchors": [pki.root],
        "intermediates": [pki.intermediate],
        "crls": [matrix.crl],
    }
    assert validate_email_cert(cert, EMAIL, usage="encrypt", **common).status == "wrong-usage"  # type: ignore[arg-type]
    assert validate_email_cert(cert, EMAIL, usage="sign", **common).status == "valid"  # type: ignore[arg-type]
