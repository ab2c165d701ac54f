"""One service layer for the ``sealmail`` CLI and the Qt app.

Theory of operation
-------------------
A :class:`Session` owns an open :class:`keystore.store.Keystore` for one profile and offers
the operations users ask for — manage keys, protect a message, open a message — as plain
method calls that take ``now`` (and ``rng`` where randomness shapes output). The CLI and
the UI never reach below this layer. :class:`KeystoreAccess` adapts the keystore to the
:class:`client.crypto.keys.KeyAccess` protocol the crypto recipes expect.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

from cryptography import x509

from client.crypto.keys import CertCheck, PgpCertFacts, SmimeIdentity
from client.crypto.recipes import open_raw, protect
from client.errors import BadPassword, NotEncrypted, NotSigned, UsageError
from client.mime.parse import OpenedMessage
from keystore import openpgp as kpgp
from keystore.store import KeyInfo, Keystore

__all__ = ["KeystoreAccess", "Session"]

Rng = Callable[[int], bytes]


class KeystoreAccess:
    """The :class:`client.crypto.keys.KeyAccess` protocol over a :class:`Keystore`."""

    def __init__(self, store: Keystore) -> None:
        self.store = store

    # ---- OpenPGP
    def pgp_secret_keys(self) -> Sequence[tuple[bytes, bytes | None]]:
        return [
            (bytes(k.tsk), k.password.encode("utf-8") if k.password else None)
            for k in self.store.decryption_keys("pgp")
        ]

    def pgp_certs_for_ids(self, ids: Sequence[str]) -> Sequence[Any]:
        return self.store.pgp_certs_for_keyids(ids)

    def pgp_facts(self, cert: Any, *, now: datetime) -> PgpCertFacts:
        validity = kpgp.check_validity(cert, now=now)
        return PgpCertFacts(
            fingerprint=str(cert.fingerprint).upper(),
            emails=kpgp.cert_emails(cert),
            revoked=validity.revoked,
            expired=validity.expired or validity.not_yet_valid,
        )

    def pgp_encryption_certs(self, email: str, *, now: datetime) -> Sequence[bytes]:
        return [bytes(c) for c in self.store.recipient_keys(email, now=now).pgp[:1]]

    def pgp_signer(self, email: str, *, now: datetime) -> Any:
        ident = self.store.signing_identity_for(email, "pgp", now=now)
        return ident.pgp

    # ---- S/MIME
    def smime_identities(self) -> Sequence[SmimeIdentity]:
        return [SmimeIdentity(c, k) for c, k in self.store.decryption_keys("x509")]

    def smime_signer(self, email: str, *, now: datetime) -> SmimeIdentity:
        ident = self.store.signing_identity_for(email, "x509", now=now)
        assert ident.cert is not None and ident.key is not None
        return SmimeIdentity(ident.cert, ident.key, ident.chain)

    def smime_encryption_certs(self, email: str, *, now: datetime) -> Sequence[x509.Certificate]:
        return self.store.recipient_keys(email, now=now).x509

    def smime_supports_gcm(self, cert: x509.Certificate) -> bool:
        return False  # capabilities are harvested from signed mail (keystore discovery)

    def smime_check(
        self, cert: x509.Certificate, intermediates: Sequence[x509.Certificate], *, now: datetime
    ) -> CertCheck:
        status = self.store.cert_status(
            cert, None, usage="sign", now=now, extra_certs=intermediates
        )
        return status.status


class Session:
    """Everything a user does with one profile."""

    def __init__(self, store: Keystore) -> None:
        self.store = store
        self.keys = KeystoreAccess(store)

    @classmethod
    def open(
        cls,
        profile: str | os.PathLike[str] | None,
        *,
        profile_passphrase: Callable[[], bytes] | None = None,
    ) -> Session:
        callback = (lambda _reason: profile_passphrase()) if profile_passphrase else None
        return cls(Keystore.open(profile, passphrase_callback=callback))

    def close(self) -> None:
        self.store.close()

    # ---------------------------------------------------------------- keys
    def keys_generate(
        self, email: str, *, name: str | None, kind: Literal["pgp", "smime"], now: datetime
    ) -> KeyInfo:
        if kind == "pgp":
            return self.store.generate_pgp(email, name, now=now)
        return self.store.generate_smime_selfsigned(email, name, now=now)

    def keys_import(
        self,
        data: bytes,
        *,
        passphrase: Callable[[], bytes | None],
        trust: bool = False,
        now: datetime,
    ) -> list[KeyInfo]:
        try:
            return self.store.import_bytes(data, trust=trust)
        except BadPassword:
            secret = passphrase()
            if secret is None:
                raise
            return self.store.import_bytes(data, passphrase=secret, trust=trust)

    def keys_list(self) -> list[KeyInfo]:
        return self.store.list()

    def keys_export(self, fingerprint: str) -> bytes:
        return self.store.export_public(fingerprint)

    @staticmethod
    def key_json(info: KeyInfo) -> dict[str, Any]:
        return info.to_json()

    # ------------------------------------------------------------- messages
    def message_encrypt(
        self,
        raw: bytes,
        *,
        to: Sequence[str],
        sender: str | None,
        method: str = "auto",
        sign: bool = False,
        now: datetime,
        rng: Rng,
    ) -> bytes:
        if not to:
            raise UsageError("at least one --to address is needed")
        return protect(
            raw,
            self.keys,
            encrypt_to=to,
            sender=sender,
            sign=sign,
            encrypt=True,
            method=method,
            now=now,
            rng=rng,
        ).message

    def message_sign(
        self, raw: bytes, *, sender: str, method: str, now: datetime, rng: Rng
    ) -> bytes:
        return protect(
            raw, self.keys, sender=sender, sign=True, encrypt=False, method=method, now=now, rng=rng
        ).message

    def message_open(
        self,
        raw: bytes,
        *,
        now: datetime,
        require: Literal["encrypted", "signed"] | None = None,
    ) -> OpenedMessage:
        opened = open_raw(raw, self.keys, now=now)
        if require == "encrypted" and not opened.report.encrypted:
            raise NotEncrypted("the message is not encrypted")
        if require == "signed" and not opened.report.signed:
            raise NotSigned("the message carries no signature")
        return opened
