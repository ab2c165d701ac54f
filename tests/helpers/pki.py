"""Test PKI: a CA, an intermediate and S/MIME leaves, made with cryptography.

Every certificate here is for tests only. ``make_pki()`` returns a :class:`Pki` with a
root CA, an intermediate CA signed by it and nothing else; ``pki.leaf(...)`` issues an
end-entity certificate for an e-mail address (SAN rfc822Name, emailProtection EKU) with a
key of the requested type. Everything is deterministic except key generation and serials.

Keys are cached per key type inside one process (RSA generation is slow), so two leaves
made with the same ``key_type`` share a key only if ``fresh_key=False`` (the default is a
fresh key for every leaf).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "KeyType",
    "Leaf",
    "Pki",
    "make_key",
    "make_pki",
    "write_pem",
]

KeyType = Literal["rsa2048", "rsa3072", "p256", "p384", "p521", "ed25519"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

NOT_BEFORE = _dt.datetime(2024, 1, 1, tzinfo=_dt.UTC)
NOT_AFTER = _dt.datetime(2045, 1, 1, tzinfo=_dt.UTC)


def make_key(key_type: KeyType) -> PrivateKey:
    if key_type == "rsa2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if key_type == "rsa3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "p521":
        return ec.generate_private_key(ec.SECP521R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key type {key_type!r}")


def _name(cn: str, email: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sealmail Test"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ]
    if email:
        attrs.append(x509.NameAttribute(NameOID.EMAIL_ADDRESS, email))
    return x509.Name(attrs)


def _hash_for(key: PrivateKey) -> hashes.HashAlgorithm | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


@dataclass(frozen=True)
class Leaf:
    """An end-entity certificate with its key and the chain above it (intermediate, root)."""

    cert: x509.Certificate
    key: PrivateKey
    email: str
    chain: tuple[x509.Certificate, ...]

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Pki:
    root: x509.Certificate
    root_key: PrivateKey
    intermediate: x509.Certificate
    intermediate_key: PrivateKey
    _leaves: dict[str, Leaf] = field(default_factory=dict)

    def leaf(
        self,
        email: str = "alice@example.org",
        key_type: KeyType = "rsa2048",
        *,
        not_before: _dt.datetime = NOT_BEFORE,
        not_after: _dt.datetime = NOT_AFTER,
        eku: tuple[x509.ObjectIdentifier, ...] = (ExtendedKeyUsageOID.EMAIL_PROTECTION,),
        with_ski: bool = True,
    ) -> Leaf:
        key = make_key(key_type)
        pub = key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(email.split("@")[0], email))
            .issuer_name(self.intermediate.subject)
            .public_key(pub)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email)]), critical=False)
            .add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.intermediate.public_key()  # type: ignore[arg-type]
                ),
                critical=False,
            )
        )
        if isinstance(key, rsa.RSAPrivateKey):
            ku = x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            )
        else:
            ku = x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=not isinstance(key, ed25519.Ed25519PrivateKey),
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            )
        builder = builder.add_extension(ku, critical=True)
        if with_ski:
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(pub), critical=False
            )
        cert = builder.sign(self.intermediate_key, _hash_for(self.intermediate_key))  # type: ignore[arg-type]
        return Leaf(cert=cert, key=key, email=email, chain=(self.intermediate, self.root))

    def write_ca_file(self, path: Path) -> Path:
        """Write the root (the trust anchor) as PEM, for ``openssl -CAfile``."""
        path.write_bytes(self.root.public_bytes(serialization.Encoding.PEM))
        return path


def _ca_cert(
    subject: x509.Name,
    issuer: x509.Name,
    pub: object,
    signer: PrivateKey,
    path_length: int | None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(pub)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)  # type: ignore[arg-type]
    )
    return builder.sign(signer, _hash_for(signer))  # type: ignore[arg-type]


def make_pki(ca_key_type: KeyType = "p256") -> Pki:
    """A root CA and an intermediate CA (both with ``ca_key_type`` keys)."""
    root_key = make_key(ca_key_type)
    root_name = _name("Sealmail Test Root CA")
    root = _ca_cert(root_name, root_name, root_key.public_key(), root_key, None)
    inter_key = make_key(ca_key_type)
    inter_name = _name("Sealmail Test Intermediate CA")
    inter = _ca_cert(inter_name, root_name, inter_key.public_key(), root_key, 0)
    return Pki(root=root, root_key=root_key, intermediate=inter, intermediate_key=inter_key)


def write_pem(path: Path, *objs: x509.Certificate | PrivateKey) -> Path:
    """Write certificates and/or private keys (PKCS#8, unencrypted) as one PEM file."""
    out = b""
    for obj in objs:
        if isinstance(obj, x509.Certificate):
            out += obj.public_bytes(serialization.Encoding.PEM)
        else:
            out += obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    path.write_bytes(out)
    return path
