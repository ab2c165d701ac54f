"""Shared pieces of the CMS layer: OIDs, ASN.1 helpers and error translation.

Theory of operation
-------------------
Every CMS entry point (``cms_sign``, ``cms_envelope``, ``cms``) works in two phases:

1. *Parse*: the DER is loaded with asn1crypto inside :func:`translate_errors`, and every
   value the second phase needs is copied out into plain Python (``bytes``, ``int``,
   ``str``, small frozen dataclasses). asn1crypto parses lazily, so touching a field is
   what parses it; doing all of it here means a broken or hostile structure can only end
   in :class:`~client.errors.MalformedMessage` (or ``UnsupportedMessage``), never in an
   asn1crypto or ``ValueError`` leaking to the caller.
2. *Compute*: signatures, digests, key transport/agreement and content decryption run on
   those plain values with ``cryptography`` primitives.

This module holds the OID tables both phases share (names are the short lowercase forms
the rest of Sealmail shows: ``"aes256-gcm"``, ``"sha256"``, ``"rsaes-oaep"``), a few
private ASN.1 classes asn1crypto lacks (GCM parameters, ECC-CMS-SharedInfo), and helpers
that turn certificates into the identifiers CMS uses (IssuerAndSerialNumber, SKI).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from asn1crypto import cms, core, parser
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from client.errors import MalformedMessage, SealmailError

__all__ = [
    "CIPHERS",
    "DIGESTS",
    "KDF_SCHEMES",
    "OID",
    "AlgId",
    "CipherSpec",
    "EccCmsSharedInfo",
    "GcmParams",
    "Rid",
    "cert_rid",
    "der_tlv",
    "digest_name",
    "hash_for_name",
    "issuer_and_serial",
    "oid_name",
    "retag",
    "split_tlvs",
    "translate_errors",
]

log = logging.getLogger(__name__)


class OID:
    """Object identifiers used by the CMS layer (dotted strings)."""

    # content types
    DATA = "1.2.840.113549.1.7.1"
    SIGNED_DATA = "1.2.840.113549.1.7.2"
    ENVELOPED_DATA = "1.2.840.113549.1.7.3"
    DIGESTED_DATA = "1.2.840.113549.1.7.5"
    ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
    AUTH_DATA = "1.2.840.113549.1.9.16.1.2"
    COMPRESSED_DATA = "1.2.840.113549.1.9.16.1.9"
    AUTH_ENVELOPED_DATA = "1.2.840.113549.1.9.16.1.23"
    # attributes
    CONTENT_TYPE = "1.2.840.113549.1.9.3"
    MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
    SIGNING_TIME = "1.2.840.113549.1.9.5"
    SMIME_CAPABILITIES = "1.2.840.113549.1.9.15"
    ENCRYPT_KEY_PREF = "1.2.840.113549.1.9.16.2.11"
    # key transport / agreement / password
    RSA = "1.2.840.113549.1.1.1"
    RSAES_OAEP = "1.2.840.113549.1.1.7"
    MGF1 = "1.2.840.113549.1.1.8"
    P_SPECIFIED = "1.2.840.113549.1.1.9"
    RSASSA_PSS = "1.2.840.113549.1.1.10"
    EC_PUBLIC_KEY = "1.2.840.10045.2.1"
    X25519 = "1.3.101.110"
    ED25519 = "1.3.101.112"
    PWRI_KEK = "1.2.840.113549.1.9.16.3.9"
    PBKDF2 = "1.2.840.113549.1.5.12"
    AES128_WRAP = "2.16.840.1.101.3.4.1.5"
    AES192_WRAP = "2.16.840.1.101.3.4.1.25"
    AES256_WRAP = "2.16.840.1.101.3.4.1.45"
    ZLIB = "1.2.840.113549.1.9.16.3.8"


# digest OID -> short name
DIGESTS: dict[str, str] = {
    "1.2.840.113549.2.5": "md5",
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.4": "sha224",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "2.16.840.1.101.3.4.2.8": "sha3-256",
    "2.16.840.1.101.3.4.2.9": "sha3-384",
    "2.16.840.1.101.3.4.2.10": "sha3-512",
}
DIGEST_OIDS: dict[str, str] = {name: oid for oid, name in DIGESTS.items()}

# HMAC PRF OID (PBKDF2) -> digest name
HMAC_PRFS: dict[str, str] = {
    "1.2.840.113549.2.7": "sha1",
    "1.2.840.113549.2.8": "sha224",
    "1.2.840.113549.2.9": "sha256",
    "1.2.840.113549.2.10": "sha384",
    "1.2.840.113549.2.11": "sha512",
}
HMAC_PRF_OIDS: dict[str, str] = {name: oid for oid, name in HMAC_PRFS.items()}


@dataclass(frozen=True)
class CipherSpec:
    """A content-encryption (or key-wrap) algorithm."""

    name: str
    oid: str
    mode: str  # "cbc" | "gcm" | "chacha20-poly1305" | "wrap" | "unsupported"
    key_size: int  # bytes
    block_size: int = 16


_CIPHER_LIST = [
    CipherSpec("aes128-cbc", "2.16.840.1.101.3.4.1.2", "cbc", 16),
    CipherSpec("aes192-cbc", "2.16.840.1.101.3.4.1.22", "cbc", 24),
    CipherSpec("aes256-cbc", "2.16.840.1.101.3.4.1.42", "cbc", 32),
    CipherSpec("aes128-gcm", "2.16.840.1.101.3.4.1.6", "gcm", 16),
    CipherSpec("aes192-gcm", "2.16.840.1.101.3.4.1.26", "gcm", 24),
    CipherSpec("aes256-gcm", "2.16.840.1.101.3.4.1.46", "gcm", 32),
    CipherSpec("des-ede3-cbc", "1.2.840.113549.3.7", "cbc", 24, 8),
    CipherSpec("chacha20-poly1305", "1.2.840.113549.1.9.16.3.18", "chacha20-poly1305", 32),
    CipherSpec("aes128-wrap", OID.AES128_WRAP, "wrap", 16),
    CipherSpec("aes192-wrap", OID.AES192_WRAP, "wrap", 24),
    CipherSpec("aes256-wrap", OID.AES256_WRAP, "wrap", 32),
    CipherSpec("rc2-cbc", "1.2.840.113549.3.2", "unsupported", 0, 8),
    CipherSpec("des-cbc", "1.3.14.3.2.7", "unsupported", 8, 8),
    CipherSpec("aes128-ccm", "2.16.840.1.101.3.4.1.7", "unsupported", 16),
    CipherSpec("aes256-ccm", "2.16.840.1.101.3.4.1.47", "unsupported", 32),
]
# OID -> spec, and name -> spec
CIPHERS: dict[str, CipherSpec] = {c.oid: c for c in _CIPHER_LIST} | {
    c.name: c for c in _CIPHER_LIST
}


@dataclass(frozen=True)
class KdfScheme:
    """A KeyAgreeRecipientInfo key-encryption scheme (ECDH or X25519 + KDF)."""

    name: str
    kdf: str  # "x963" | "hkdf"
    hash: str


_KDF_LIST = {
    "1.3.133.16.840.63.0.2": KdfScheme("ecdh-stddh-sha1kdf", "x963", "sha1"),
    "1.3.132.1.11.0": KdfScheme("ecdh-stddh-sha224kdf", "x963", "sha224"),
    "1.3.132.1.11.1": KdfScheme("ecdh-stddh-sha256kdf", "x963", "sha256"),
    "1.3.132.1.11.2": KdfScheme("ecdh-stddh-sha384kdf", "x963", "sha384"),
    "1.3.132.1.11.3": KdfScheme("ecdh-stddh-sha512kdf", "x963", "sha512"),
    # cofactor variants: the cofactor of every prime curve we accept is 1, so they compute
    # the same secret as the standard scheme
    "1.3.133.16.840.63.0.3": KdfScheme("ecdh-cofactor-sha1kdf", "x963", "sha1"),
    "1.3.132.1.14.0": KdfScheme("ecdh-cofactor-sha224kdf", "x963", "sha224"),
    "1.3.132.1.14.1": KdfScheme("ecdh-cofactor-sha256kdf", "x963", "sha256"),
    "1.3.132.1.14.2": KdfScheme("ecdh-cofactor-sha384kdf", "x963", "sha384"),
    "1.3.132.1.14.3": KdfScheme("ecdh-cofactor-sha512kdf", "x963", "sha512"),
    # RFC 8418 (X25519/X448 with HKDF)
    "1.2.840.113549.1.9.16.3.19": KdfScheme("ecdh-stddh-hkdf-sha256", "hkdf", "sha256"),
    "1.2.840.113549.1.9.16.3.20": KdfScheme("ecdh-stddh-hkdf-sha384", "hkdf", "sha384"),
    "1.2.840.113549.1.9.16.3.21": KdfScheme("ecdh-stddh-hkdf-sha512", "hkdf", "sha512"),
}
KDF_SCHEMES: dict[str, KdfScheme] = dict(_KDF_LIST)
KDF_SCHEME_OIDS: dict[str, str] = {
    "sha256": "1.3.132.1.11.1",
    "sha384": "1.3.132.1.11.2",
    "sha512": "1.3.132.1.11.3",
}

_OTHER_NAMES = {
    OID.RSA: "rsa",
    OID.RSAES_OAEP: "rsaes-oaep",
    OID.RSASSA_PSS: "rsassa-pss",
    OID.EC_PUBLIC_KEY: "ec",
    OID.X25519: "x25519",
    OID.ED25519: "ed25519",
    OID.PWRI_KEK: "pwri-kek",
    OID.PBKDF2: "pbkdf2",
    OID.DATA: "data",
    OID.SIGNED_DATA: "signed-data",
    OID.ENVELOPED_DATA: "enveloped-data",
    OID.DIGESTED_DATA: "digested-data",
    OID.ENCRYPTED_DATA: "encrypted-data",
    OID.AUTH_DATA: "authenticated-data",
    OID.COMPRESSED_DATA: "compressed-data",
    OID.AUTH_ENVELOPED_DATA: "authenveloped-data",
    "1.2.840.113549.1.7.4": "signed-and-enveloped-data",
    "1.2.840.113549.1.9.16.1.4": "tst-info",
    "1.2.840.113549.1.9.16.3.5": "ess-dh",  # historic
    "1.2.840.113549.1.9.16.3.6": "cms3deswrap",
    "1.2.840.113549.1.9.16.3.7": "cmsrc2wrap",
    "1.2.840.113549.1.9.16.2.47": "signing-certificate-v2",
}


def oid_name(dotted: str) -> str:
    """The short name Sealmail uses for an OID, or the dotted form if it has none."""
    if dotted in CIPHERS:
        return CIPHERS[dotted].name
    if dotted in DIGESTS:
        return DIGESTS[dotted]
    if dotted in KDF_SCHEMES:
        return KDF_SCHEMES[dotted].name
    return _OTHER_NAMES.get(dotted, dotted)


def digest_name(dotted: str) -> str:
    return DIGESTS.get(dotted, dotted)


_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "md5": hashes.MD5,
    "sha1": hashes.SHA1,
    "sha224": hashes.SHA224,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
    "sha3-256": hashes.SHA3_256,
    "sha3-384": hashes.SHA3_384,
    "sha3-512": hashes.SHA3_512,
}


def hash_for_name(name: str) -> hashes.HashAlgorithm:
    """A fresh ``cryptography`` hash object for a short digest name (KeyError if unknown)."""
    return _HASHES[name]()


# --- private ASN.1 structures asn1crypto lacks -------------------------------------------


class AlgId(core.Sequence):  # type: ignore[misc]
    """A plain AlgorithmIdentifier: OID and raw parameters (no spec callbacks)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class GcmParams(core.Sequence):  # type: ignore[misc]
    """RFC 5084 GCMParameters."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


class EccCmsSharedInfo(core.Sequence):  # type: ignore[misc]
    """RFC 5753 ECC-CMS-SharedInfo (also RFC 8418 for X25519 + HKDF)."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("key_info", AlgId),
        ("entity_u_info", core.OctetString, {"explicit": 0, "optional": True}),
        ("supp_pub_info", core.OctetString, {"explicit": 2}),
    ]


class OriginatorPublicKey(core.Sequence):  # type: ignore[misc]
    """RFC 5652 OriginatorPublicKey, with the key as raw bytes."""

    _fields: ClassVar[list[tuple[Any, ...]]] = [
        ("algorithm", AlgId),
        ("public_key", core.OctetBitString),
    ]


# --- DER helpers --------------------------------------------------------------------------


def der_tlv(tag: int, contents: bytes) -> bytes:
    """Encode one DER TLV with a single-byte tag."""
    n = len(contents)
    if n < 0x80:
        return bytes([tag, n]) + contents
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + contents


def retag(value: core.Asn1Value, tag: int) -> bytes:
    """Re-encode a (possibly implicitly tagged) value's contents under a new tag byte.

    Used for signed attributes ([0] IMPLICIT -> SET, 0x31) and for re-reading implicitly
    tagged structures with our own classes.
    """
    contents = value.contents
    if contents is None:
        contents = b""
    return der_tlv(tag, bytes(contents))


# --- identifiers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rid:
    """A recipient/signer identifier: IssuerAndSerialNumber or SubjectKeyIdentifier."""

    issuer_der: bytes | None = None
    serial: int | None = None
    ski: bytes | None = None

    def describe(self) -> str:
        if self.ski is not None:
            return f"ski={self.ski.hex()}"
        issuer = "?"
        if self.issuer_der is not None:
            try:
                issuer = asn1_x509.Name.load(self.issuer_der).human_friendly
            except Exception:  # a description must never fail
                issuer = "<unparseable issuer>"
        return f"issuer={issuer}, serial={self.serial:#x}" if self.serial is not None else issuer

    def matches(self, cert: x509.Certificate) -> bool:
        return self.matches_rid(cert_rid(cert))

    def matches_rid(self, mine: Rid) -> bool:
        """Does this identifier name the certificate whose identifiers are ``mine``?"""
        if self.ski is not None:
            return mine.ski is not None and mine.ski == self.ski
        return (
            self.serial == mine.serial
            and self.issuer_der is not None
            and _names_equal(self.issuer_der, mine.issuer_der or b"")
        )


def _names_equal(a: bytes, b: bytes) -> bool:
    if a == b:
        return True
    try:
        return bool(asn1_x509.Name.load(a) == asn1_x509.Name.load(b))
    except Exception:  # unparseable names never match
        return False


def cert_rid(cert: x509.Certificate) -> Rid:
    """The identifiers a certificate can be named by (issuer/serial and, if present, SKI)."""
    ski: bytes | None
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = None
    return Rid(issuer_der=cert.issuer.public_bytes(), serial=cert.serial_number, ski=ski)


def split_tlvs(data: bytes) -> list[bytes]:
    """Split concatenated BER/DER values into their encodings (ValueError if broken)."""
    out = []
    pos = 0
    while pos < len(data):
        n = parser.peek(data[pos:])
        if n <= 0:
            raise ValueError("empty TLV")
        out.append(data[pos : pos + n])
        pos += n
    return out


def cert_to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def issuer_and_serial(cert: x509.Certificate) -> cms.IssuerAndSerialNumber:
    """The IssuerAndSerialNumber naming ``cert`` (its issuer's DER as the certificate has it)."""
    a = cert_to_asn1(cert)
    return cms.IssuerAndSerialNumber(
        {"issuer": a["tbs_certificate"]["issuer"], "serial_number": a.serial_number}
    )


@contextmanager
def translate_errors(what: str, error: type[SealmailError] = MalformedMessage) -> Iterator[None]:
    """Turn any library exception raised while parsing into one of ours (``raise ... from``).

    SealmailError subclasses pass through unchanged. The library's message goes to the
    debug log only.
    """
    try:
        yield
    except SealmailError:
        raise
    except Exception as exc:  # the boundary: asn1crypto, ValueError, RecursionError, ...
        log.debug("%s: %s: %r", what, type(exc).__name__, exc)
        raise error(f"{what}: the structure could not be parsed") from exc
