"""The keystore: own identities and contacts' keys, by fingerprint and by address.

Theory of operation
-------------------
:class:`Keystore` is opened on a profile (:mod:`keystore.profile`) and keeps rows in
the SQLite index (:mod:`keystore.index`). Public material is stored as is (OpenPGP
certificates in binary, X.509 certificates as DER); secret material is sealed by the
profile's master key (:mod:`keystore.secrets`), which is unlocked lazily: listing and
public lookups never ask for a passphrase, the first secret operation does.

* **Import** (:meth:`Keystore.import_bytes`) recognises OpenPGP (armored or binary,
  public or secret, several keys per file, key revocation certificates) and X.509
  (see :func:`keystore.certs.parse_x509`). Re-importing a known fingerprint merges:
  OpenPGP certificates are merged packet-wise, a secret part is added if it was
  missing, flags only ever grow (a discovered key becomes imported and confirmed,
  never the reverse).
* **Generate**: OpenPGP v4 keys via :mod:`keystore.pgpgen` (readable by gpg 2.2),
  self-signed S/MIME certificates via :mod:`keystore.certs`. Own self-signed
  certificates are marked as trust anchors (pinned), so they validate.
* **Lookups for the message core** take ``now``: :meth:`Keystore.recipient_keys`
  (with reasons when an address has no usable key), :meth:`signing_identity_for`,
  :meth:`decryption_keys`, :meth:`pgp_certs_for_keyids`, :meth:`trust_anchors`,
  :meth:`cert_status`. Confirmed keys are listed before discovered ones.

``--trust`` semantics: every CA certificate in the imported file becomes a trust
anchor; a file without CA certificates pins its certificates themselves.
"""

from __future__ import annotations

import builtins
import logging
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, overload

import pysequoia as ps
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from keystore import bundle
from keystore import certs as x509m
from keystore import openpgp as pgp
from keystore.errors import (
    GnupgError,
    InvalidKeyMaterial,
    KeyNotFound,
    NoKeyForRecipient,
    NoSigningKey,
    UsageError,
)
from keystore.gnupg_backend import GnupgBackend, GnupgKey, GnupgResult
from keystore.index import Index, Row
from keystore.profile import Profile, open_profile
from keystore.secrets import KdfParams, PassphraseCallback, SecretBox, open_secret_box
from keystore.settings import load_settings, update_settings
from keystore.validate import CertStatus, ValidationSettings, check_usage, validate_email_cert

if TYPE_CHECKING:
    import keyring.backend

__all__ = [
    "KeyInfo",
    "Keystore",
    "Kind",
    "Origin",
    "RecipientKeys",
    "SigningIdentity",
    "normalize_fingerprint",
]

log = logging.getLogger(__name__)

Kind = Literal["pgp", "x509"]
Origin = Literal["generated", "imported", "discovered", "gnupg"]
_ORIGIN_RANK = {"gnupg": -1, "discovered": 0, "imported": 1, "generated": 2}


@dataclass(frozen=True)
class KeyInfo:
    fingerprint: str
    kind: Kind
    emails: tuple[str, ...]
    secret: bool
    expires: datetime | None
    origin: Origin
    confirmed: bool
    trust_anchor: bool
    revoked: bool
    label: str = ""
    is_ca: bool = False
    weak: str = ""  # non-empty: the policy cannot validate it; kept for old mail only

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``keys list --json`` shape (plus the extra flags)."""
        return {
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "emails": list(self.emails),
            "secret": self.secret,
            "expires": self.expires.isoformat() if self.expires else None,
            "origin": self.origin,
            "confirmed": self.confirmed,
            "trust_anchor": self.trust_anchor,
            "revoked": self.revoked,
            "label": self.label,
            "is_ca": self.is_ca,
            "weak": self.weak,
        }


@dataclass(frozen=True)
class RecipientKeys:
    """Usable encryption keys for one address at one moment, and why others are not."""

    email: str
    pgp: tuple[ps.Cert, ...]
    x509: tuple[x509.Certificate, ...]
    reasons: tuple[str, ...]
    #: keys among ``pgp`` that come from the GnuPG home (origin "gnupg"), not the store
    gnupg: tuple[GnupgKey, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.pgp or self.x509)


@dataclass(frozen=True)
class SigningIdentity:
    info: KeyInfo
    pgp: pgp.PgpSecretKey | None = None
    cert: x509.Certificate | None = None
    key: x509m.PrivateKey | None = None
    chain: tuple[x509.Certificate, ...] = ()


def normalize_fingerprint(text: str) -> str:
    cleaned = "".join(text.split()).replace(":", "").upper()
    if cleaned.startswith("0X"):
        cleaned = cleaned[2:]
    if not cleaned or any(c not in "0123456789ABCDEF" for c in cleaned):
        raise UsageError(f"not a fingerprint: {text!r}")
    return cleaned


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _info(row: Row) -> KeyInfo:
    kind: Kind = "pgp" if row.kind == "pgp" else "x509"
    origin: Origin = (
        "generated"
        if row.origin == "generated"
        else "discovered"
        if row.origin == "discovered"
        else "imported"
    )
    return KeyInfo(
        fingerprint=row.fingerprint,
        kind=kind,
        emails=row.emails,
        secret=row.secret is not None,
        expires=row.expires,
        origin=origin,
        confirmed=row.confirmed,
        trust_anchor=row.trust_anchor,
        revoked=row.revoked,
        label=row.label,
        is_ca=row.is_ca,
        weak=row.weak,
    )


def _pack_pgp_secret(tsk: ps.Tsk, password: str | None) -> bytes:
    pw = (password or "").encode("utf-8")
    return struct.pack(">H", len(pw)) + pw + bytes(tsk)


def _unpack_pgp_secret(data: bytes) -> pgp.PgpSecretKey:
    (n,) = struct.unpack(">H", data[:2])
    password = data[2 : 2 + n].decode("utf-8") if n else None
    with pgp.sequoia_errors("stored OpenPGP secret key"):
        tsk = ps.Tsk.from_bytes(data[2 + n :])
    return pgp.PgpSecretKey(tsk, password)


def _load_cert(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


class Keystore:
    """One profile's keys and certificates. Not shared between threads without care."""

    def __init__(
        self,
        profile: Profile,
        *,
        passphrase: str | bytes | None = None,
        passphrase_callback: PassphraseCallback | None = None,
        keyring_backend: keyring.backend.KeyringBackend | None = None,
        secret_store: Literal["auto", "keyring", "passphrase"] = "auto",  # noqa: S107
        validation: ValidationSettings | None = None,
        env: Mapping[str, str] | None = None,
        kdf: KdfParams | None = None,
    ) -> None:
        self.profile = profile
        self.validation = validation or ValidationSettings()
        self._index = Index(profile)
        self._box: SecretBox | None = None
        self._gnupg: GnupgBackend | None = None
        #: Keys the last import skipped, one line each (empty when all imported).
        self.last_import_problems: tuple[str, ...] = ()
        self._unlock_args: dict[str, Any] = {
            "passphrase": passphrase,
            "passphrase_callback": passphrase_callback,
            "keyring_backend": keyring_backend,
            "create": secret_store,
            "env": env,
            "kdf": kdf,
        }

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Keystore:
        """Open the profile at ``path`` (else ``$SEALMAIL_PROFILE``, else the default)."""
        return cls(open_profile(path, env=kwargs.get("env")), **kwargs)

    def close(self) -> None:
        self._box = None
        self._index.close()

    @property
    def index(self) -> Index:
        """The row index (for :mod:`keystore.discovery`; rows, no cryptography)."""
        return self._index

    def __enter__(self) -> Keystore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- secrets ----------------------------------------------------------------------

    @property
    def box(self) -> SecretBox:
        """The unlocked master key (unlocks, or creates the secret store, on first use)."""
        if self._box is None:
            self._box = open_secret_box(self.profile, **self._unlock_args)
        return self._box

    def unlock(self) -> None:
        _ = self.box

    def put_secret(self, name: str, value: bytes) -> None:
        """Store a named secret (e.g. an account password), sealed."""
        sealed = self.box.seal(f"named:{name}", value)
        with self._index.transaction():
            self._index.put_secret(name, sealed)

    def get_secret(self, name: str) -> bytes | None:
        blob = self._index.get_secret(name)
        return None if blob is None else self.box.open(f"named:{name}", blob)

    def delete_secret(self, name: str) -> bool:
        with self._index.transaction():
            return self._index.delete_secret(name)

    # --- rows -------------------------------------------------------------------------

    def _resolve(self, fingerprint: str) -> Row:
        fpr = normalize_fingerprint(fingerprint)
        row = self._index.get(fpr)
        if row is None and len(fpr) >= 16:
            matches = self._index.find_prefix(fpr)
            if not matches:
                matches = [r.fingerprint for r in self._index.by_pgp_keyid([fpr])]
            if len(matches) == 1:
                row = self._index.get(matches[0])
            elif len(matches) > 1:
                raise UsageError(f"{fingerprint} is ambiguous; give the full fingerprint")
        if row is None:
            raise KeyNotFound(f"no key or certificate {fingerprint}")
        return row

    def get(self, fingerprint: str) -> KeyInfo:
        return _info(self._resolve(fingerprint))

    def list(self, *, kind: Kind | None = None) -> builtins.list[KeyInfo]:
        return [_info(r) for r in self._index.all(kind=kind)]

    def delete(self, fingerprint: str, *, secret: bool = False) -> KeyInfo:
        """Remove a key or certificate; an own secret key only with ``secret=True``."""
        row = self._resolve(fingerprint)
        if row.secret is not None and not secret:
            raise UsageError(
                f"{row.fingerprint} has a secret key; refusing to delete it",
                hint="Export it first (keys export-identity), then pass --secret to delete it.",
            )
        with self._index.transaction():
            self._index.delete(row.fingerprint)
        return _info(row)

    def set_flags(
        self,
        fingerprint: str,
        *,
        confirmed: bool | None = None,
        trust_anchor: bool | None = None,
    ) -> KeyInfo:
        row = self._resolve(fingerprint)
        with self._index.transaction():
            new = replace(
                row,
                confirmed=row.confirmed if confirmed is None else confirmed,
                trust_anchor=row.trust_anchor if trust_anchor is None else trust_anchor,
            )
            self._put(new)
        return _info(new)

    def _put(self, row: Row) -> None:
        keyids: builtins.list[tuple[str, str]] = []
        if row.kind == "pgp":
            keyids = pgp.key_ids(self._pgp_cert(row))
        self._index.put(row, pgp_keyids=keyids)

    # --- OpenPGP ----------------------------------------------------------------------

    @staticmethod
    def _pgp_cert(row: Row) -> ps.Cert:
        with pgp.sequoia_errors("stored OpenPGP certificate"):
            return ps.Cert.from_bytes(row.public)

    def _pgp_secret(self, row: Row) -> pgp.PgpSecretKey:
        if row.secret is None:
            raise NoSigningKey(f"no secret key for {row.fingerprint}")
        return _unpack_pgp_secret(self.box.open(f"pgp-secret:{row.fingerprint}", row.secret))

    def _pgp_row(
        self,
        cert: ps.Cert,
        secret: pgp.PgpSecretKey | None,
        *,
        origin: Origin,
        confirmed: bool,
        existing: Row | None,
    ) -> Row:
        fpr = normalize_fingerprint(str(cert.fingerprint))
        if existing is not None:
            with pgp.sequoia_errors("merging OpenPGP certificates"):
                cert = pgp.public_only(self._pgp_cert(existing).merge(cert))
            if secret is None and existing.secret is not None:
                secret = self._pgp_secret(existing)
            if _ORIGIN_RANK[existing.origin] > _ORIGIN_RANK[origin]:
                origin = _info(existing).origin
            confirmed = confirmed or existing.confirmed
        if secret is not None:
            secret = pgp.merge_into_secret(secret, cert)
        sealed = (
            self.box.seal(f"pgp-secret:{fpr}", _pack_pgp_secret(secret.tsk, secret.password))
            if secret is not None
            else None
        )
        facts = pgp.cert_facts(cert)
        return Row(
            fingerprint=fpr,
            kind="pgp",
            label=facts.user_ids[0] if facts.user_ids else "",
            origin=origin,
            confirmed=confirmed,
            trust_anchor=False,
            is_ca=False,
            revoked=facts.revoked,
            expires=facts.expiration,
            public=bytes(cert),
            secret=sealed,
            emails=facts.emails,
            weak=facts.weak,
        )

    def _import_pgp(
        self, data: bytes, passphrase: bytes | None, origin: Origin
    ) -> builtins.list[str]:
        sig = pgp.parse_revocation(data)
        if sig is not None:
            return [self._import_revocation(sig)]
        materials, bad = pgp.parse_keys_lenient(data)
        password = passphrase.decode("utf-8") if passphrase is not None else None
        unlocked: builtins.list[tuple[pgp.PgpKeyMaterial, pgp.PgpSecretKey | None]] = []
        for m in materials:  # check every passphrase before writing anything
            secret = None
            if m.tsk is not None:
                secret = pgp.unlock_secret(
                    m.tsk, password if m.protected else None, protected=m.protected
                )
            unlocked.append((m, secret))
        if any(s is not None for _, s in unlocked):
            self.unlock()
        done: builtins.list[str] = []
        with self._index.transaction():
            for m, secret in unlocked:
                existing = self._index.get(normalize_fingerprint(m.fingerprint))
                try:
                    row = self._pgp_row(
                        m.cert,
                        secret,
                        origin=origin,
                        confirmed=origin != "discovered",
                        existing=existing,
                    )
                    self._put(row)
                except InvalidKeyMaterial as exc:  # one bad key does not sink the file
                    bad.append(exc)
                    continue
                done.append(row.fingerprint)
        for problem in bad:
            log.warning("skipped an OpenPGP key: %s", problem)
        self.last_import_problems = tuple(str(e) for e in bad)
        if not done and bad:
            raise bad[0]
        return done

    def _import_revocation(self, sig: ps.Sig) -> str:
        issuer = sig.issuer_fingerprint or sig.issuer_key_id
        if not issuer:
            raise InvalidKeyMaterial("the revocation signature names no issuer")
        row = self._resolve(issuer)
        revoked = pgp.apply_revocation(self._pgp_cert(row), sig)
        with self._index.transaction():
            current = self._index.get(row.fingerprint) or row
            self._put(
                self._pgp_row(
                    revoked,
                    None,
                    origin=_info(current).origin,
                    confirmed=current.confirmed,
                    existing=current,
                )
            )
        return row.fingerprint

    def generate_pgp(
        self,
        email: str,
        name: str | None = None,
        *,
        now: datetime,
        algo: pgp.PgpAlgo = "cv25519",
    ) -> KeyInfo:
        key = pgp.generate(email, name, now=_aware(now), algo=algo)
        self.unlock()
        with self._index.transaction():
            row = self._pgp_row(key.cert, key, origin="generated", confirmed=True, existing=None)
            self._put(row)
        return _info(row)

    def get_pgp_cert(self, fingerprint: str) -> ps.Cert:
        row = self._resolve(fingerprint)
        if row.kind != "pgp":
            raise KeyNotFound(f"{fingerprint} is not an OpenPGP key")
        return self._pgp_cert(row)

    def get_pgp_tsk(self, fingerprint: str) -> pgp.PgpSecretKey:
        """The unlocked secret key (in memory only); ``.signer()``/``.decryptor()`` work."""
        row = self._resolve(fingerprint)
        if row.kind != "pgp":
            raise KeyNotFound(f"{fingerprint} is not an OpenPGP key")
        return self._pgp_secret(row)

    def _own_pgp(self, fingerprint: str) -> tuple[Row, pgp.PgpSecretKey]:
        row = self._resolve(fingerprint)
        if row.kind != "pgp":
            raise UsageError(f"{fingerprint} is not an OpenPGP key")
        if row.secret is None:
            raise NoSigningKey(
                f"{row.fingerprint} is not an own key (no secret key in this profile)"
            )
        return row, self._pgp_secret(row)

    def _replace_own_pgp(self, row: Row, updated: pgp.PgpSecretKey) -> KeyInfo:
        with self._index.transaction():
            new = self._pgp_row(
                updated.cert,
                updated,
                origin=_info(row).origin,
                confirmed=row.confirmed,
                existing=None,
            )
            self._put(replace(new, origin=row.origin))
        return self.get(row.fingerprint)

    def set_expiry(
        self, fingerprint: str, expires: datetime | None, *, now: datetime | None = None
    ) -> KeyInfo:
        """New self-signatures on an own key: expire at ``expires``, or never (``None``)."""
        row, key = self._own_pgp(fingerprint)
        updated = pgp.set_expiration(key, _aware(expires) if expires else None, now=now)
        return self._replace_own_pgp(row, updated)

    def add_user_id(self, fingerprint: str, user_id: str, *, now: datetime) -> KeyInfo:
        """Bind ``user_id`` (e.g. ``Name <addr>``) to an own OpenPGP key."""
        row, key = self._own_pgp(fingerprint)
        return self._replace_own_pgp(row, pgp.add_user_id(key, user_id, now=_aware(now)))

    def revoke_user_id(self, fingerprint: str, user_id: str) -> KeyInfo:
        """Revoke one user id of an own key; its address then no longer maps to the key."""
        row, key = self._own_pgp(fingerprint)
        return self._replace_own_pgp(row, pgp.revoke_user_id(key, user_id))

    def user_ids(self, fingerprint: str, *, now: datetime) -> builtins.list[pgp.UserIdValidity]:
        """Each user id of an OpenPGP key and whether it is valid at ``now``."""
        row = self._resolve(fingerprint)
        if row.kind != "pgp":
            raise UsageError(f"{fingerprint} is not an OpenPGP key")
        return pgp.user_id_validity(self._pgp_cert(row), now=_aware(now))

    def revoke(self, fingerprint: str) -> bytes:
        """Revoke an own OpenPGP key; returns the revocation certificate (see below)."""
        row = self._resolve(fingerprint)
        key = self.get_pgp_tsk(row.fingerprint)
        sig = pgp.make_revocation(key)
        self._import_revocation(sig)
        return pgp.armor_revocation(sig)

    def revocation_certificate(self, fingerprint: str) -> bytes:
        """A revocation certificate to keep aside (the key stays valid).

        Armored as a PUBLIC KEY BLOCK holding the one signature, which is what
        ``gpg --import`` accepts (and what gpg writes itself).
        """
        return pgp.armor_revocation(pgp.make_revocation(self.get_pgp_tsk(fingerprint)))

    # --- X.509 ------------------------------------------------------------------------

    def _x509_row(
        self,
        cert: x509.Certificate,
        key: x509m.PrivateKey | None,
        *,
        origin: Origin,
        trust: bool,
        existing: Row | None,
    ) -> Row:
        fpr = x509m.x509_fingerprint(cert)
        sealed = (
            self.box.seal(f"x509-key:{fpr}", x509m.private_key_der(key))
            if key is not None
            else None
        )
        confirmed = origin != "discovered"
        if existing is not None:
            sealed = sealed if sealed is not None else existing.secret
            trust = trust or existing.trust_anchor
            confirmed = confirmed or existing.confirmed
            if _ORIGIN_RANK[existing.origin] > _ORIGIN_RANK[origin]:
                origin = _info(existing).origin
        return Row(
            fingerprint=fpr,
            kind="x509",
            label=x509m.cert_label(cert),
            origin=origin,
            confirmed=confirmed,
            trust_anchor=trust,
            is_ca=x509m.is_ca(cert),
            revoked=existing.revoked if existing else False,
            expires=cert.not_valid_after_utc,
            public=cert.public_bytes(serialization.Encoding.DER),
            secret=sealed,
            emails=x509m.cert_emails(cert),
        )

    def _import_x509(
        self, data: bytes, passphrase: bytes | None, trust: bool, origin: Origin
    ) -> builtins.list[str]:
        bundle = x509m.parse_x509(data, passphrase=passphrase)
        stored_keys: builtins.list[tuple[x509m.PrivateKey, Row]] = []
        for key in bundle.keys:  # a key alone must belong to a stored certificate
            match = [
                r
                for r in self._index.all(kind="x509")
                if x509m.key_matches(_load_cert(r.public), key)
            ]
            if not match:
                raise InvalidKeyMaterial(
                    "a private key without its certificate",
                    hint="Import the certificate first, or a PKCS#12 file with both.",
                )
            stored_keys.extend((key, r) for r in match)
        all_certs = [c for _, c in bundle.identities] + bundle.certs
        has_ca = any(x509m.is_ca(c) for c in all_certs)
        if bundle.identities or stored_keys:
            self.unlock()
        done: builtins.list[str] = []
        with self._index.transaction():
            for key, cert in bundle.identities:
                fpr = x509m.x509_fingerprint(cert)
                self._put(
                    self._x509_row(
                        cert,
                        key,
                        origin=origin,
                        trust=trust and not has_ca,
                        existing=self._index.get(fpr),
                    )
                )
                done.append(fpr)
            for cert in bundle.certs:
                fpr = x509m.x509_fingerprint(cert)
                anchor = trust and (x509m.is_ca(cert) or not has_ca)
                self._put(
                    self._x509_row(
                        cert, None, origin=origin, trust=anchor, existing=self._index.get(fpr)
                    )
                )
                done.append(fpr)
            for key, row in stored_keys:
                cert = _load_cert(row.public)
                self._put(self._x509_row(cert, key, origin=origin, trust=False, existing=row))
                done.append(row.fingerprint)
            for crl in bundle.crls:
                self._index.add_crl(
                    crl.public_bytes(serialization.Encoding.DER), crl.issuer.rfc4514_string()
                )
        return done

    def generate_smime_selfsigned(
        self,
        email: str,
        name: str | None = None,
        *,
        now: datetime,
        key: x509m.SmimeKeyAlgo = "ec-p256",
    ) -> KeyInfo:
        priv, cert = x509m.generate_selfsigned(email, name, now=_aware(now), key=key)
        self.unlock()
        with self._index.transaction():
            row = self._x509_row(cert, priv, origin="generated", trust=True, existing=None)
            self._put(row)
        return _info(row)

    def get_x509(self, fingerprint: str) -> x509.Certificate:
        row = self._resolve(fingerprint)
        if row.kind != "x509":
            raise KeyNotFound(f"{fingerprint} is not an X.509 certificate")
        return _load_cert(row.public)

    def get_x509_key(self, fingerprint: str) -> x509m.PrivateKey:
        row = self._resolve(fingerprint)
        if row.kind != "x509" or row.secret is None:
            raise NoSigningKey(f"no private key for certificate {fingerprint}")
        return x509m.load_private_key(self.box.open(f"x509-key:{row.fingerprint}", row.secret))

    def chain_for(self, cert: x509.Certificate) -> tuple[x509.Certificate, ...]:
        """Issuers of ``cert`` found in the store (by name and signature), leaf excluded."""
        pool = [_load_cert(r.public) for r in self._index.all(kind="x509") if r.is_ca]
        chain: builtins.list[x509.Certificate] = []
        current = cert
        for _ in range(8):
            if current.issuer == current.subject:
                break
            issuer = next(
                (c for c in pool if c.subject == current.issuer and _signed_by(current, c)),
                None,
            )
            if issuer is None or issuer in chain:
                break
            chain.append(issuer)
            current = issuer
        return tuple(chain)

    def smime_supports_gcm(self, cert: x509.Certificate) -> bool:
        """The certificate's owner announced AES-GCM in SMIMECapabilities (harvested)."""
        caps = self._index.smime_caps(x509m.x509_fingerprint(cert))
        return bool(caps and caps[0])

    def export_pkcs12(self, fingerprint: str, passphrase: bytes, *, legacy: bool = False) -> bytes:
        cert = self.get_x509(fingerprint)
        key = self.get_x509_key(fingerprint)
        return x509m.export_pkcs12(cert, key, list(self.chain_for(cert)), passphrase, legacy=legacy)

    def add_crl(self, crl: bytes | x509.CertificateRevocationList) -> None:
        obj = (
            crl
            if isinstance(crl, x509.CertificateRevocationList)
            else (
                x509.load_der_x509_crl(crl) if crl[:1] == b"\x30" else x509.load_pem_x509_crl(crl)
            )
        )
        with self._index.transaction():
            self._index.add_crl(
                obj.public_bytes(serialization.Encoding.DER), obj.issuer.rfc4514_string()
            )

    # --- import / export --------------------------------------------------------------

    def import_bytes(
        self,
        data: bytes,
        *,
        passphrase: bytes | None = None,
        trust: bool = False,
        origin: Origin = "imported",
    ) -> builtins.list[KeyInfo]:
        """Import every key/certificate in ``data``; returns what was added or updated."""
        if not data.strip():
            raise InvalidKeyMaterial("the file is empty")
        self.last_import_problems = ()
        if pgp.looks_like_openpgp(data):
            if trust:
                raise UsageError("--trust applies to X.509 CA certificates, not OpenPGP keys")
            fprs = self._import_pgp(data, passphrase, origin)
        else:
            fprs = self._import_x509(data, passphrase, trust, origin)
        return [self.get(f) for f in dict.fromkeys(fprs).keys()]

    def export_public(self, fingerprint: str) -> bytes:
        row = self._resolve(fingerprint)
        if row.kind == "pgp":
            return str(self._pgp_cert(row)).encode("ascii")
        return _load_cert(row.public).public_bytes(serialization.Encoding.PEM)

    def export_secret_pgp(self, fingerprint: str) -> bytes:
        """Armored secret key, for moving an own key to GnuPG.

        pysequoia cannot add a passphrase: a key Sealmail made is exported unprotected
        (a key imported with a passphrase keeps it). Callers must not write this to a
        shared place; offer :meth:`export_pkcs12`-style protection where possible.
        """
        return str(self.get_pgp_tsk(fingerprint).tsk).encode("ascii")

    # --- identity bundle --------------------------------------------------------------

    def export_identity(
        self, passphrase: bytes, *, now: datetime, kdf: KdfParams | None = None
    ) -> bytes:
        """Every own secret key and certificate (with issuers) as one bundle (see bundle.py)."""
        items: builtins.list[bundle.BundleItem] = []
        seen: set[str] = set()
        for row in self._index.all():
            if row.secret is None:
                continue
            if row.kind == "pgp":
                key = self._pgp_secret(row)
                items.append(
                    bundle.BundleItem("pgp", row.fingerprint, bytes(key.tsk), key.password)
                )
                continue
            cert = _load_cert(row.public)
            items.append(
                bundle.BundleItem(
                    "x509",
                    row.fingerprint,
                    secret=x509m.private_key_der(self.get_x509_key(row.fingerprint)),
                    cert=row.public,
                    trust_anchor=row.trust_anchor,
                )
            )
            seen.add(row.fingerprint)
            for issuer in self.chain_for(cert):
                fpr = x509m.x509_fingerprint(issuer)
                irow = self._index.get(fpr)
                if fpr not in seen and irow is not None:
                    seen.add(fpr)
                    items.append(
                        bundle.BundleItem(
                            "x509", fpr, cert=irow.public, trust_anchor=irow.trust_anchor
                        )
                    )
        if not items:
            raise NoSigningKey("there are no own keys or certificates to export")
        return bundle.seal_bundle(items, passphrase, now=_aware(now), kdf=kdf)

    def import_identity(self, data: bytes, passphrase: bytes) -> builtins.list[KeyInfo]:
        """Import a bundle made by :meth:`export_identity` (on another device)."""
        items = bundle.open_bundle(data, passphrase)
        done: builtins.list[str] = []
        for item in items:
            if item.kind == "pgp" and item.secret:
                pw = item.password.encode("utf-8") if item.password else None
                done.extend(self._import_pgp(item.secret, pw, "imported"))
            elif item.kind == "x509" and item.cert:
                pem = _load_cert(item.cert).public_bytes(serialization.Encoding.PEM)
                if item.secret:
                    key = x509m.load_private_key(item.secret)
                    pem += key.private_bytes(
                        serialization.Encoding.PEM,
                        serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption(),
                    )
                fprs = self._import_x509(pem, None, False, "imported")
                if item.trust_anchor:
                    for f in fprs:
                        self.set_flags(f, trust_anchor=True)
                done.extend(fprs)
        return [self.get(f) for f in dict.fromkeys(done)]

    # --- GnuPG backend ----------------------------------------------------------------

    @property
    def settings(self) -> dict[str, Any]:
        return load_settings(self.profile)

    @property
    def gnupg(self) -> GnupgBackend | None:
        """The GnuPG home of the ``gnupg_home`` setting, or None when the backend is off."""
        home = self.settings.get("gnupg_home")
        if not home:
            return None
        if self._gnupg is None or str(self._gnupg.home) != str(home):
            self._gnupg = GnupgBackend(home)
        return self._gnupg

    def set_gnupg_home(self, home: str | os.PathLike[str] | None) -> GnupgBackend | None:
        """Use the keys of a GnuPG home from now on (``None``: stop using one)."""
        if home is None:
            update_settings(self.profile, gnupg_home=None)
            self._gnupg = None
            return None
        backend = GnupgBackend(os.path.abspath(os.path.expanduser(os.fspath(home))))
        backend.list_keys()  # gpg runs on that home, or this fails now rather than later
        update_settings(self.profile, gnupg_home=str(backend.home))
        self._gnupg = backend
        return backend

    def _require_gnupg(self) -> GnupgBackend:
        backend = self.gnupg
        if backend is None:
            raise UsageError(
                "the GnuPG backend is off", hint="Enable it with `sealmail keys gnupg --home DIR`."
            )
        return backend

    def gnupg_keys(self) -> builtins.list[KeyInfo]:
        """The GnuPG home's keys as KeyInfo (origin "gnupg"); [] when the backend is off."""
        backend = self.gnupg
        if backend is None:
            return []
        return [
            KeyInfo(
                fingerprint=k.fingerprint,
                kind="pgp",
                emails=k.emails,
                secret=k.secret,
                expires=k.expires,
                origin="gnupg",
                confirmed=k.validity in ("f", "u"),
                trust_anchor=False,
                revoked=k.revoked,
                label=k.user_ids[0] if k.user_ids else "",
            )
            for k in backend.list_keys()
        ]

    def gnupg_decrypt(self, data: bytes, *, passphrase: str | None = None) -> GnupgResult:
        """Decrypt with the GnuPG home's secret keys (gpg-agent holds them)."""
        return self._require_gnupg().decrypt(data, passphrase=passphrase)

    def gnupg_sign(self, data: bytes, fingerprint: str, *, passphrase: str | None = None) -> bytes:
        """A detached armored signature by a GnuPG home's key (through gpg-agent)."""
        return self._require_gnupg().sign(data, fingerprint, passphrase=passphrase)

    def gnupg_encrypt(
        self, data: bytes, emails: Sequence[str], *, now: datetime, sign_with: str | None = None
    ) -> bytes:
        """Encrypt with gpg to the GnuPG home's keys :meth:`recipient_keys` accepts.

        A recipient whose only usable key is in Sealmail's store is refused (gpg
        does not have it): encrypt with Sealmail itself then.
        """
        backend = self._require_gnupg()
        fprs: builtins.list[str] = []
        for email in emails:
            found = self.require_recipient(email, now=now)
            from_gnupg = {k.fingerprint for k in found.gnupg}
            for cert in found.pgp:
                fpr = normalize_fingerprint(str(cert.fingerprint))
                if fpr not in from_gnupg:
                    raise UsageError(
                        f"{email}: the key {fpr} is in Sealmail's store, not in the GnuPG home",
                        hint="Encrypt with Sealmail itself (`sealmail message encrypt`).",
                    )
                fprs.append(fpr)
        return backend.encrypt(data, fprs, sign_with=sign_with)

    # --- lookups for the message core -------------------------------------------------

    def trust_anchors(self) -> builtins.list[x509.Certificate]:
        return [_load_cert(r.public) for r in self._index.all(kind="x509") if r.trust_anchor]

    def _intermediates(self) -> builtins.list[x509.Certificate]:
        return [
            _load_cert(r.public)
            for r in self._index.all(kind="x509")
            if r.is_ca and not r.trust_anchor
        ]

    def crls(self) -> builtins.list[bytes]:
        return self._index.crls()

    def cert_status(
        self,
        cert: x509.Certificate,
        email: str | None,
        *,
        usage: Literal["encrypt", "sign"],
        now: datetime,
        extra_certs: Sequence[x509.Certificate] = (),
        crls: Sequence[bytes] = (),
    ) -> CertStatus:
        """Validate ``cert`` (e.g. a signer's, from a message) against this profile."""
        return validate_email_cert(
            cert,
            email,
            usage=usage,
            now=_aware(now),
            trust_anchors=self.trust_anchors(),
            intermediates=[*self._intermediates(), *extra_certs],
            crls=[*self._index.crls(), *crls],
            settings=self.validation,
        )

    def recipient_keys(
        self, email: str, *, now: datetime, kinds: Iterable[Kind] = ("pgp", "x509")
    ) -> RecipientKeys:
        """The usable keys of ``kinds`` for ``email`` (asking for one kind skips checking
        the other: no certificate path validation for an OpenPGP-only question)."""
        now = _aware(now)
        addr = email.strip().lower()
        wanted = frozenset(kinds)
        reasons: builtins.list[str] = []
        pgp_ok: builtins.list[tuple[Row, ps.Cert]] = []
        for row in self._index.by_email(addr, kind="pgp") if "pgp" in wanted else ():
            cert = self._pgp_cert(row)
            validity = pgp.check_validity(cert, now=now)
            if not validity.can_encrypt:
                reasons.append(f"OpenPGP key {row.fingerprint}: {validity.reason}")
            else:
                uids = [u for u in pgp.user_id_validity(cert, now=now) if u.email == addr]
                if any(u.valid for u in uids):
                    pgp_ok.append((row, cert))
                else:
                    why = uids[0].reason if uids else "no user id for this address"
                    reasons.append(f"OpenPGP key {row.fingerprint}: {why}")
        x509_ok: builtins.list[tuple[Row, x509.Certificate]] = []
        for row in self._index.by_email(addr, kind="x509") if "x509" in wanted else ():
            if row.is_ca:
                continue
            xcert = _load_cert(row.public)
            status = self.cert_status(xcert, addr, usage="encrypt", now=now)
            if status.valid:
                x509_ok.append((row, xcert))
            else:
                reasons.append(
                    f"certificate {row.fingerprint[:16]}: {status.status}: {status.detail}"
                )
        gnupg_keys: builtins.list[GnupgKey] = []
        gnupg_certs: builtins.list[ps.Cert] = []
        try:
            backend = self.gnupg if "pgp" in wanted else None
            if backend is not None:
                known = {r.fingerprint for r, _ in pgp_ok}
                found, refused = backend.recipient_certs(addr, now=now)
                reasons.extend(refused)
                for gkey, gcert in found:
                    if (
                        gkey.fingerprint not in known
                        and pgp.check_validity(gcert, now=now).can_encrypt
                    ):
                        gnupg_keys.append(gkey)
                        gnupg_certs.append(gcert)
        except (GnupgError, UsageError, InvalidKeyMaterial, KeyNotFound) as exc:
            reasons.append(f"GnuPG backend: {exc}")
        if not pgp_ok and not x509_ok and not gnupg_certs and not reasons:
            reasons.append(f"no OpenPGP key or certificate for {addr}")

        def order(item: tuple[Row, object]) -> tuple[bool, float]:
            row = item[0]
            return (not row.confirmed, -(row.expires.timestamp() if row.expires else 1e12))

        return RecipientKeys(
            email=addr,
            pgp=tuple(c for _, c in sorted(pgp_ok, key=order)) + tuple(gnupg_certs),
            x509=tuple(c for _, c in sorted(x509_ok, key=order)),
            reasons=tuple(reasons),
            gnupg=tuple(gnupg_keys),
        )

    def encryption_keys_for(
        self, email: str, *, now: datetime
    ) -> tuple[builtins.list[ps.Cert], builtins.list[x509.Certificate]]:
        found = self.recipient_keys(email, now=now)
        return list(found.pgp), list(found.x509)

    def require_recipient(self, email: str, *, now: datetime) -> RecipientKeys:
        found = self.recipient_keys(email, now=now)
        if not found.any:
            raise NoKeyForRecipient(f"{email}: " + "; ".join(found.reasons))
        return found

    def signing_identity_for(self, email: str, kind: Kind, *, now: datetime) -> SigningIdentity:
        now = _aware(now)
        addr = email.strip().lower()
        rows = [r for r in self._index.by_email(addr, kind=kind) if r.secret is not None]
        rows.sort(key=lambda r: -(r.expires.timestamp() if r.expires else 1e12))
        why: builtins.list[str] = []
        for row in rows:
            if kind == "pgp":
                cert = self._pgp_cert(row)
                validity = pgp.check_validity(cert, now=now)
                if validity.can_sign:
                    return SigningIdentity(_info(row), pgp=self._pgp_secret(row))
                why.append(validity.reason or "the key cannot sign")
                continue
            xcert = _load_cert(row.public)
            if not (xcert.not_valid_before_utc <= now < xcert.not_valid_after_utc):
                why.append(f"certificate {row.fingerprint[:16]} is outside its validity")
                continue
            usage_problem = check_usage(xcert, "sign")
            if usage_problem:
                why.append(usage_problem)
                continue
            return SigningIdentity(
                _info(row),
                cert=xcert,
                key=self.get_x509_key(row.fingerprint),
                chain=self.chain_for(xcert),
            )
        detail = "; ".join(why) if why else "no own key"
        raise NoSigningKey(f"no usable {kind} signing key for {addr}: {detail}")

    @overload
    def decryption_keys(self, kind: Literal["pgp"]) -> builtins.list[pgp.PgpSecretKey]: ...

    @overload
    def decryption_keys(
        self, kind: Literal["x509"]
    ) -> builtins.list[tuple[x509.Certificate, x509m.PrivateKey]]: ...

    def decryption_keys(
        self, kind: Kind
    ) -> builtins.list[pgp.PgpSecretKey] | builtins.list[tuple[x509.Certificate, x509m.PrivateKey]]:
        """Every own secret of a kind, expired and revoked ones included (old mail)."""
        rows = [r for r in self._index.all(kind=kind) if r.secret is not None]
        if kind == "pgp":
            return [self._pgp_secret(r) for r in rows]
        return [(_load_cert(r.public), self.get_x509_key(r.fingerprint)) for r in rows]

    def pgp_certs_for_keyids(self, ids: Iterable[str]) -> builtins.list[ps.Cert]:
        """Certificates holding any of these key ids / fingerprints (a ``store`` callback)."""
        wanted = [normalize_fingerprint(i).lower() for i in ids if i]
        return [self._pgp_cert(r) for r in self._index.by_pgp_keyid(wanted)]


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
