"""TLS certificates for the test servers: a CA made per test session, and bad certificates.

``ServerPki.make(directory)`` writes ``ca.pem`` (the trust anchor clients are given) and
server certificates for ``127.0.0.1``/``localhost``: a good one, an expired one, one for the
wrong host and a self-signed one (not issued by the CA). Everything is for tests and the demo only.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertPair", "ServerPki"]

HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class CertPair:
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Sealmail Test Servers"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> CertPair:
    cpath, kpath = path.with_suffix(".crt"), path.with_suffix(".key")
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kpath.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    kpath.chmod(0o644)  # Dovecot runs as another user and reads it
    return CertPair(cpath, kpath)


@dataclass(frozen=True)
class ServerPki:
    directory: Path
    ca_file: Path
    good: CertPair
    expired: CertPair
    wrong_host: CertPair
    self_signed: CertPair

    @classmethod
    def make(cls, directory: Path) -> ServerPki:
        directory.mkdir(parents=True, exist_ok=True)
        now = _dt.datetime.now(_dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (
            x509.CertificateBuilder()
            .subject_name(_name("Sealmail Test Server CA"))
            .issuer_name(_name("Sealmail Test Server CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(days=1))
            .not_valid_after(now + _dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        ca_file = directory / "ca.pem"
        ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))

        def leaf(
            name: str,
            hosts: tuple[str, ...],
            *,
            start: _dt.datetime,
            end: _dt.datetime,
            self_signed: bool = False,
        ) -> CertPair:
            key = ec.generate_private_key(ec.SECP256R1())
            issuer_key = key if self_signed else ca_key
            b = (
                x509.CertificateBuilder()
                .subject_name(_name(hosts[0]))
                .issuer_name(_name(hosts[0]) if self_signed else ca.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start)
                .not_valid_after(end)
                .add_extension(_san(hosts), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
                )
            )
            if not self_signed:
                b = b.add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                    critical=False,
                )
            return _write(directory / name, key, b.sign(issuer_key, hashes.SHA256()))

        day = _dt.timedelta(days=1)
        return cls(
            directory=directory,
            ca_file=ca_file,
            good=leaf("good", HOSTS, start=now - day, end=now + 20 * day),
            expired=leaf("expired", HOSTS, start=now - 20 * day, end=now - 2 * day),
            wrong_host=leaf("wronghost", ("wrong.example",), start=now - day, end=now + 20 * day),
            self_signed=leaf(
                "selfsigned", HOSTS, start=now - day, end=now + 20 * day, self_signed=True
            ),
        )
