"""The safe layer: protect a message, open a message. Callers use only this.

Theory of operation
-------------------
:func:`protect` turns a user's RFC 5322 message into an S/MIME or PGP/MIME message:
:func:`client.mime.compose.prepare` splits it (header protection, 7-bit parts), the
method's signer produces a detached signature (``multipart/signed``) or, for PGP
sign+encrypt, one OpenPGP message that is signed inside (RFC 3156 §6.2), and the encryptor
wraps it. S/MIME signs, then encrypts (RFC 8551 §3.7). The sender's own key is always a
recipient too, so the Sent copy stays readable.

:class:`Opener` implements :class:`client.mime.parse.Unwrapper` over the CMS layer
(:mod:`client.crypto.cms`), our OpenPGP message layer (:mod:`client.crypto.pgpstream`, which
reaches the packet stream inside gpg's compressed sign+encrypt messages and refuses
ciphertext without MDC/AEAD) and pysequoia's signature verification. Signature statuses are
decided here from key facts the keystore gives: ``good`` only when the signature verifies
*and* the key is in the keystore (PGP) or the certificate chains to a trust anchor (S/MIME).
Every decryption failure is the same opaque :class:`~client.errors.DecryptionFailed` to a
caller; details go to the debug log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import pysequoia
from cryptography import x509

from client.crypto import pgparmor, pgpsig, pgpstream
from client.crypto.keys import KeyAccess
from client.crypto.report import EncryptionLayer, SignatureResult, SignatureStatus
from client.errors import (
    DecryptionFailed,
    MalformedMessage,
    NoKeyForRecipient,
    SealmailError,
    UsageError,
)
from client.mime import compose
from client.mime.parse import OpenedMessage, open_message

if TYPE_CHECKING:
    from client.crypto import cms
    from client.crypto.cms_verify import VerifyResult

__all__ = ["Opener", "ProtectResult", "open_raw", "protect"]

log = logging.getLogger(__name__)
# Digests whose signatures we refuse (RFC 8551 §2.1 lets receivers drop SHA-1; Thunderbird
# and Sequoia refuse it too, so a forged SHA-1 collision never shows as "good").
WEAK_DIGESTS = frozenset({"md5", "sha1"})
Rng = Callable[[int], bytes]
Method = Literal["pgp", "smime"]


# --------------------------------------------------------------------------- helpers


def _cert_emails(cert: x509.Certificate) -> tuple[str, ...]:
    emails: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        emails.extend(e.lower() for e in san.get_values_for_type(x509.RFC822Name))
    except x509.ExtensionNotFound:
        pass
    for attr in cert.subject.get_attributes_for_oid(x509.NameOID.EMAIL_ADDRESS):
        value = str(attr.value).lower()
        if value not in emails:
            emails.append(value)
    return tuple(emails)


def _x509_fingerprint(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import hashes

    return cert.fingerprint(hashes.SHA256()).hex().upper()


def _pgp_micalg(armored_sig: bytes) -> str:
    try:
        sig = pysequoia.Sig.from_bytes(armored_sig)
        name = str(sig.hash_algorithm).rsplit(".", 1)[-1].lower()
    except Exception:  # pysequoia raises bare exceptions
        return "pgp-sha256"
    return "pgp-" + name.replace("_", "-")


def _id_matches(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return a.endswith(b) or b.endswith(a)


# ---------------------------------------------------------------------------- opener


@dataclass
class Opener:
    """Decrypts and verifies layers for :func:`client.mime.parse.open_message`."""

    keys: KeyAccess

    # ---- S/MIME
    def smime_decrypt(self, der: bytes) -> tuple[bytes, EncryptionLayer]:
        from client.crypto import cms  # S/MIME only: not on the PGP path

        identities = self.keys.smime_identities()
        for ident in identities:
            try:
                result = cms.decrypt(der, cert=ident.certificate, key=ident.private_key)
            except DecryptionFailed:
                continue
            return result.content, self.smime_layer(
                result.cipher, result.recipients, ident.certificate
            )
        raise DecryptionFailed("the S/MIME message is not encrypted to any of your certificates")

    @staticmethod
    def smime_layer(
        cipher: str, recipients: Sequence[str], decrypted_with: x509.Certificate
    ) -> EncryptionLayer:
        return EncryptionLayer(
            method="smime",
            cipher=cipher,
            integrity="AEAD" if "gcm" in cipher.lower() else "none",
            recipients=tuple(recipients),
            decrypted_with=_x509_fingerprint(decrypted_with),
        )

    def smime_verify(
        self, der: bytes, detached: bytes | None, *, now: datetime
    ) -> tuple[bytes, list[SignatureResult]]:
        from client.crypto import cms  # S/MIME only: not on the PGP path

        result = cms.verify(der, detached_content=detached)
        return result.content, self.smime_results(result, now=now)

    def smime_verify_digests(
        self, der: bytes, digests: Mapping[str, bytes], *, now: datetime
    ) -> list[SignatureResult]:
        """:meth:`smime_verify` of a detached signature given its content's digests."""
        from client.crypto.cms_verify import verify

        return self.smime_results(verify(der, detached_digests=digests), now=now)

    def smime_results(self, result: VerifyResult, *, now: datetime) -> list[SignatureResult]:
        """One SignatureResult per signer of a checked SignedData."""
        sigs: list[SignatureResult] = []
        for signer in result.signers:
            cert = signer.certificate
            status: SignatureStatus
            detail = signer.reason
            if cert is None:
                status, detail = "unknown-key", signer.reason or "signer certificate not included"
            elif not signer.valid:
                status = "bad"
            elif signer.digest_algorithm.lower().replace("-", "") in WEAK_DIGESTS:
                status = "bad"
                detail = f"{signer.digest_algorithm} signatures are no longer accepted (forgeable)"
            else:
                check = self.keys.smime_check(cert, result.certificates, now=now)
                status = {
                    "valid": "good",
                    "expired": "expired-key",
                    "not-yet-valid": "expired-key",
                    "revoked": "revoked-key",
                }.get(check, "untrusted")  # type: ignore[assignment]
                if status != "good":
                    detail = f"certificate check: {check}"
            emails = _cert_emails(cert) if cert is not None else ()
            sigs.append(
                SignatureResult(
                    method="smime",
                    status=status,
                    signer=emails[0] if emails else None,
                    fingerprint=_x509_fingerprint(cert) if cert is not None else None,
                    signing_time=signer.signing_time,
                    detail=detail,
                    signer_emails=emails,
                )
            )
        if not sigs:
            raise MalformedMessage("the S/MIME signature block contains no signatures")
        return sigs

    # ---- OpenPGP
    def _pgp_results(
        self, issuers: Sequence[str], verify: Callable[[Callable[[Any], Any]], Any], now: datetime
    ) -> list[SignatureResult]:
        """Run pysequoia ``verify`` once; classify each issuer's signature."""
        looked_up: dict[str, list[Any]] = {}

        def store(ids: Any) -> list[Any]:
            certs = list(self.keys.pgp_certs_for_ids([str(i) for i in ids]))
            for i in ids:
                looked_up[str(i)] = certs
            return certs

        valid: list[tuple[str, str]] = []
        try:
            result = verify(store)
            valid = [(v.certificate, v.signing_key) for v in result.valid_sigs]
        except Exception as exc:  # pysequoia: "no valid signatures found" and friends
            log.debug("pgp verify failed: %s", str(exc).splitlines()[0] if str(exc) else exc)
        out: list[SignatureResult] = []
        for issuer in issuers or ["?"]:
            match = next(
                (v for v in valid if _id_matches(v[1], issuer) or _id_matches(v[0], issuer)), None
            )
            certs = list(self.keys.pgp_certs_for_ids([issuer])) if issuer != "?" else []
            status: SignatureStatus
            facts = self.keys.pgp_facts(certs[0], now=now) if certs else None
            if match is not None and facts is not None:
                status = "good"
            elif facts is None:
                status = "unknown-key"
            elif facts.revoked:
                status = "revoked-key"
            elif facts.expired:
                status = "expired-key"
            elif facts.weak:
                status = "untrusted"  # cannot be checked under the current policy
            else:
                status = "bad"
            out.append(
                SignatureResult(
                    method="pgp",
                    status=status,
                    signer=facts.emails[0] if facts and facts.emails else None,
                    fingerprint=facts.fingerprint if facts else issuer.upper(),
                    signer_emails=facts.emails if facts else (),
                    detail=None
                    if status == "good"
                    else "the signer's key is bound with SHA-1 and cannot be checked safely"
                    if status == "untrusted"
                    else f"issuer {issuer.upper()}",
                )
            )
        return out

    def pgp_decrypt(
        self, data: bytes, *, now: datetime, span: tuple[int, int] | None = None
    ) -> tuple[bytes, EncryptionLayer, list[SignatureResult]]:
        own = self.keys.pgp_secret_keys()
        stream = pgpstream.decrypt(
            data,
            secret_keys=[tsk for tsk, _ in own],
            key_passphrase=[pw for _, pw in own if pw is not None] or None,
            span=span,
        )
        layer = EncryptionLayer(
            method="pgp",
            cipher=stream.cipher,
            integrity=stream.integrity,
            recipients=tuple(stream.recipient_key_ids),
            decrypted_with=stream.decrypted_with,
        )
        sigs: list[SignatureResult] = []
        if stream.signed:
            sig_packets = stream.signature_packets  # not the 50 MB literal: parse only these
            issuers = pgpsig.signature_issuers(sig_packets) if sig_packets else []
            sigs = self._pgp_results(issuers, _literal_verifier(stream), now)
        return stream.literal, layer, sigs

    def pgp_verify_detached(
        self, data: bytes, signature: bytes, *, now: datetime
    ) -> list[SignatureResult]:
        try:
            sig = pysequoia.Sig.from_bytes(signature)
        except Exception as exc:
            raise MalformedMessage("the OpenPGP signature could not be read") from exc
        issuers = pgpsig.signature_issuers(pgparmor.dearmor(signature))
        return self._pgp_results(
            issuers,
            lambda store: pysequoia.verify(bytes=data, signature=sig, store=store),
            now,
        )

    def pgp_verify_cleartext(
        self, data: bytes, *, now: datetime
    ) -> tuple[bytes, list[SignatureResult]]:
        text, sig_block = pgpsig.split_cleartext(data)
        issuers = pgpsig.signature_issuers(pgparmor.dearmor(sig_block))
        results = self._pgp_results(
            issuers, lambda store: pysequoia.verify(bytes=data, store=store), now
        )
        return text, results


def _literal_verifier(stream: pgpstream.DecryptedStream) -> Callable[[Any], Any]:
    """How a signed OpenPGP message's signatures are checked: ``pysequoia.verify`` of the
    literal data against its signature packets as a detached signature (the same hash
    input, as :mod:`client.crypto.streamopen` checks a streamed message), not of the whole
    packet stream, which pysequoia would copy and hand back with the literal data again
    (two more copies of a large attachment). Signature packets pysequoia cannot read as
    a detached signature (none at all, say) are checked in the packet stream as before."""
    try:
        sig = pysequoia.Sig.from_bytes(stream.signature_packets)
    except Exception:  # pysequoia raises its own (untyped) errors
        return lambda store: pysequoia.verify(bytes=stream.packets, store=store)
    return lambda store: pysequoia.verify(bytes=stream.literal, signature=sig, store=store)


def open_raw(raw: bytes, keys: KeyAccess, *, now: datetime) -> OpenedMessage:
    """Open ``raw`` (RFC 5322): decrypt, verify, restore protected headers, report."""
    try:
        return open_message(raw, Opener(keys), now=now)
    except SealmailError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as exc:
        log.debug("unexpected parse failure", exc_info=True)
        raise MalformedMessage("the message could not be parsed") from exc


# ---------------------------------------------------------------------------- protect


@dataclass(frozen=True)
class ProtectResult:
    message: bytes
    method: Method
    cipher: str | None
    signed: bool
    encrypted_to: tuple[str, ...]


def _choose_method(keys: KeyAccess, addresses: Sequence[str], method: str, now: datetime) -> Method:
    if method in {"pgp", "smime"}:
        return method  # type: ignore[return-value]
    if all(keys.pgp_encryption_certs(a, now=now) for a in addresses):
        return "pgp"
    if all(keys.smime_encryption_certs(a, now=now) for a in addresses):
        return "smime"
    missing = [
        a
        for a in addresses
        if not keys.pgp_encryption_certs(a, now=now) and not keys.smime_encryption_certs(a, now=now)
    ]
    if missing:
        raise NoKeyForRecipient(f"no certificate or OpenPGP key for {', '.join(missing)}")
    raise NoKeyForRecipient(
        "the recipients do not share one method (some have only S/MIME, others only OpenPGP)",
        hint="Send separately per method, or use --method to choose one.",
    )


def protect(
    raw: bytes,
    keys: KeyAccess,
    *,
    encrypt_to: Sequence[str] = (),
    sender: str | None = None,
    sign: bool = False,
    encrypt: bool = True,
    method: str = "auto",
    header_protection: bool = True,
    gcm: bool | None = None,
    now: datetime,
    rng: Rng,
) -> ProtectResult:
    """Sign and/or encrypt ``raw`` (RFC 5322) for ``encrypt_to`` (plus the sender's own key)."""
    if not sign and not encrypt:
        raise UsageError("nothing to do: neither signing nor encryption was asked for")
    prepared = compose.prepare(
        raw, encrypt=encrypt, header_protection=header_protection, now=now, rng=rng
    )
    sender, recipients = parties(
        sender, prepared.sender, encrypt_to, prepared.recipients, sign=sign, encrypt=encrypt
    )
    chosen: Method = (
        _choose_method(keys, recipients, method, now)
        if encrypt
        else ("smime" if method == "smime" else "pgp")
    )
    if chosen == "pgp":
        return _protect_pgp(prepared, keys, recipients, sender, sign, encrypt, now, rng)
    return _protect_smime(prepared, keys, recipients, sender, sign, encrypt, gcm, now, rng)


def parties(
    sender: str | None,
    message_sender: str | None,
    encrypt_to: Sequence[str],
    message_recipients: Sequence[str],
    *,
    sign: bool,
    encrypt: bool,
) -> tuple[str | None, list[str]]:
    """The sender and recipients to protect for: the caller's, else the message's own."""
    sender = (sender or message_sender or "").lower() or None
    if sign and sender is None:
        raise UsageError("signing needs a sender address (--from or a From header)")
    recipients = [a.lower() for a in encrypt_to] if encrypt_to else list(message_recipients)
    if encrypt and not recipients:
        raise UsageError("encryption needs at least one recipient")
    return sender, recipients


def pgp_recipient_certs(
    keys: KeyAccess, recipients: Sequence[str], sender: str | None, now: datetime
) -> list[bytes]:
    """Every recipient's OpenPGP certificate, and the sender's own (to read the sent copy)."""
    certs: list[bytes] = []
    for addr in recipients:
        found = keys.pgp_encryption_certs(addr, now=now)
        if not found:
            raise NoKeyForRecipient(f"no valid OpenPGP key for {addr}")
        certs.extend(found)
    if sender:
        certs.extend(keys.pgp_encryption_certs(sender, now=now))
    return certs


def smime_recipient_certs(
    keys: KeyAccess, recipients: Sequence[str], sender: str | None, now: datetime
) -> list[x509.Certificate]:
    """Every recipient's S/MIME certificate, and the sender's own if there is one."""
    certs: list[x509.Certificate] = []
    for addr in recipients:
        found = keys.smime_encryption_certs(addr, now=now)
        if not found:
            raise NoKeyForRecipient(f"no valid S/MIME certificate for {addr}")
        certs.append(found[0])
    if sender:
        own = keys.smime_encryption_certs(sender, now=now)
        if own and own[0] not in certs:
            certs.append(own[0])
    return certs


def _protect_pgp(
    prepared: compose.Prepared,
    keys: KeyAccess,
    recipients: Sequence[str],
    sender: str | None,
    sign: bool,
    encrypt: bool,
    now: datetime,
    rng: Rng,
) -> ProtectResult:
    signer = keys.pgp_signer(sender, now=now) if sign and sender else None
    if not encrypt:
        assert signer is not None
        sig = pysequoia.sign(signer.signer(), prepared.inner, mode=pysequoia.SignatureMode.DETACHED)
        entity = compose.wrap_pgp_signed(prepared.inner, sig, _pgp_micalg(sig), rng)
        return ProtectResult(compose.assemble(prepared.outer, entity), "pgp", None, True, ())
    certs = pgp_recipient_certs(keys, recipients, sender, now)
    if signer is not None:
        inner_packets = pysequoia.sign(
            signer.signer(), prepared.inner, mode=pysequoia.SignatureMode.INLINE, armor=False
        )
    else:
        inner_packets = pgpstream.literal_packet(prepared.inner)
    # Encrypt and armor in ~1 MiB steps; the message is joined once at the end.
    armored = list(
        pgparmor.armor_chunks(
            pgpstream.encrypt_chunks(inner_packets, recipients=certs, rng=rng, now=now),
            "MESSAGE",
            eol=b"\r\n",
        )
    )
    del inner_packets
    return ProtectResult(
        compose.pgp_encrypted_message(prepared.outer, armored, rng),
        "pgp",
        "AES-256",
        signer is not None,
        tuple(recipients),
    )


def _protect_smime(
    prepared: compose.Prepared,
    keys: KeyAccess,
    recipients: Sequence[str],
    sender: str | None,
    sign: bool,
    encrypt: bool,
    gcm: bool | None,
    now: datetime,
    rng: Rng,
) -> ProtectResult:
    from client.crypto import cms  # S/MIME only: not on the PGP path

    content = prepared.inner
    if sign:
        assert sender is not None
        ident = keys.smime_signer(sender, now=now)
        sig = cms.sign(
            content,
            signer_cert=ident.certificate,
            signer_key=ident.private_key,
            extra_certs=ident.chain,
            detached=True,
            now=now,
        )
        micalg = cms.micalg(cms.signing_digest(ident.private_key))
        content = compose.wrap_smime_signed(content, sig, micalg, rng)
    if not encrypt:
        return ProtectResult(compose.assemble(prepared.outer, content), "smime", None, True, ())
    certs = smime_recipient_certs(keys, recipients, sender, now)
    use_gcm = gcm if gcm is not None else all(keys.smime_supports_gcm(c) for c in certs)
    cipher: cms.EncryptCipher = "aes256-gcm" if use_gcm else "aes256-cbc"
    der = cms.encrypt(content, certs, cipher=cipher, rng=rng)
    del content  # the signed entity (a full-size copy) is not needed for the base64 step
    message = compose.smime_enveloped_message(prepared.outer, der, authenticated=use_gcm)
    return ProtectResult(message, "smime", cipher, sign, tuple(recipients))
