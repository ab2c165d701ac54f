"""The security report: what protected a message, built only from cryptographic results.

Theory of operation
-------------------
Opening a message walks its MIME tree (``client.mime.parse``). Every cryptographic layer
that is actually processed adds facts to a :class:`ReportBuilder`: an encryption layer
(method, cipher, the key ids it was addressed to, which of our keys opened it), a
signature (status, signer, fingerprint, the MIME part it covers), the headers protected
inside the cryptographic payload (RFC 9788 or legacy "protected-headers"), and warnings
(for example "an encrypted part was mixed with unencrypted content and not decrypted").
The finished :class:`SecurityReport` is frozen. Nothing in it comes from header fields an
attacker can send in the clear: the reader and the CLI show only this report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "EncryptionLayer",
    "ReportBuilder",
    "SecurityReport",
    "SignatureResult",
    "SignatureStatus",
]

SignatureStatus = Literal[
    "good", "bad", "unknown-key", "expired-key", "revoked-key", "untrusted", "signer-mismatch"
]
Method = Literal["pgp", "smime"]


@dataclass(frozen=True)
class SignatureResult:
    """One signature, exactly as checked.

    ``part`` names the MIME part it covers: ``"message"`` when it covers the whole
    (decrypted) message, else a dotted path such as ``"1.2"`` into the tree.
    """

    method: Method
    status: SignatureStatus
    signer: str | None
    fingerprint: str | None
    part: str = "message"
    signing_time: datetime | None = None
    detail: str | None = None
    signer_emails: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "signer": self.signer,
            "fingerprint": self.fingerprint,
            "method": self.method,
            "part": self.part,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class EncryptionLayer:
    method: Method
    cipher: str
    integrity: str
    recipients: tuple[str, ...]
    decrypted_with: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "cipher": self.cipher,
            "integrity": self.integrity,
            "recipients": list(self.recipients),
            "decrypted_with": self.decrypted_with,
        }


@dataclass(frozen=True)
class SecurityReport:
    layers: tuple[EncryptionLayer, ...] = ()
    signatures: tuple[SignatureResult, ...] = ()
    protected_headers: tuple[tuple[str, str], ...] = ()
    header_protection: Literal["rfc9788", "legacy"] | None = None
    warnings: tuple[str, ...] = ()

    @property
    def encrypted(self) -> bool:
        return bool(self.layers)

    @property
    def signed(self) -> bool:
        return bool(self.signatures)

    @property
    def method(self) -> Method | None:
        if self.layers:
            return self.layers[0].method
        if self.signatures:
            return self.signatures[0].method
        return None

    @property
    def cipher(self) -> str | None:
        return self.layers[0].cipher if self.layers else None

    @property
    def all_signatures_good(self) -> bool:
        return bool(self.signatures) and all(s.status == "good" for s in self.signatures)

    def to_json(self) -> dict[str, Any]:
        """The report in the JSON shape of the CLI contract (plus detail fields)."""
        return {
            "encrypted": self.encrypted,
            "method": self.method,
            "cipher": self.cipher,
            "signed": self.signed,
            "signatures": [s.to_json() for s in self.signatures],
            "protected_headers": dict(self.protected_headers),
            "header_protection": self.header_protection,
            "layers": [layer.to_json() for layer in self.layers],
            "warnings": list(self.warnings),
        }


@dataclass
class ReportBuilder:
    """Mutable collector used while a message is opened; ``build()`` freezes it."""

    layers: list[EncryptionLayer] = field(default_factory=list)
    signatures: list[SignatureResult] = field(default_factory=list)
    protected_headers: list[tuple[str, str]] = field(default_factory=list)
    header_protection: Literal["rfc9788", "legacy"] | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def build(self) -> SecurityReport:
        return SecurityReport(
            layers=tuple(self.layers),
            signatures=tuple(self.signatures),
            protected_headers=tuple(self.protected_headers),
            header_protection=self.header_protection,
            warnings=tuple(self.warnings),
        )
