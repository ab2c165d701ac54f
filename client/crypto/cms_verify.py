"""CMS SignedData (RFC 5652 section 5): check signatures.

Theory of operation
-------------------
:func:`verify` parses everything first (a broken structure raises ``MalformedMessage``;
one without signerInfos raises ``NotSigned`` -- a certs-only bag is never "signed"), then
checks each SignerInfo on its own and reports it as a :class:`SignerResult`:

* the signer certificate is looked up by IssuerAndSerialNumber or SubjectKeyIdentifier in
  the certificates of the message (plus any the caller supplies);
* with signed attributes: exactly one contentType equal to eContentType, exactly one
  messageDigest equal to the digest of the content, and a signature over the attributes
  re-encoded as a SET (the bytes as sent; if they are not DER, their DER re-encoding);
* without signed attributes: eContentType must be id-data and the signature is over the
  content itself.

Signature algorithms: RSA PKCS#1 v1.5, RSASSA-PSS, ECDSA, DSA, Ed25519, Ed448; MD5 is
refused. ``valid`` says only that the signature is mathematically good for that
certificate; path validation, revocation, EKU and address checks are the keystore's job,
with ``VerifyResult.certificates`` as the untrusted intermediates. Certificates that
``cryptography`` cannot load (or only with warnings) are left out of the bag; a signer
named by one is reported as "could not be parsed".
"""

from __future__ import annotations

import hmac
import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa

from client.crypto.bercheck import check_headers
from client.crypto.cms_common import (
    DIGEST_OIDS,
    DIGESTS,
    OID,
    Rid,
    cert_rid,
    der_tlv,
    digest_name,
    hash_for_name,
    oid_name,
    retag,
    split_tlvs,
    translate_errors,
)
from client.crypto.cms_sign import parse_capabilities
from client.errors import MalformedMessage, MessageTooLarge, NotSigned, UsageError

__all__ = [
    "MAX_SIGNERS",
    "SignerResult",
    "VerifyResult",
    "detached_digest_names",
    "extract_certificates",
    "verify",
]

log = logging.getLogger(__name__)

# signature algorithm OID -> (key family, hash name or None = use the SignerInfo digest)
_SIG_ALGS: dict[str, tuple[str, str | None]] = {
    OID.RSA: ("rsa", None),
    "1.2.840.113549.1.1.4": ("rsa", "md5"),
    "1.2.840.113549.1.1.5": ("rsa", "sha1"),
    "1.3.14.3.2.29": ("rsa", "sha1"),
    "1.2.840.113549.1.1.14": ("rsa", "sha224"),
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    OID.RSASSA_PSS: ("rsa-pss", None),
    OID.EC_PUBLIC_KEY: ("ecdsa", None),
    "1.2.840.10045.4.1": ("ecdsa", "sha1"),
    "1.2.840.10045.4.3.1": ("ecdsa", "sha224"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    "1.2.840.10040.4.1": ("dsa", None),
    "1.2.840.10040.4.3": ("dsa", "sha1"),
    "2.16.840.1.101.3.4.3.1": ("dsa", "sha224"),
    "2.16.840.1.101.3.4.3.2": ("dsa", "sha256"),
    OID.ED25519: ("ed25519", None),
    "1.3.101.113": ("ed448", None),
}
_WEAK_DIGESTS = frozenset({"md5"})
MAX_SIGNERS = 64  # more signerInfos are refused (MessageTooLarge)


@dataclass(frozen=True)
class SignerResult:
    """One SignerInfo, checked on its own.

    ``valid`` is the mathematical result only (no path validation). ``reason`` says why
    not when ``valid`` is False. ``certificate`` is the signer certificate found in the
    message (or supplied by the caller), None if absent. ``signer_id`` describes the
    SignerIdentifier as sent (useful when the certificate is missing).
    """

    valid: bool
    reason: str | None
    certificate: x509.Certificate | None
    signer_id: str
    signing_time: datetime | None
    digest_algorithm: str
    signature_algorithm: str
    capabilities: tuple[str, ...]
    encryption_key_preference: str | None = None


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`.

    ``content`` is the encapsulated content (or the detached content the caller gave).
    ``all_valid`` is True only if there is at least one signer and every signer is valid.
    """

    content: bytes
    content_type: str
    detached: bool
    signers: tuple[SignerResult, ...]
    certificates: tuple[x509.Certificate, ...]

    @property
    def all_valid(self) -> bool:
        return bool(self.signers) and all(s.valid for s in self.signers)


# --- parse phase -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Attr:
    oid: str
    values: tuple[bytes, ...]


@dataclass(frozen=True)
class _ParsedSigner:
    rid: Rid
    digest_oid: str
    sig_oid: str
    sig_params: bytes | None
    signature: bytes
    signed_attrs: bytes | None  # SET OF, as sent (tag swapped)
    signed_attrs_der: bytes | None  # SET OF, DER re-encoding (sorted)
    attrs: tuple[_Attr, ...]


@dataclass(frozen=True)
class _ParsedSignedData:
    econtent_type: str
    econtent: bytes | None
    certificates: tuple[x509.Certificate, ...]
    unloadable: tuple[Rid, ...]
    signers: tuple[_ParsedSigner, ...]


def _parse_rid(sid: cms.SignerIdentifier) -> Rid:
    if sid.name == "issuer_and_serial_number":
        ias = sid.chosen
        return Rid(issuer_der=ias["issuer"].dump(), serial=int(ias["serial_number"].native))
    return Rid(ski=bytes(sid.chosen.native))


def _load_certs(choices: object) -> tuple[tuple[x509.Certificate, ...], tuple[Rid, ...]]:
    """(certificates cryptography can load, identifiers of those it cannot)."""
    out: list[x509.Certificate] = []
    raw: list[Rid] = []
    if isinstance(choices, core.Void) or choices is None:
        return (), ()
    for choice in choices:  # type: ignore[attr-defined]
        if choice.name != "certificate":
            continue
        der = choice.chosen.dump()
        try:
            # cryptography parses lazily too: touch what we and the keystore will use, and
            # treat its warnings (negative serials, bad attribute lengths...) as errors
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                cert = x509.load_der_x509_certificate(der)
                cert_rid(cert)
                _ = (cert.subject, cert.extensions, cert.not_valid_after_utc)
            out.append(cert)
        except (ValueError, Warning) as exc:
            log.debug("skipping a certificate cryptography cannot load: %s", exc)
            try:
                c = choice.chosen
                ski = c.key_identifier
                raw.append(
                    Rid(
                        issuer_der=c.issuer.dump(),
                        serial=int(c.serial_number),
                        ski=None if ski is None else bytes(ski),
                    )
                )
            except Exception:  # noqa: S112 - not even asn1crypto can read it: ignore it
                continue
    return tuple(out), tuple(raw)


class _AttrValues(core.SetOf):  # type: ignore[misc]
    _child_spec: ClassVar[Any] = core.Any


class _Attribute(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("type", core.ObjectIdentifier),
        ("values", _AttrValues),
    ]


class _Attributes(core.SetOf):  # type: ignore[misc]
    _child_spec: ClassVar[Any] = _Attribute


def _parse_signed_data(der: bytes) -> _ParsedSignedData:
    with translate_errors("SignedData"):
        check_headers(der, "SignedData")  # asn1crypto is quadratic on long tags (DoS)
        ci = cms.ContentInfo.load(der, strict=True)
        ctype = ci["content_type"].dotted
        if ctype != OID.SIGNED_DATA:
            raise NotSigned(f"not a SignedData (content type {ctype})")
        sd = ci["content"]
        if not isinstance(sd, cms.SignedData):
            raise MalformedMessage("SignedData: unexpected content")
        encap = sd["encap_content_info"]
        econtent_type = encap["content_type"].dotted
        econtent_value = encap["content"]
        econtent: bytes | None
        if isinstance(econtent_value, core.Void):
            econtent = None
        elif isinstance(econtent_value, core.OctetString | core.ParsableOctetString):
            econtent = bytes(econtent_value)
        else:  # PKCS#7 v1 ContentInfo with a non-OCTET STRING content: its content octets
            econtent = bytes(econtent_value.contents or b"")
        certs, raw_certs = _load_certs(sd["certificates"])
        signers: list[_ParsedSigner] = []
        if len(sd["signer_infos"]) > MAX_SIGNERS:
            raise MessageTooLarge("the signature has too many signers")
        for si in sd["signer_infos"]:
            sig_alg = si["signature_algorithm"]
            params = sig_alg["parameters"]
            sig_params = None if isinstance(params, core.Void | core.Null) else params.dump()
            signed = si["signed_attrs"]
            sa: bytes | None = None
            sa_der: bytes | None = None
            attrs: list[_Attr] = []
            if not isinstance(signed, core.Void):
                sa = retag(signed, 0x31)
                parsed = _Attributes.load(sa, strict=True)
                for attr in parsed:
                    attrs.append(
                        _Attr(
                            oid=attr["type"].dotted,
                            values=tuple(split_tlvs(bytes(attr["values"].contents or b""))),
                        )
                    )
                # DER sorts SET OF members by encoding; for a sender that did not, the
                # signature is also checked over the sorted form (as OpenSSL does)
                sa_der = der_tlv(0x31, b"".join(sorted(split_tlvs(bytes(signed.contents or b"")))))
            signers.append(
                _ParsedSigner(
                    rid=_parse_rid(si["sid"]),
                    digest_oid=si["digest_algorithm"]["algorithm"].dotted,
                    sig_oid=sig_alg["algorithm"].dotted,
                    sig_params=sig_params,
                    signature=bytes(si["signature"].native),
                    signed_attrs=sa,
                    signed_attrs_der=sa_der,
                    attrs=tuple(attrs),
                )
            )
        return _ParsedSignedData(
            econtent_type=econtent_type,
            econtent=econtent,
            certificates=certs,
            unloadable=raw_certs,
            signers=tuple(signers),
        )


def extract_certificates(der: bytes) -> tuple[x509.Certificate, ...]:
    """The certificates in a SignedData (for example a certs-only message, RFC 8551 3.6)."""
    return _parse_signed_data(der).certificates


# --- compute phase ---------------------------------------------------------------------------


class _Bad(Exception):
    """A reason a single signer is not valid (never leaves this module)."""


def _single(attrs: tuple[_Attr, ...], oid: str, what: str) -> bytes | None:
    found = [a for a in attrs if a.oid == oid]
    if not found:
        return None
    if len(found) > 1 or len(found[0].values) != 1:
        raise _Bad(f"{what} attribute must occur once with one value")
    return found[0].values[0]


def _verify_signature(
    pub: object, sig_oid: str, sig_params: bytes | None, digest: str, sig: bytes, data: bytes
) -> None:
    family, sig_hash = _SIG_ALGS.get(sig_oid, ("", None))
    if not family:
        raise _Bad(f"unsupported signature algorithm {sig_oid}")
    hname = sig_hash or digest
    if hname in _WEAK_DIGESTS:
        raise _Bad(f"weak digest algorithm {hname}")
    try:
        if family == "rsa":
            if not isinstance(pub, rsa.RSAPublicKey):
                raise _Bad("signature algorithm does not match the certificate key")
            pub.verify(sig, data, padding.PKCS1v15(), hash_for_name(hname))
        elif family == "rsa-pss":
            if not isinstance(pub, rsa.RSAPublicKey):
                raise _Bad("signature algorithm does not match the certificate key")
            try:
                p = algos.RSASSAPSSParams.load(sig_params or b"\x30\x00")
                phash = p["hash_algorithm"]["algorithm"].dotted
                mgf = p["mask_gen_algorithm"]
                if mgf["algorithm"].dotted != OID.MGF1:
                    raise _Bad("unsupported PSS mask generation function")
                mhash = mgf["parameters"]["algorithm"].dotted
                salt = int(p["salt_length"].native)
                pname, mname = DIGESTS[phash], DIGESTS[mhash]
            except _Bad:
                raise
            except Exception as exc:
                raise _Bad("malformed RSASSA-PSS parameters") from exc
            if pname in _WEAK_DIGESTS or mname in _WEAK_DIGESTS:
                raise _Bad(f"weak digest algorithm {pname}")
            pub.verify(
                sig,
                data,
                padding.PSS(mgf=padding.MGF1(hash_for_name(mname)), salt_length=salt),
                hash_for_name(pname),
            )
        elif family == "ecdsa":
            if not isinstance(pub, ec.EllipticCurvePublicKey):
                raise _Bad("signature algorithm does not match the certificate key")
            pub.verify(sig, data, ec.ECDSA(hash_for_name(hname)))
        elif family == "dsa":
            if not isinstance(pub, dsa.DSAPublicKey):
                raise _Bad("signature algorithm does not match the certificate key")
            pub.verify(sig, data, hash_for_name(hname))
        elif family == "ed25519":
            if not isinstance(pub, ed25519.Ed25519PublicKey):
                raise _Bad("signature algorithm does not match the certificate key")
            pub.verify(sig, data)
        elif family == "ed448":
            if not isinstance(pub, ed448.Ed448PublicKey):
                raise _Bad("signature algorithm does not match the certificate key")
            pub.verify(sig, data)
    except InvalidSignature as exc:
        raise _Bad("signature does not match") from exc
    except KeyError as exc:
        raise _Bad(f"unsupported digest algorithm {hname}") from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise _Bad(f"signature could not be checked: {type(exc).__name__}") from exc


def _check_signer(
    ps: _ParsedSigner,
    content: bytes,
    econtent_type: str,
    bag: Sequence[x509.Certificate],
    unloadable: Sequence[Rid] = (),
    digests: dict[str, bytes] | None = None,
) -> SignerResult:
    cert = next((c for c in bag if ps.rid.matches(c)), None)
    digest = digest_name(ps.digest_oid)
    sig_name = _SIG_ALGS.get(ps.sig_oid, (ps.sig_oid, None))[0]
    signing_time: datetime | None = None
    capabilities: tuple[str, ...] = ()
    key_pref: str | None = None

    def result(valid: bool, reason: str | None) -> SignerResult:
        return SignerResult(
            valid=valid,
            reason=reason,
            certificate=cert,
            signer_id=ps.rid.describe(),
            signing_time=signing_time,
            digest_algorithm=digest,
            signature_algorithm=sig_name,
            capabilities=capabilities,
            encryption_key_preference=key_pref,
        )

    try:
        if ps.signed_attrs is not None:
            raw_time = _single(ps.attrs, OID.SIGNING_TIME, "signingTime")
            if raw_time is not None:
                try:
                    t = cms.Time.load(raw_time).native
                    signing_time = t if isinstance(t, datetime) else None
                except Exception as exc:
                    raise _Bad("malformed signingTime attribute") from exc
            raw_caps = _single(ps.attrs, OID.SMIME_CAPABILITIES, "SMIMECapabilities")
            if raw_caps is not None:
                try:
                    capabilities = parse_capabilities(raw_caps)
                except MalformedMessage:
                    capabilities = ()
            raw_pref = _single(ps.attrs, OID.ENCRYPT_KEY_PREF, "SMIMEEncryptionKeyPreference")
            if raw_pref is not None:
                key_pref = _describe_key_pref(raw_pref)
    except _Bad as exc:
        return result(False, str(exc))

    if cert is None:
        if any(ps.rid.matches_rid(r) for r in unloadable):
            return result(False, "signer certificate could not be parsed (unsupported key)")
        return result(False, "signer certificate not included")
    try:
        if digest not in DIGEST_OIDS:
            raise _Bad(f"unsupported digest algorithm {digest}")
        if digest in _WEAK_DIGESTS:
            raise _Bad(f"weak digest algorithm {digest}")
        try:
            pub = cert.public_key()
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise _Bad("the signer certificate's public key is not supported") from exc
        if ps.signed_attrs is None:
            if econtent_type != OID.DATA:
                raise _Bad("signed attributes are required for this content type")
            # the signature is over the content itself (pure EdDSA too, RFC 8419)
            _verify_signature(pub, ps.sig_oid, ps.sig_params, digest, ps.signature, content)
            return result(True, None)
        raw_ct = _single(ps.attrs, OID.CONTENT_TYPE, "contentType")
        if raw_ct is None:
            raise _Bad("contentType attribute missing")
        try:
            ct = core.ObjectIdentifier.load(raw_ct).dotted
        except Exception as exc:
            raise _Bad("malformed contentType attribute") from exc
        if ct != econtent_type:
            raise _Bad("contentType attribute does not match the content")
        raw_md = _single(ps.attrs, OID.MESSAGE_DIGEST, "messageDigest")
        if raw_md is None:
            raise _Bad("messageDigest attribute missing")
        try:
            md = bytes(core.OctetString.load(raw_md).native)
        except Exception as exc:
            raise _Bad("malformed messageDigest attribute") from exc
        cache = {} if digests is None else digests
        if digest not in cache:
            h = hashes.Hash(hash_for_name(digest))
            h.update(content)
            cache[digest] = h.finalize()
        if not hmac.compare_digest(md, cache[digest]):
            raise _Bad("content digest does not match (content changed)")
        try:
            _verify_signature(pub, ps.sig_oid, ps.sig_params, digest, ps.signature, ps.signed_attrs)
        except _Bad:
            if ps.signed_attrs_der is None or ps.signed_attrs_der == ps.signed_attrs:
                raise
            _verify_signature(
                pub, ps.sig_oid, ps.sig_params, digest, ps.signature, ps.signed_attrs_der
            )
        return result(True, None)
    except _Bad as exc:
        return result(False, str(exc))


def _describe_key_pref(raw: bytes) -> str | None:
    try:
        pref = cms.SMIMEEncryptionKeyPreference.load(raw)
        if pref.name == "issuer_and_serial_number":
            ias = pref.chosen
            return Rid(
                issuer_der=ias["issuer"].dump(), serial=int(ias["serial_number"].native)
            ).describe()
        if pref.name == "recipientKeyId":
            return Rid(ski=bytes(pref.chosen["subjectKeyIdentifier"].native)).describe()
        return str(pref.name)
    except Exception:  # an unreadable preference is just not reported
        return None


def detached_digest_names(der: bytes) -> frozenset[str] | None:
    """The digest algorithms a detached signature's signers need, for hashing the content
    while it streams past; None when a signer signs the content itself (no signed
    attributes), so :func:`verify` needs the content, or the signature is not detached."""
    parsed = _parse_signed_data(der)
    if parsed.econtent is not None or any(ps.signed_attrs is None for ps in parsed.signers):
        return None
    return frozenset(digest_name(ps.digest_oid) for ps in parsed.signers)


def verify(
    der: bytes,
    *,
    detached_content: bytes | None = None,
    detached_digests: Mapping[str, bytes] | None = None,
    certificates: Sequence[x509.Certificate] = (),
) -> VerifyResult:
    """Check every signature in a DER ContentInfo/SignedData.

    ``detached_content`` is the signed content of a detached signature (multipart/signed).
    ``detached_digests`` instead gives its digests by algorithm name (see
    :func:`detached_digest_names`); the result's ``content`` is then empty.
    ``certificates`` are extra candidate signer certificates (e.g. from the keystore) for
    messages that do not carry their signer's certificate.

    Raises MalformedMessage for a broken structure, NotSigned when there is no SignedData
    or it has no signerInfos (a certs-only message: use :func:`extract_certificates`).
    """
    parsed = _parse_signed_data(der)
    if not parsed.signers:
        raise NotSigned("the SignedData has no signers (a certificates-only message)")
    digests: dict[str, bytes] = {}  # one hash of the content per algorithm
    if detached_digests is not None:
        if detached_content is not None or parsed.econtent is not None:
            raise UsageError("detached_digests is for a detached signature, without content")
        if any(ps.signed_attrs is None for ps in parsed.signers):
            raise UsageError("a signer signs the content itself: give detached_content")
        digests.update(detached_digests)
        detached_content = b""
    if parsed.econtent is not None and detached_content is not None:
        raise MalformedMessage("the signature carries its content and detached content was given")
    if parsed.econtent is None and detached_content is None:
        raise MalformedMessage("the signature is detached but no content was given")
    content = parsed.econtent if parsed.econtent is not None else detached_content
    assert content is not None
    bag = (*parsed.certificates, *certificates)
    signers = tuple(
        _check_signer(ps, content, parsed.econtent_type, bag, parsed.unloadable, digests)
        for ps in parsed.signers
    )
    return VerifyResult(
        content=content,
        content_type=oid_name(parsed.econtent_type),
        detached=parsed.econtent is None,
        signers=signers,
        certificates=parsed.certificates,
    )
