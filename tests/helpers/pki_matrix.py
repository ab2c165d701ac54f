"""The certificate matrix for keystore validation tests, built on :mod:`tests.helpers.pki`.

One root CA, one intermediate, and a leaf per case, plus a CRL from the intermediate
that lists the revoked leaf. ``NOW`` lies inside every "good" validity period. The
expected status of each case (for address ``EMAIL`` unless the case says otherwise) is
in ``EXPECTED``; the closing note of the keystore work repeats this table.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from keystore.certs import generate_selfsigned
from tests.helpers.pki import Leaf, Pki, make_pki

__all__ = ["EMAIL", "EXPECTED", "NOW", "Matrix", "make_crl", "make_matrix"]

NOW = _dt.datetime(2026, 6, 1, 12, 0, tzinfo=_dt.UTC)
EMAIL = "alice@example.org"

#: case -> expected CertStatus.status for (usage="encrypt", address=EMAIL)
EXPECTED = {
    "good": "valid",
    "good_ec": "valid",
    "revoked": "revoked",
    "expired": "expired",
    "not_yet_valid": "not-yet-valid",
    "wrong_eku": "wrong-usage",
    "wrong_address": "wrong-address",
    "untrusted": "untrusted",  # self-signed, not pinned
    "forged_chain": "invalid",  # issuer names match our CAs, signatures do not
}


@dataclass
class Matrix:
    pki: Pki
    other_pki: Pki  # a look-alike CA (same names as ``pki``) the user does not trust
    leaves: dict[str, Leaf]
    crl: x509.CertificateRevocationList


def make_crl(
    pki: Pki, revoked_serials: list[int], *, now: _dt.datetime = NOW
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.intermediate.subject)
        .last_update(now - _dt.timedelta(days=1))
        .next_update(now + _dt.timedelta(days=30))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                pki.intermediate.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(now - _dt.timedelta(days=2))
            .build()
        )
    return builder.sign(pki.intermediate_key, hashes.SHA256())  # type: ignore[arg-type]


def _self_signed(email: str) -> Leaf:
    key, cert = generate_selfsigned(email, "Self Signed", now=NOW)
    return Leaf(cert=cert, key=key, email=email, chain=())


def make_matrix() -> Matrix:
    pki = make_pki("p256")
    other = make_pki("p256")
    leaves = {
        "good": pki.leaf(EMAIL, "rsa2048"),
        "good_ec": pki.leaf(EMAIL, "p256"),
        "revoked": pki.leaf(EMAIL, "rsa2048"),
        "expired": pki.leaf(
            EMAIL,
            "p256",
            not_before=_dt.datetime(2024, 1, 1, tzinfo=_dt.UTC),
            not_after=_dt.datetime(2025, 1, 1, tzinfo=_dt.UTC),
        ),
        "not_yet_valid": pki.leaf(
            EMAIL, "p256", not_before=_dt.datetime(2030, 1, 1, tzinfo=_dt.UTC)
        ),
        "wrong_eku": pki.leaf(EMAIL, "p256", eku=(ExtendedKeyUsageOID.SERVER_AUTH,)),
        "wrong_address": pki.leaf("mallory@example.net", "p256"),
        "untrusted": _self_signed(EMAIL),
        "forged_chain": other.leaf(EMAIL, "p256"),
    }
    crl = make_crl(pki, [leaves["revoked"].cert.serial_number])
    return Matrix(pki=pki, other_pki=other, leaves=leaves, crl=crl)
