"""OpenPGP keys through pysequoia: parse, inspect, generate, expire, revoke.

Theory of operation
-------------------
pysequoia gives two objects: ``Cert`` (public; ``str()`` is armored, ``bytes()`` binary
and always public-only) and ``Tsk`` (with secrets; ``str()`` is an armored private key
block). Parsing a secret key as ``Cert`` works but warns, and ``has_secret_keys`` is
unreliable on certificates extracted from a ``Tsk``; so this module looks at packet
tags instead, and keeps every pysequoia quirk (deprecation warnings, RuntimeErrors
carrying a Rust backtrace) behind :func:`sequoia_errors` which turns them into
:class:`~keystore.errors.InvalidKeyMaterial` with a one-line message.

Secret keys that arrive passphrase-protected (``gpg --export-secret-keys``) stay
protected: pysequoia can use them with the passphrase but cannot remove it. Such a
key is kept together with its passphrase, both sealed by :mod:`keystore.secrets`;
:class:`PgpSecretKey` hides the difference from callers.

Validity "at ``now``" is decided from packet data (creation time, expiration,
revocation, user ids) plus, for encryption, a probe through Sequoia's own policy
(``encrypt`` to the key alone), which uses the system clock.

Keys Sequoia's StandardPolicy rejects
-------------------------------------
pysequoia's accessors (``user_ids``, ``expiration``, ``certifier()``) apply Sequoia's
StandardPolicy *now*: a key whose self-signatures use SHA-1 (every GnuPG 1 key of the
2010s) or a revoked key (no valid certifying key) makes them raise. GnuPG imports
both, and old mail encrypted to them must stay readable, so :func:`cert_facts` falls
back to reading the packets themselves when the policy refuses: the user ids and the
latest self-signature's expiration, *unverified*, together with a ``weak`` reason.
A weak key is never offered for new encryption or signing (:func:`check_validity`
says why); whether a secret key is passphrase-protected is read from its S2K usage
octet (:func:`secret_protection`), not by trying to use it.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pysequoia as ps
from pysequoia.packet import PacketPile, SignatureType, Tag

from keystore import pgpedit
from keystore.errors import BadPassword, InvalidKeyMaterial, UsageError
from keystore.pgpgen import PgpAlgo, build_v4_key

__all__ = [
    "DEFAULT_VALIDITY",
    "WEAK_SHA1",
    "PgpAlgo",
    "PgpFacts",
    "PgpKeyMaterial",
    "PgpSecretKey",
    "PgpValidity",
    "UserIdValidity",
    "add_user_id",
    "apply_revocation",
    "armor_revocation",
    "cert_emails",
    "cert_facts",
    "cert_label",
    "check_validity",
    "email_of_uid",
    "emails_of",
    "generate",
    "key_ids",
    "looks_like_openpgp",
    "make_revocation",
    "merge_into_secret",
    "parse_keys",
    "parse_keys_lenient",
    "parse_revocation",
    "public_only",
    "revoke_user_id",
    "secret_protection",
    "sequoia_errors",
    "set_expiration",
    "unlock_secret",
    "user_id_validity",
]

DEFAULT_VALIDITY = timedelta(days=3 * 365)
_EMAIL_RE = re.compile(r"<([^<>\s]+@[^<>\s]+)>\s*$")
_BARE_EMAIL_RE = re.compile(r"^[^<>\s@]+@[^<>\s@]+$")
_SECRET_TAGS = (Tag.SecretKey, Tag.SecretSubkey)
_CERTIFICATIONS = (
    SignatureType.GenericCertification,
    SignatureType.PersonaCertification,
    SignatureType.CasualCertification,
    SignatureType.PositiveCertification,
)


@contextlib.contextmanager
def sequoia_errors(what: str) -> Iterator[None]:
    """Silence pysequoia's deprecation noise and translate its RuntimeErrors."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            yield
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "error"
            raise InvalidKeyMaterial(f"{what}: {first}") from exc


def looks_like_openpgp(data: bytes) -> bool:
    """Armored OpenPGP, or binary data starting with an OpenPGP packet header."""
    head = data.lstrip()[:64]
    if head.startswith(b"-----BEGIN PGP "):
        return True
    return bool(data) and data[0] & 0x80 != 0


@dataclass(frozen=True)
class PgpKeyMaterial:
    """One parsed key: its public certificate, and the secret key if present."""

    cert: ps.Cert
    tsk: ps.Tsk | None
    protected: bool  # the secret key material is passphrase-protected

    @property
    def fingerprint(self) -> str:
        return str(self.cert.fingerprint).lower()


def public_only(cert: ps.Cert) -> ps.Cert:
    """A certificate object that certainly holds no secret material."""
    with sequoia_errors("OpenPGP certificate"):
        return ps.Cert.from_bytes(bytes(cert))


def _has_secret(raw: bytes) -> bool:
    with sequoia_errors("OpenPGP key"):
        return any(p.tag in _SECRET_TAGS for p in PacketPile.from_bytes(raw))


def _skip_mpis(body: bytes, pos: int, count: int) -> int:
    for _ in range(count):
        bits = int.from_bytes(body[pos : pos + 2], "big")
        pos += 2 + (bits + 7) // 8
    return pos


def _skip_oid(body: bytes, pos: int) -> int:
    return pos + 1 + body[pos]


# public-key algorithm id -> how to skip its public key material (v4 layout)
_PUBLIC_LAYOUT: dict[int, tuple[bool, int, bool]] = {
    # algo: (has_oid, mpi_count, has_kdf_params)
    1: (False, 2, False),  # RSA
    2: (False, 2, False),
    3: (False, 2, False),
    16: (False, 3, False),  # ElGamal
    20: (False, 3, False),
    17: (False, 4, False),  # DSA
    18: (True, 1, True),  # ECDH
    19: (True, 1, False),  # ECDSA
    22: (True, 1, False),  # EdDSA (legacy)
}


def _s2k_usage(body: bytes) -> int | None:
    """The S2K usage octet of a v4 secret key packet body, or None if unknown."""
    if len(body) < 6 or body[0] != 4:
        return None
    layout = _PUBLIC_LAYOUT.get(body[5])
    pos = 6
    try:
        if layout is None:
            if body[5] in (25, 26, 27, 28):  # X25519/X448/Ed25519/Ed448: fixed sizes
                pos += {25: 32, 26: 56, 27: 32, 28: 57}[body[5]]
                return body[pos]
            return None
        has_oid, mpis, kdf = layout
        if has_oid:
            pos = _skip_oid(body, pos)
        pos = _skip_mpis(body, pos, mpis)
        if kdf:
            pos += 1 + body[pos]
        return body[pos]
    except IndexError:
        return None


def secret_protection(tsk: ps.Tsk) -> bool | None:
    """True if any secret key packet is passphrase-protected, None if undecidable."""
    found: bool | None = False
    with sequoia_errors("OpenPGP key"):
        packets = list(PacketPile.from_bytes(bytes(tsk)))
    for p in packets:
        if p.tag not in _SECRET_TAGS:
            continue
        usage = _s2k_usage(bytes(p.body or b""))
        if usage is None:
            found = None if found is False else found
        elif usage != 0:
            return True
    return found


def _is_protected(tsk: ps.Tsk) -> bool:
    by_packet = secret_protection(tsk)
    if by_packet is not None:
        return by_packet
    for probe in ("certifier", "decryptor", "signer"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                getattr(tsk, probe)()
        except RuntimeError as exc:
            if "encrypted" in str(exc):
                return True
            continue
        return False
    return False


def _one_key(cert: ps.Cert) -> PgpKeyMaterial:
    with sequoia_errors(f"OpenPGP key {cert.fingerprint}"):
        secrets = cert.secrets
        tsk = None
        if secrets is not None:
            raw_secret = bytes(secrets)
            if _has_secret(raw_secret):
                tsk = ps.Tsk.from_bytes(raw_secret)
        pub = ps.Cert.from_bytes(bytes(cert))
    return PgpKeyMaterial(pub, tsk, _is_protected(tsk) if tsk is not None else False)


def parse_keys_lenient(data: bytes) -> tuple[list[PgpKeyMaterial], list[InvalidKeyMaterial]]:
    """Every key in ``data`` that parses, and one error per key that does not."""
    with sequoia_errors("OpenPGP key data"):
        certs = ps.Cert.split_bytes(data)
    if not certs:
        raise InvalidKeyMaterial("no OpenPGP key found")
    out: list[PgpKeyMaterial] = []
    bad: list[InvalidKeyMaterial] = []
    for cert in certs:
        try:
            out.append(_one_key(cert))
        except InvalidKeyMaterial as exc:
            bad.append(exc)
    return out, bad


def parse_keys(data: bytes) -> list[PgpKeyMaterial]:
    """Every certificate/secret key in ``data`` (armored or binary, several allowed)."""
    out, bad = parse_keys_lenient(data)
    if bad:
        raise bad[0]
    return out


WEAK_SHA1 = (
    "the key's self-signatures are rejected by the current policy (SHA-1 or another "
    "weak algorithm); kept to read old mail, never used for new mail"
)


@dataclass(frozen=True)
class PgpFacts:
    """What a certificate says about itself; ``weak`` is non-empty when the policy refused."""

    user_ids: tuple[str, ...]
    expiration: datetime | None
    revoked: bool
    weak: str = ""

    @property
    def emails(self) -> tuple[str, ...]:
        return emails_of(self.user_ids)


def email_of_uid(uid: str) -> str:
    """The lower-cased address in a user id, or ""."""
    m = _EMAIL_RE.search(uid)
    addr = m.group(1) if m else (uid.strip() if _BARE_EMAIL_RE.match(uid.strip()) else "")
    return addr.lower()


def emails_of(uids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    found: list[str] = []
    for uid in uids:
        addr = email_of_uid(uid)
        if addr and addr not in found:
            found.append(addr)
    return tuple(found)


def _packet_facts(cert: ps.Cert) -> tuple[tuple[str, ...], datetime | None]:
    """User ids with a self-signature and the newest self-signature's expiration (unverified)."""
    uids: list[str] = []
    created: datetime | None = None
    primary_kid = ""
    current_uid: str | None = None
    latest: tuple[datetime, int | None] | None = None
    with sequoia_errors("OpenPGP certificate"):
        for p in PacketPile.from_bytes(bytes(cert)):
            if p.tag in (Tag.PublicKey, Tag.SecretKey) and created is None:
                created, primary_kid = p.key_created, (p.key_id or "").lower()
            elif p.tag == Tag.UserID:
                current_uid = p.user_id
            elif p.tag in (Tag.PublicSubkey, Tag.SecretSubkey, Tag.UserAttribute):
                current_uid = None
            elif p.tag == Tag.Signature and current_uid is not None:
                issuer = (p.issuer_key_id or "").lower()
                if issuer != primary_kid or p.signature_type not in _CERTIFICATIONS:
                    continue
                if current_uid not in uids:
                    uids.append(current_uid)
                when = p.signature_created
                if when is not None and (latest is None or when > latest[0]):
                    latest = (when, p.key_validity_period)
    expiration = None
    if created is not None and latest is not None and latest[1]:
        expiration = _aware(created) + timedelta(seconds=int(latest[1]))
    return tuple(uids), expiration


def cert_facts(cert: ps.Cert) -> PgpFacts:
    """User ids, expiration and revocation; falls back to the packets for weak keys."""
    with sequoia_errors("OpenPGP certificate"):
        revoked = bool(cert.is_revoked)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            uids = tuple(str(u) for u in cert.user_ids)
            expiration = cert.expiration
        return PgpFacts(uids, expiration, revoked)
    except RuntimeError:
        pass
    uids, expiration = _packet_facts(cert)
    return PgpFacts(uids, expiration, revoked, weak=WEAK_SHA1)


@dataclass(frozen=True)
class UserIdValidity:
    """One user id of a certificate, judged at one moment."""

    user_id: str
    email: str
    valid: bool
    reason: str  # "" when valid
    bound: datetime | None  # first self-certification
    revoked_at: datetime | None  # its revocation, if any

    def to_json(self) -> dict[str, object]:
        return {
            "user_id": self.user_id,
            "email": self.email,
            "valid": self.valid,
            "reason": self.reason,
            "bound": self.bound.isoformat() if self.bound else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def user_id_validity(cert: ps.Cert, *, now: datetime) -> list[UserIdValidity]:
    """Every user id the key certified, valid or not at ``now`` and why.

    A user id is valid at ``now`` when its first self-certification is not later than
    ``now``, it was not revoked at or before ``now``, Sequoia's policy accepts it today
    (the revocation signatures themselves are read from the packets) and the key
    itself is usable then (:func:`check_validity`).
    """
    now = _aware(now)
    live = set(cert_facts(cert).user_ids)
    key = check_validity(cert, now=now)
    primary_kid = ""
    current: str | None = None
    bound: dict[str, datetime] = {}
    revoked: dict[str, datetime] = {}
    with sequoia_errors("OpenPGP certificate"):
        for p in PacketPile.from_bytes(bytes(cert)):
            if p.tag in (Tag.PublicKey, Tag.SecretKey) and not primary_kid:
                primary_kid = (p.key_id or "").lower()
            elif p.tag == Tag.UserID:
                current = p.user_id
            elif p.tag in (Tag.PublicSubkey, Tag.SecretSubkey, Tag.UserAttribute):
                current = None
            elif p.tag == Tag.Signature and current is not None:
                if (p.issuer_key_id or "").lower() != primary_kid or p.signature_created is None:
                    continue
                when = _aware(p.signature_created)
                table = (
                    revoked
                    if p.signature_type == SignatureType.CertificationRevocation
                    else bound
                    if p.signature_type in _CERTIFICATIONS
                    else None
                )
                if table is not None and (current not in table or when < table[current]):
                    table[current] = when
    out: list[UserIdValidity] = []
    for uid, since in bound.items():
        gone = revoked.get(uid)
        if uid not in live and gone is None:
            continue  # rejected by the policy for another reason: not ours to list
        if gone is not None and gone <= now:
            reason = f"the user id was revoked on {gone.isoformat()}"
        elif since > now + timedelta(minutes=5):
            reason = f"the user id was only added on {since.isoformat()}"
        elif not key.usable or key.weak:
            reason = key.reason
        else:
            reason = ""
        out.append(UserIdValidity(uid, email_of_uid(uid), not reason, reason, since, gone))
    return out


def cert_emails(cert: ps.Cert) -> tuple[str, ...]:
    """Lower-cased addresses of the certificate's non-revoked user ids."""
    return cert_facts(cert).emails


def cert_label(cert: ps.Cert) -> str:
    uids = cert_facts(cert).user_ids
    return uids[0] if uids else ""


def key_ids(cert: ps.Cert) -> list[tuple[str, str]]:
    """(key id, key fingerprint) of the primary key and every subkey, lower-case hex."""
    out: list[tuple[str, str]] = []
    with sequoia_errors("OpenPGP certificate"):
        for p in PacketPile.from_bytes(bytes(cert)):
            if p.tag in (Tag.PublicKey, Tag.PublicSubkey) and p.key_id and p.fingerprint:
                out.append((p.key_id.lower(), p.fingerprint.lower()))
    return out


@dataclass(frozen=True)
class PgpValidity:
    """What a certificate is good for at a moment, and why not when it is not."""

    revoked: bool
    expired: bool
    not_yet_valid: bool
    can_encrypt: bool
    can_sign: bool
    reason: str  # "" when usable
    weak: bool = False  # the policy rejects its self-signatures (see module docstring)

    @property
    def usable(self) -> bool:
        return not (self.revoked or self.expired or self.not_yet_valid)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def check_validity(cert: ps.Cert, *, now: datetime) -> PgpValidity:
    now = _aware(now)
    created: datetime | None = None
    sign_flag = False
    facts = cert_facts(cert)
    revoked = facts.revoked
    expiration = facts.expiration
    with sequoia_errors("OpenPGP certificate"):
        for p in PacketPile.from_bytes(bytes(cert)):
            if p.tag == Tag.PublicKey and created is None:
                created = p.key_created
            flags = p.key_flags if p.tag == Tag.Signature else None
            if flags is not None and p.signature_type != SignatureType.SubkeyRevocation:
                sign_flag = sign_flag or bool(flags.signing)
        try:
            ps.encrypt(b"", [cert], armor=False)
            encrypt_ok = True
        except RuntimeError:
            encrypt_ok = False
    expired = expiration is not None and _aware(expiration) <= now
    not_yet = created is not None and _aware(created) > now + timedelta(minutes=5)
    reason = ""
    if revoked:
        reason = "the key is revoked"
    elif expired:
        reason = f"the key expired on {_aware(expiration).isoformat()}" if expiration else ""
    elif not_yet:
        reason = "the key is not valid yet"
    elif facts.weak:
        reason = facts.weak
    elif not encrypt_ok:
        reason = "the key has no usable encryption subkey"
    usable = not (revoked or expired or not_yet or facts.weak)
    return PgpValidity(
        revoked=revoked,
        expired=expired,
        not_yet_valid=not_yet,
        can_encrypt=usable and encrypt_ok,
        can_sign=usable and sign_flag,
        reason=reason,
        weak=bool(facts.weak),
    )


@dataclass(frozen=True)
class PgpSecretKey:
    """An unlocked own OpenPGP key, in memory only. Mirrors ``Tsk``'s signer/decryptor."""

    tsk: ps.Tsk
    password: str | None = None

    def __repr__(self) -> str:
        return f"<PgpSecretKey {self.fingerprint}>"

    @property
    def cert(self) -> ps.Cert:
        with sequoia_errors("OpenPGP key"):
            return ps.Cert.from_bytes(bytes(self.tsk.extract_certificate()))

    @property
    def fingerprint(self) -> str:
        with sequoia_errors("OpenPGP key"):
            return str(self.tsk.extract_certificate().fingerprint).lower()

    def signer(self) -> ps.PySigner:
        with sequoia_errors("OpenPGP signing key"):
            return self.tsk.signer(self.password)

    def certifier(self) -> ps.PySigner:
        with sequoia_errors("OpenPGP certification key"):
            return self.tsk.certifier(self.password)

    def decryptor(self) -> ps.PyDecryptor:
        with sequoia_errors("OpenPGP decryption key"):
            return self.tsk.decryptor(self.password)


def unlock_secret(
    tsk: ps.Tsk, password: str | None, *, protected: bool | None = None
) -> PgpSecretKey:
    """Check that ``password`` opens a protected key (BadPassword if not).

    A revoked or weak key has no key the policy lets us use to certify (sometimes none
    to decrypt or sign either), so each use is tried; when the policy refuses every
    one, the passphrase cannot be checked now and is kept as given.
    """
    if protected is None:
        protected = _is_protected(tsk)
    if not protected:
        return PgpSecretKey(tsk, None)
    if password is None:
        raise BadPassword(
            "this OpenPGP secret key is protected by a passphrase",
            hint="Give the key's passphrase (--passphrase-fd or SEALMAIL_PASSPHRASE).",
        )
    for probe in ("certifier", "decryptor", "signer"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                getattr(tsk, probe)(password)
        except RuntimeError as exc:
            if "No suitable" in str(exc):
                continue
            raise BadPassword("wrong passphrase for the OpenPGP secret key") from exc
        return PgpSecretKey(tsk, password)
    return PgpSecretKey(tsk, password)


def generate(
    email: str,
    name: str | None = None,
    *,
    now: datetime,
    algo: PgpAlgo = "cv25519",
    validity: timedelta | None = DEFAULT_VALIDITY,
) -> PgpSecretKey:
    """A new v4 key (see :mod:`keystore.pgpgen`) for ``Name <email>``."""
    if not _BARE_EMAIL_RE.match(email):
        raise UsageError(f"not an email address: {email!r}")
    user_id = f"{name} <{email}>" if name else f"<{email}>"
    seconds = int(validity.total_seconds()) if validity is not None else None
    raw = build_v4_key(user_id, now=_aware(now), algo=algo, validity_seconds=seconds)
    with sequoia_errors("generated OpenPGP key"):
        tsk = ps.Tsk.from_bytes(raw)
    return PgpSecretKey(tsk)


def merge_into_secret(key: PgpSecretKey, updated_public: ps.Cert) -> PgpSecretKey:
    with sequoia_errors("OpenPGP key update"):
        merged = ps.Cert.from_bytes(bytes(key.tsk)).merge(updated_public)
        secrets = merged.secrets
        if secrets is None:
            raise InvalidKeyMaterial("OpenPGP key update lost the secret key")
        return PgpSecretKey(ps.Tsk.from_bytes(bytes(secrets)), key.password)


def set_expiration(
    key: PgpSecretKey, expires: datetime | None, *, now: datetime | None = None
) -> PgpSecretKey:
    """New self-signatures with the given expiration (``None``: never expires).

    An unprotected key (every key Sealmail makes) is re-signed by :mod:`keystore.pgpedit`,
    which can also remove the expiration; a passphrase-protected one goes through
    pysequoia, which can only set one.
    """
    moment = _aware(now) if now is not None else datetime.now(UTC)
    if key.password is None:
        try:
            fragment = pgpedit.reexpire(
                bytes(key.tsk), now=moment, expires=_aware(expires) if expires else None
            )
        except UsageError:
            if expires is None:
                raise
        else:
            with sequoia_errors("setting the expiration"):
                updated = ps.Cert.from_bytes(fragment)
            return merge_into_secret(key, updated)
    if expires is None:
        raise UsageError(
            "cannot remove the expiration of a passphrase-protected OpenPGP key",
            hint="Set a distant expiration instead: `sealmail keys expire FPR --in 3650`.",
        )
    with sequoia_errors("setting the expiration"):
        updated = key.cert.set_expiration(_aware(expires), key.certifier())
    return merge_into_secret(key, public_only(updated))


def add_user_id(key: PgpSecretKey, user_id: str, *, now: datetime) -> PgpSecretKey:
    """Bind a new user id (same preferences as the primary one) to an own key."""
    if not user_id.strip() or "\n" in user_id:
        raise UsageError(f"not a user id: {user_id!r}")
    if user_id in cert_facts(key.cert).user_ids:
        raise UsageError(f"the key already has the user id {user_id!r}")
    if key.password is None:
        try:
            fragment = pgpedit.certify_user_id(bytes(key.tsk), user_id, now=_aware(now))
        except UsageError:
            pass  # an algorithm or key version pgpedit does not write: pysequoia does
        else:
            with sequoia_errors("adding a user id"):
                return merge_into_secret(key, ps.Cert.from_bytes(fragment))
    with sequoia_errors("adding a user id"):
        updated = key.cert.add_user_id(user_id, key.certifier())
    return merge_into_secret(key, public_only(updated))


def revoke_user_id(key: PgpSecretKey, user_id: str) -> PgpSecretKey:
    """A certification revocation of one of the key's user ids (UsageError if unknown)."""
    facts = cert_facts(key.cert)
    if user_id not in facts.user_ids:
        known = ", ".join(repr(u) for u in facts.user_ids) or "none"
        raise UsageError(f"the key has no live user id {user_id!r} (it has {known})")
    if len(facts.user_ids) == 1:
        raise UsageError(
            "refusing to revoke the key's only user id",
            hint="Add another user id first, or revoke the whole key (keys revoke).",
        )
    with sequoia_errors("revoking a user id"):
        cert = key.cert
        uid = next(u for u in cert.user_ids if str(u) == user_id)
        sig = cert.revoke_user_id(uid, key.certifier())
        updated = ps.Cert.from_bytes(bytes(cert) + bytes(sig))
    return merge_into_secret(key, public_only(updated))


def make_revocation(key: PgpSecretKey) -> ps.Sig:
    """A key revocation signature (a "revocation certificate")."""
    with sequoia_errors("making a revocation"):
        return key.cert.revoke(key.certifier())


def armor_revocation(sig: ps.Sig) -> bytes:
    """A revocation signature armored the way gpg imports it (PUBLIC KEY BLOCK)."""
    return ps.armor(bytes(sig), ps.ArmorKind.PublicKey).encode("ascii")


def parse_revocation(data: bytes) -> ps.Sig | None:
    """A key revocation signature in ``data``, or None if ``data`` is not one."""
    try:
        with sequoia_errors("OpenPGP signature"):
            sig = ps.Sig.from_bytes(data)
    except InvalidKeyMaterial:
        return None
    if sig.signature_type != SignatureType.KeyRevocation:
        return None
    return sig


def apply_revocation(cert: ps.Cert, sig: ps.Sig) -> ps.Cert:
    """``cert`` with ``sig`` merged; InvalidKeyMaterial if it does not revoke it."""
    with sequoia_errors("applying a revocation"):
        revoked = ps.Cert.from_bytes(bytes(cert) + bytes(sig))
        ok = bool(revoked.is_revoked)
    if not ok:
        raise InvalidKeyMaterial("the revocation signature does not belong to this key")
    return revoked
