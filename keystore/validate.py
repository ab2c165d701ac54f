"""S/MIME certificate validation for one address at one moment.

Theory of operation
-------------------
:func:`validate_email_cert` answers "may I use this certificate to encrypt to (or
accept signatures from) this address at ``now``?" with a frozen :class:`CertStatus`.
The checks run in this order and the first failure is the answer:

0. *The leaf's own validity period* at ``now`` (checked here, because pyhanko does
   not time-check trust anchors and a pinned leaf is one). ``expired``/``not-yet-valid``.
1. *Path* (pyhanko-certvalidator, no home-made path builder): a chain from the leaf
   to a trust anchor (the user's anchors, optionally plus the system store), every
   certificate inside its validity period at ``now``, signatures good, revocation from
   the CRLs given (and OCSP/CRL fetching only when ``allow_fetching``). The revocation
   mode defaults to "soft-fail": a revocation source that cannot be reached does not
   fail the check, a certificate listed as revoked does.
   Results: ``expired``, ``not-yet-valid``, ``revoked``, ``untrusted``, ``invalid``.
   pyhanko's "soft-fail" does not look at cached CRLs for a certificate without CRL
   distribution points; so when a CRL from the leaf's issuer is at hand, the leaf's
   rule becomes "CRL required" (pyhanko then checks that CRL's signature and
   freshness), falling back to plain soft-fail only if that CRL is unusable (stale).
2. *Usage* (done here, after RFC 8550 section 4.4): keyUsage absent or containing
   keyEncipherment (RSA) / keyAgreement (EC) to encrypt, digitalSignature or
   nonRepudiation to sign; extendedKeyUsage absent or containing emailProtection or
   anyExtendedKeyUsage. Result: ``wrong-usage``.
3. *Address*: the address is one of the certificate's rfc822Name entries (or, with no
   such entry, its subject emailAddress), compared case-insensitively.
   Result: ``wrong-address``.

pyhanko-certvalidator's API is async; :func:`_run` runs a coroutine with
``asyncio.run`` or, when the calling thread already runs an event loop (a Qt/asyncio
app), on a short-lived worker thread with its own loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID

from keystore.certs import cert_emails

__all__ = [
    "CertStatus",
    "Status",
    "Usage",
    "ValidationSettings",
    "check_usage",
    "validate_email_cert",
]

log = logging.getLogger(__name__)

Status = Literal[
    "valid",
    "expired",
    "not-yet-valid",
    "revoked",
    "untrusted",
    "wrong-address",
    "wrong-usage",
    "invalid",
]
Usage = Literal["encrypt", "sign"]


@dataclass(frozen=True)
class CertStatus:
    status: Status
    detail: str

    @property
    def valid(self) -> bool:
        return self.status == "valid"


@dataclass(frozen=True)
class ValidationSettings:
    allow_fetching: bool = False
    revocation_mode: Literal["soft-fail", "hard-fail", "require"] = "soft-fail"
    use_system_trust: bool = False


def _run(factory: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run ``factory()`` (a coroutine) to completion from sync code, loop or no loop."""
    import asyncio  # here, like pyhanko below: 75 ms of every start that validates nothing
    import concurrent.futures

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _asn1_crl(crl: bytes | x509.CertificateRevocationList) -> asn1_crl.CertificateList:
    der = crl if isinstance(crl, bytes) else crl.public_bytes(serialization.Encoding.DER)
    return asn1_crl.CertificateList.load(der)


def check_usage(cert: x509.Certificate, usage: Usage) -> str:
    """'' if the leaf may be used for ``usage`` in S/MIME, else why not."""
    try:
        ku: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    try:
        eku: x509.ExtendedKeyUsage | None = cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage
        ).value
    except x509.ExtensionNotFound:
        eku = None
    if eku is not None and not (
        ExtendedKeyUsageOID.EMAIL_PROTECTION in eku
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
    ):
        return "the certificate's extended key usage does not include emailProtection"
    if ku is None:
        return ""
    if usage == "sign":
        if ku.digital_signature or ku.content_commitment:
            return ""
        return "the certificate's key usage does not allow signing"
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        return "" if ku.key_encipherment else "the certificate's key usage forbids key transport"
    if isinstance(pub, ec.EllipticCurvePublicKey | x25519.X25519PublicKey):
        return "" if ku.key_agreement else "the certificate's key usage forbids key agreement"
    return "the certificate's key type cannot be used to encrypt"


def _classify(exc: Exception) -> CertStatus:
    from pyhanko_certvalidator import errors as pv_errors

    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, pv_errors.RevokedError):
        return CertStatus("revoked", msg)
    if isinstance(exc, pv_errors.ExpiredError):
        return CertStatus("expired", msg)
    if isinstance(exc, pv_errors.NotYetValidError):
        return CertStatus("not-yet-valid", msg)
    if isinstance(exc, pv_errors.PathBuildingError):
        return CertStatus("untrusted", msg)
    if isinstance(exc, pv_errors.InsufficientRevinfoError):
        return CertStatus("invalid", f"revocation status unknown: {msg}")
    return CertStatus("invalid", msg)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def validate_email_cert(
    cert: x509.Certificate,
    email: str | None,
    *,
    usage: Usage,
    now: datetime,
    trust_anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate] = (),
    crls: Sequence[bytes | x509.CertificateRevocationList] = (),
    settings: ValidationSettings | None = None,
) -> CertStatus:
    """The status of ``cert`` for ``usage`` by/to ``email`` (None: skip the address)."""
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator import errors as pv_errors
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )

    opts = settings or ValidationSettings()
    anchors = [_asn1(a) for a in trust_anchors]
    if not anchors and not opts.use_system_trust:
        return CertStatus("untrusted", "no trust anchors are configured")
    moment = _aware(now)
    # pyhanko does not time-check a trust anchor, and a pinned leaf is one: check here.
    if moment > cert.not_valid_after_utc:
        return CertStatus("expired", f"the certificate expired on {cert.not_valid_after_utc}")
    if moment < cert.not_valid_before_utc:
        return CertStatus(
            "not-yet-valid", f"the certificate is valid from {cert.not_valid_before_utc}"
        )
    if cert.issuer == cert.subject and cert not in trust_anchors:
        return CertStatus("untrusted", "a self-signed certificate that is not trusted")
    try:
        asn1_crls = [_asn1_crl(c) for c in crls]
        leaf_crl = opts.revocation_mode == "soft-fail" and any(
            c.issuer.dump() == _asn1(cert).issuer.dump() for c in asn1_crls
        )

        def attempt(strict_leaf: bool) -> None:
            policy = None
            if strict_leaf:
                policy = CertRevTrustPolicy(
                    RevocationCheckingPolicy(
                        ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
                        intermediate_ca_cert_rule=RevocationCheckingRule.CHECK_IF_DECLARED_SOFT,
                    )
                )
            context = ValidationContext(
                trust_roots=None if opts.use_system_trust else anchors,
                extra_trust_roots=anchors if opts.use_system_trust else None,
                other_certs=[_asn1(c) for c in intermediates],
                moment=_aware(now),
                allow_fetching=opts.allow_fetching,
                crls=asn1_crls,
                revocation_mode=opts.revocation_mode,
                revinfo_policy=policy,
            )
            validator = CertificateValidator(_asn1(cert), validation_context=context)
            _run(validator.async_validate_path)

        try:
            attempt(strict_leaf=leaf_crl)
        except pv_errors.InsufficientRevinfoError:
            if not leaf_crl:
                raise
            log.debug("the CRL at hand for the leaf is unusable; soft-fail", exc_info=True)
            attempt(strict_leaf=False)
    except (pv_errors.PathError, pv_errors.ValidationError) as exc:
        log.debug("certificate path validation failed", exc_info=True)
        return _classify(exc)
    except (ValueError, TypeError, KeyError) as exc:  # malformed certificate/CRL content
        log.debug("certificate could not be validated", exc_info=True)
        return CertStatus("invalid", f"the certificate could not be checked: {exc}")
    why = check_usage(cert, usage)
    if why:
        return CertStatus("wrong-usage", why)
    if email is not None:
        addrs = cert_emails(cert)
        if email.strip().lower() not in addrs:
            shown = ", ".join(addrs) if addrs else "no address"
            return CertStatus("wrong-address", f"the certificate is for {shown}, not {email}")
    return CertStatus("valid", "the certificate chains to a trust anchor and fits the address")
