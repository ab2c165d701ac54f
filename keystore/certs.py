"""X.509 material: recognise and parse every file format users bring, and make test certs.

Theory of operation
-------------------
:func:`parse_x509` takes the bytes of one file and returns an :class:`X509Bundle`:
certificates, (private key, certificate) identities, loose private keys and CRLs.
It recognises PEM (any mix of ``CERTIFICATE``, ``TRUSTED CERTIFICATE``, ``PKCS7``,
``X509 CRL`` and private-key blocks, so CA bundles work), DER certificates, PKCS#7
certs-only bundles (.p7b/.p7c), PKCS#12 (.p12/.pfx, modern AES and the legacy
RC2/3DES files Windows writes; cryptography reads both), DER PKCS#8 keys and DER
CRLs. Library errors become :class:`~keystore.errors.InvalidKeyMaterial`; a
PKCS#12 or encrypted key that does not open with the given passphrase becomes
:class:`~keystore.errors.BadPassword`.

Fingerprints are SHA-256 over the DER, upper-case hex. Addresses come from the
subjectAltName rfc822Name entries, and from the subject's emailAddress attribute
only when the certificate has no rfc822Name (RFC 8550, section 3); all lower-cased.

:func:`generate_selfsigned` makes the self-signed S/MIME certificate behind
``sealmail keys generate --kind smime``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keystore.errors import BadPassword, InvalidKeyMaterial, UsageError

__all__ = [
    "PrivateKey",
    "SmimeKeyAlgo",
    "X509Bundle",
    "cert_emails",
    "cert_label",
    "export_pkcs12",
    "generate_selfsigned",
    "is_ca",
    "key_matches",
    "load_private_key",
    "parse_x509",
    "private_key_der",
    "x509_fingerprint",
]

PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | x25519.X25519PrivateKey
)
SmimeKeyAlgo = Literal["ec-p256", "rsa-3072"]

_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_CERT_LABELS = {b"CERTIFICATE", b"TRUSTED CERTIFICATE", b"X509 CERTIFICATE"}
_KEY_LABELS = {
    b"PRIVATE KEY",
    b"ENCRYPTED PRIVATE KEY",
    b"RSA PRIVATE KEY",
    b"EC PRIVATE KEY",
}


@dataclass
class X509Bundle:
    certs: list[x509.Certificate] = field(default_factory=list)
    identities: list[tuple[PrivateKey, x509.Certificate]] = field(default_factory=list)
    keys: list[PrivateKey] = field(default_factory=list)
    crls: list[x509.CertificateRevocationList] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.certs or self.identities or self.keys or self.crls)


def x509_fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex().upper()


def cert_emails(cert: x509.Certificate) -> tuple[str, ...]:
    found: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found = [str(a).lower() for a in san.get_values_for_type(x509.RFC822Name)]
    except x509.ExtensionNotFound:
        pass
    except ValueError:  # an undecodable SAN: no address can be trusted from it
        return ()
    if not found:
        for attr in cert.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS):
            if isinstance(attr.value, str):
                found.append(attr.value.lower())
    return tuple(dict.fromkeys(found))


def cert_label(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cns and isinstance(cns[0].value, str):
        return cns[0].value
    return cert.subject.rfc4514_string()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (x509.ExtensionNotFound, ValueError):
        return False


def _check_key(key: object) -> PrivateKey:
    if isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | x25519.X25519PrivateKey,
    ):
        return key
    raise InvalidKeyMaterial(f"unsupported private key type {type(key).__name__} for S/MIME")


def key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return cert.public_key().public_bytes(enc, fmt) == key.public_key().public_bytes(enc, fmt)


def private_key_der(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 DER (to be sealed by keystore.secrets, never written as is)."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(der: bytes) -> PrivateKey:
    """A private key from the store. It was checked in full when it was imported and comes
    back from the AEAD-sealed store unchanged, so the RSA consistency check (~50 ms for
    RSA-2048, on every signature or decryption) is not repeated."""
    try:
        key = serialization.load_der_private_key(
            der, password=None, unsafe_skip_rsa_key_validation=True
        )
        return _check_key(key)
    except ValueError as exc:
        raise InvalidKeyMaterial("stored private key is damaged") from exc


def _load_key(data: bytes, passphrase: bytes | None, *, pem: bool) -> PrivateKey:
    loader = serialization.load_pem_private_key if pem else serialization.load_der_private_key
    try:
        return _check_key(loader(data, password=passphrase))
    except TypeError as exc:  # encrypted but no password, or password for a plain key
        if passphrase is None:
            raise BadPassword(
                "the private key is protected by a passphrase",
                hint="Give the passphrase (--passphrase-fd or SEALMAIL_PASSPHRASE).",
            ) from exc
        return _check_key(loader(data, password=None))
    except ValueError as exc:
        if passphrase is not None and b"ENCRYPTED" in data[:64]:
            raise BadPassword("wrong passphrase for the private key") from exc
        raise InvalidKeyMaterial("the private key could not be read") from exc


def _looks_like_pfx(data: bytes) -> bool:
    try:
        pfx = asn1_pkcs12.Pfx.load(data)
        return bool(pfx["version"].native == "v3" and pfx["auth_safe"]["content_type"].native)
    except Exception:  # asn1crypto raises many types on non-PFX input
        return False


def _parse_pkcs12(data: bytes, passphrase: bytes | None, out: X509Bundle) -> None:
    tries: list[bytes | None] = [passphrase] if passphrase is not None else [None, b""]
    last: Exception | None = None
    for pw in tries:
        try:
            with warnings.catch_warnings():
                # NSS and old Windows write BER (indefinite lengths); cryptography reads it
                warnings.filterwarnings("ignore", "PKCS#12 bundle could not be parsed as DER")
                key, cert, extra = pkcs12.load_key_and_certificates(data, pw)
            break
        except ValueError as exc:
            last = exc
    else:
        if passphrase is None:
            raise BadPassword(
                "the PKCS#12 file is protected by a passphrase",
                hint="Give the passphrase (--passphrase-fd or SEALMAIL_PASSPHRASE).",
            ) from last
        raise BadPassword("wrong passphrase for the PKCS#12 file") from last
    if key is not None and cert is not None:
        checked = _check_key(key)
        if not key_matches(cert, checked):
            raise InvalidKeyMaterial("the PKCS#12 key does not match its certificate")
        out.identities.append((checked, cert))
    elif key is not None:
        out.keys.append(_check_key(key))
    elif cert is not None:
        out.certs.append(cert)
    out.certs.extend(extra)


def _parse_pem(data: bytes, passphrase: bytes | None, out: X509Bundle) -> None:
    for m in _PEM_RE.finditer(data):
        label, block = m.group(1), m.group(0)
        try:
            if label in _CERT_LABELS:
                if label == b"TRUSTED CERTIFICATE":  # OpenSSL's trusted form: strip aux
                    block = block.replace(b"TRUSTED CERTIFICATE", b"CERTIFICATE")
                out.certs.append(x509.load_pem_x509_certificate(block))
            elif label == b"PKCS7":
                out.certs.extend(pkcs7.load_pem_pkcs7_certificates(block))
            elif label == b"X509 CRL":
                out.crls.append(x509.load_pem_x509_crl(block))
            elif label in _KEY_LABELS:
                out.keys.append(_load_key(block, passphrase, pem=True))
        except ValueError as exc:
            raise InvalidKeyMaterial(
                f"a PEM {label.decode('ascii').lower()} block could not be read"
            ) from exc


def _parse_der(data: bytes, passphrase: bytes | None, out: X509Bundle) -> None:
    try:
        out.certs.append(x509.load_der_x509_certificate(data))
        return
    except ValueError:
        pass
    try:
        out.certs.extend(pkcs7.load_der_pkcs7_certificates(data))
        return
    except ValueError:
        pass
    if _looks_like_pfx(data):
        _parse_pkcs12(data, passphrase, out)
        return
    try:
        out.crls.append(x509.load_der_x509_crl(data))
        return
    except ValueError:
        pass
    try:
        out.keys.append(_load_key(data, passphrase, pem=False))
    except InvalidKeyMaterial:
        raise InvalidKeyMaterial("not a certificate, PKCS#7, PKCS#12, CRL or key") from None


def parse_x509(data: bytes, *, passphrase: bytes | None = None) -> X509Bundle:
    """Everything X.509 in one file; InvalidKeyMaterial if nothing is recognised."""
    out = X509Bundle()
    if b"-----BEGIN " in data:
        _parse_pem(data, passphrase, out)
    elif data[:1] == b"\x30":
        _parse_der(data, passphrase, out)
    if not out:
        raise InvalidKeyMaterial("no certificate, key or CRL found")
    # A loose key that matches one of the certificates makes an identity.
    for key in list(out.keys):
        for cert in list(out.certs):
            if key_matches(cert, key):
                out.identities.append((key, cert))
                out.certs.remove(cert)
                out.keys.remove(key)
                break
    return out


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def generate_selfsigned(
    email: str,
    name: str | None = None,
    *,
    now: datetime,
    key: SmimeKeyAlgo = "ec-p256",
    validity: timedelta = timedelta(days=730),
) -> tuple[PrivateKey, x509.Certificate]:
    """A self-signed S/MIME certificate: emailProtection, SAN rfc822Name, 2 years."""
    if "@" not in email or any(c.isspace() for c in email):
        raise UsageError(f"not an email address: {email!r}")
    now = _aware(now)
    priv: PrivateKey
    if key == "ec-p256":
        priv = ec.generate_private_key(ec.SECP256R1())
        usage = x509.KeyUsage(True, False, False, False, True, False, False, False, False)
    elif key == "rsa-3072":
        priv = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
    else:
        raise UsageError(f"unknown S/MIME key type {key!r}")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name or email),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, email),
        ]
    )
    pub = priv.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
    )
    return priv, builder.sign(priv, hashes.SHA256())


def export_pkcs12(
    cert: x509.Certificate,
    key: PrivateKey,
    chain: list[x509.Certificate],
    passphrase: bytes,
    *,
    legacy: bool = False,
) -> bytes:
    """PKCS#12 with AES-256 (PBES2) by default, or 3DES/SHA-1 for old Windows/macOS."""
    if not passphrase:
        raise UsageError("a PKCS#12 export needs a passphrase")
    if isinstance(key, x25519.X25519PrivateKey):
        raise UsageError("PKCS#12 export of an X25519 key is not supported")
    if legacy:
        enc: serialization.KeySerializationEncryption = (
            serialization.PrivateFormat.PKCS12.encryption_builder()
            .kdf_rounds(50000)
            .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
            .hmac_hash(hashes.SHA1())  # noqa: S303 (what legacy readers need)
            .build(passphrase)
        )
    else:
        enc = serialization.BestAvailableEncryption(passphrase)
    label = cert_label(cert).encode("utf-8")
    return pkcs12.serialize_key_and_certificates(label, key, cert, chain or None, enc)
