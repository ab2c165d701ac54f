"""What the crypto recipes need from a keystore, as a Protocol.

The recipes never open files or keyrings; the service layer hands them an object with
these methods (an adapter over :class:`keystore.store.Keystore`), and tests can hand them
a small in-memory one. Keys travel as library objects: pysequoia ``Cert``/``Tsk`` for
OpenPGP, ``cryptography`` certificates and private keys for S/MIME.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from cryptography import x509

__all__ = ["CertCheck", "KeyAccess", "PgpCertFacts", "SmimeIdentity"]

CertCheck = Literal[
    "valid",
    "expired",
    "not-yet-valid",
    "revoked",
    "untrusted",
    "wrong-address",
    "wrong-usage",
    "invalid",
]


@dataclass(frozen=True)
class SmimeIdentity:
    certificate: x509.Certificate
    private_key: Any  # a cryptography private key object
    chain: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True)
class PgpCertFacts:
    fingerprint: str
    emails: tuple[str, ...]
    revoked: bool
    expired: bool
    weak: bool = False  # its self-signatures use an algorithm the policy no longer accepts


class KeyAccess(Protocol):
    # ---- OpenPGP
    def pgp_secret_keys(self) -> Sequence[tuple[bytes, bytes | None]]:
        """Every own OpenPGP secret key (serialized TSK, its passphrase or None)."""

    def pgp_certs_for_ids(self, ids: Sequence[str]) -> Sequence[Any]:
        """pysequoia ``Cert`` objects whose primary or subkey matches an id/fingerprint."""

    def pgp_facts(self, cert: Any, *, now: datetime) -> PgpCertFacts:
        """Emails, revocation and expiry of a pysequoia ``Cert``."""

    def pgp_encryption_certs(self, email: str, *, now: datetime) -> Sequence[bytes]:
        """Serialized public certs usable to encrypt to ``email`` now (may be empty)."""

    def pgp_signer(self, email: str, *, now: datetime) -> Any:
        """A pysequoia ``Tsk`` able to sign for ``email``; raises NoSigningKey."""

    # ---- S/MIME
    def smime_identities(self) -> Sequence[SmimeIdentity]:
        """Every own certificate with its private key, for decryption."""

    def smime_signer(self, email: str, *, now: datetime) -> SmimeIdentity:
        """An own identity valid for signing as ``email``; raises NoSigningKey."""

    def smime_encryption_certs(self, email: str, *, now: datetime) -> Sequence[x509.Certificate]:
        """Certificates valid now for encrypting to ``email`` (may be empty)."""

    def smime_supports_gcm(self, cert: x509.Certificate) -> bool:
        """True when the recipient announced AES-GCM in SMIMECapabilities."""

    def smime_check(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        *,
        now: datetime,
    ) -> CertCheck:
        """Path validation for email protection (no address check)."""
