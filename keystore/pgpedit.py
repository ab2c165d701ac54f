"""New self-signatures for an own, unprotected v4 OpenPGP key (expiration, user ids).

Theory of operation
-------------------
pysequoia can change an expiration but not remove one, and it binds new user ids with
its own defaults. Sealmail already writes v4 self-signatures itself (:mod:`keystore.pgpgen`),
so this module reuses that signing code on an existing key:

* the secret key packets are parsed here (v4, unprotected: EdDSA-legacy or RSA primary,
  the algorithms Sealmail and gpg 2.2 make); a passphrase-protected key is refused with
  :class:`~keystore.errors.UsageError` (its secret is encrypted; pysequoia can still
  *set* an expiration on it, see :func:`keystore.openpgp.set_expiration`);
* :func:`reexpire` copies the newest self-signature of every live component (direct-key
  signature, each non-revoked user id, each non-revoked subkey), drops its creation-time
  and key-expiration subpackets, writes ``now`` and the new expiration (or none) and
  signs again. Everything else (key flags, preferences, features, the primary-user-id
  flag, embedded back-signatures of signing subkeys) is kept byte for byte;
* :func:`certify_user_id` binds a new user id with the preferences of the current
  primary user id (without its primary flag) and the key's current expiration.

The new signatures come back as a *public* certificate fragment (primary public key +
components + new signatures); the caller merges it into the key
(:func:`keystore.openpgp.merge_into_secret`), and Sequoia, like gpg, takes the newest
self-signature of each component.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from pysequoia.packet import PacketPile, SignatureType, Tag

from keystore.errors import InvalidKeyMaterial, UsageError
from keystore.pgpgen import _ALG_EDDSA, _ALG_RSA, _Key, _packet, _sign, _subpacket

__all__ = ["OwnKey", "certify_user_id", "parse_own_key", "reexpire"]

_TAG_PUBLIC_KEY, _TAG_PUBLIC_SUBKEY, _TAG_UID = 6, 14, 13
_SUB_CREATED, _SUB_KEY_EXPIRES, _SUB_PRIMARY_UID = 2, 9, 25
_CERTIFICATIONS = (
    SignatureType.GenericCertification,
    SignatureType.PersonaCertification,
    SignatureType.CasualCertification,
    SignatureType.PositiveCertification,
)
_Signer = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def _read_mpi(body: bytes, pos: int) -> tuple[bytes, int]:
    bits = int.from_bytes(body[pos : pos + 2], "big")
    end = pos + 2 + (bits + 7) // 8
    if end > len(body):
        raise InvalidKeyMaterial("truncated OpenPGP key packet")
    return body[pos + 2 : end], end


def _public_len(body: bytes) -> int:
    """Length of the public part of a v4 key packet body (EdDSA, ECDH, RSA)."""
    if len(body) < 6 or body[0] != 4:
        raise UsageError("only v4 OpenPGP keys can be edited here")
    algo, pos = body[5], 6
    if algo == _ALG_RSA:
        _, pos = _read_mpi(body, pos)
        _, pos = _read_mpi(body, pos)
    elif algo in (18, 19, _ALG_EDDSA):
        pos += 1 + body[pos]
        _, pos = _read_mpi(body, pos)
        if algo == 18:
            pos += 1 + body[pos]
    else:
        raise UsageError(f"editing OpenPGP keys of algorithm {algo} is not supported")
    return pos


def _signer(body: bytes) -> tuple[_Key, _Signer]:
    """The primary key's public part and signing key, from an unprotected secret packet."""
    n = _public_len(body)
    public, rest = body[:n], body[n:]
    if not rest or rest[0] != 0:
        raise UsageError(
            "this OpenPGP key is protected by a passphrase; Sealmail cannot re-sign it",
            hint="Set an expiration with `keys expire FPR --in DAYS` instead.",
        )
    algo = body[5]
    if algo == _ALG_EDDSA:
        seed, _ = _read_mpi(rest, 1)
        sk: _Signer = ed25519.Ed25519PrivateKey.from_private_bytes(seed.rjust(32, b"\x00"))
    elif algo == _ALG_RSA:
        n_bytes, pos = _read_mpi(body, 6)
        e_bytes, _ = _read_mpi(body, pos)
        d, pos = _read_mpi(rest, 1)
        p, pos = _read_mpi(rest, pos)
        q, _ = _read_mpi(rest, pos)
        di, pi, qi = (int.from_bytes(x, "big") for x in (d, p, q))
        pub = rsa.RSAPublicNumbers(int.from_bytes(e_bytes, "big"), int.from_bytes(n_bytes, "big"))
        sk = rsa.RSAPrivateNumbers(
            pi,
            qi,
            di,
            rsa.rsa_crt_dmp1(di, pi),
            rsa.rsa_crt_dmq1(di, qi),
            rsa.rsa_crt_iqmp(pi, qi),
            pub,
        ).private_key()
    else:
        raise UsageError(f"signing with OpenPGP key algorithm {algo} is not supported here")
    return _Key(public, b"", algo), sk


@dataclass
class _Component:
    kind: str  # "direct", "uid", "subkey"
    data: bytes  # the uid text (utf-8) or the subkey's public body; b"" for direct
    created: int  # the subkey's creation time (primary's for direct/uid)
    latest: bytes | None = None  # newest self-signature body
    latest_at: float = -1.0
    revoked: bool = False


@dataclass
class OwnKey:
    primary: _Key
    signer: _Signer
    created: int
    components: list[_Component]

    @property
    def prefix(self) -> bytes:
        body = self.primary.public_body
        return b"\x99" + struct.pack(">H", len(body)) + body


def parse_own_key(tsk_bytes: bytes) -> OwnKey:
    """The pieces of an own key needed to re-sign it (UsageError if it cannot be)."""
    primary: tuple[_Key, _Signer] | None = None
    created = 0
    components: list[_Component] = []
    current: _Component | None = None
    try:
        packets = list(PacketPile.from_bytes(tsk_bytes))
    except RuntimeError as exc:
        raise InvalidKeyMaterial("unreadable OpenPGP key") from exc
    for p in packets:
        body = bytes(p.body or b"")
        if p.tag == Tag.SecretKey and primary is None:
            primary = _signer(body)
            created = int.from_bytes(body[1:5], "big")
            current = _Component("direct", b"", created)
            components.append(current)
        elif p.tag == Tag.PublicKey:
            raise UsageError("this is not a secret key")
        elif p.tag == Tag.UserID:
            current = _Component("uid", body, created)
            components.append(current)
        elif p.tag in (Tag.SecretSubkey, Tag.PublicSubkey):
            public = body[: _public_len(body)]
            current = _Component("subkey", public, int.from_bytes(body[1:5], "big"))
            components.append(current)
        elif p.tag == Tag.UserAttribute:
            current = None
        elif p.tag == Tag.Signature and current is not None and primary is not None:
            fpr = primary[0].fingerprint.hex()
            issuer = (p.issuer_fingerprint or p.issuer_key_id or "").lower()
            if not issuer or not fpr.endswith(issuer) or body[:1] != b"\x04":
                continue
            kind = p.signature_type
            if kind in (SignatureType.CertificationRevocation, SignatureType.SubkeyRevocation):
                current.revoked = True
                continue
            wanted = {
                "direct": (SignatureType.DirectKey,),
                "uid": _CERTIFICATIONS,
                "subkey": (SignatureType.SubkeyBinding,),
            }[current.kind]
            when = p.signature_created.timestamp() if p.signature_created else 0.0
            if kind in wanted and when >= current.latest_at:
                current.latest, current.latest_at = body, when
    if primary is None:
        raise UsageError("no secret primary key")
    return OwnKey(primary[0], primary[1], created, components)


def _subpackets(area: bytes) -> list[tuple[int, bytes]]:
    """(type without the critical bit, whole raw subpacket) of a subpacket area."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(area):
        first = area[pos]
        if first < 192:
            n, hdr = first, 1
        elif first < 255:
            n, hdr = ((first - 192) << 8) + area[pos + 1] + 192, 2
        else:
            n, hdr = int.from_bytes(area[pos + 1 : pos + 5], "big"), 5
        raw = area[pos : pos + hdr + n]
        out.append((area[pos + hdr] & 0x7F, raw))
        pos += hdr + n
    return out


def _hashed_area(sig_body: bytes) -> bytes:
    (n,) = struct.unpack(">H", sig_body[4:6])
    return sig_body[6 : 6 + n]


def _rewrite(
    area: bytes, *, now: int, expires: int | None, created: int, drop: tuple[int, ...]
) -> bytes:
    kept = b"".join(
        raw
        for kind, raw in _subpackets(area)
        if kind not in (_SUB_CREATED, _SUB_KEY_EXPIRES, *drop)
    )
    out = _subpacket(_SUB_CREATED, struct.pack(">I", now))
    if expires is not None:
        out += _subpacket(_SUB_KEY_EXPIRES, struct.pack(">I", max(1, expires - created)))
    return out + kept


def _uid_prefix(uid: bytes) -> bytes:
    return b"\xb4" + struct.pack(">I", len(uid)) + uid


def _signed(key: OwnKey, comp: _Component, sig_type: int, hashed: bytes) -> bytes:
    if comp.kind == "uid":
        prefix = key.prefix + _uid_prefix(comp.data)
    elif comp.kind == "subkey":
        prefix = key.prefix + b"\x99" + struct.pack(">H", len(comp.data)) + comp.data
    else:
        prefix = key.prefix
    return _sign(key.signer, key.primary, sig_type, hashed, prefix)


def _fragment(key: OwnKey, parts: list[tuple[_Component, bytes]]) -> bytes:
    out = _packet(_TAG_PUBLIC_KEY, key.primary.public_body)
    for comp, sig in sorted(parts, key=lambda x: ("direct", "uid", "subkey").index(x[0].kind)):
        if comp.kind == "uid":
            out += _packet(_TAG_UID, comp.data)
        elif comp.kind == "subkey":
            out += _packet(_TAG_PUBLIC_SUBKEY, comp.data)
        out += sig
    return out


def _wait_until(stamp: int) -> None:
    """Signature times have one-second resolution and Sequoia (on the system clock)
    ignores signatures from the future: when the new signature must be one second
    newer than one made just now, wait for that second (never more than 2 s)."""
    gap = stamp - time.time()
    if 0 < gap <= 2:
        time.sleep(gap)


def reexpire(tsk_bytes: bytes, *, now: datetime, expires: datetime | None) -> bytes:
    """A public fragment of new self-signatures giving the key (and subkeys) ``expires``."""
    key = parse_own_key(tsk_bytes)
    # newer than every current self-signature, even when ``now`` is a test clock
    newest = max((c.latest_at for c in key.components), default=0.0)
    stamp = max(int(now.timestamp()), int(newest) + 1)
    _wait_until(stamp)
    until = int(expires.timestamp()) if expires is not None else None
    parts: list[tuple[_Component, bytes]] = []
    for comp in key.components:
        if comp.revoked or comp.latest is None:
            continue
        hashed = _rewrite(
            _hashed_area(comp.latest), now=stamp, expires=until, created=comp.created, drop=()
        )
        parts.append((comp, _signed(key, comp, comp.latest[1], hashed)))
    if not any(c.kind in ("uid", "direct") for c, _ in parts):
        raise UsageError("the key has no live user id or direct-key signature to re-sign")
    return _fragment(key, parts)


def certify_user_id(tsk_bytes: bytes, user_id: str, *, now: datetime) -> bytes:
    """A public fragment binding ``user_id`` to the key (positive certification)."""
    key = parse_own_key(tsk_bytes)
    stamp = int(now.timestamp())
    uids = [c for c in key.components if c.kind == "uid" and not c.revoked and c.latest]
    base = max(uids, key=lambda c: c.latest_at, default=None)
    if base is None or base.latest is None:
        raise UsageError("the key has no live user id to copy preferences from")
    # keep the base's expiration: it is relative to the primary key's creation
    area = _hashed_area(base.latest)
    validity = [raw for kind, raw in _subpackets(area) if kind == _SUB_KEY_EXPIRES]
    hashed = _rewrite(area, now=stamp, expires=None, created=key.created, drop=(_SUB_PRIMARY_UID,))
    if validity:
        hashed = validity[0] + hashed
    comp = _Component("uid", user_id.encode("utf-8"), key.created)
    return _fragment(key, [(comp, _signed(key, comp, 0x13, hashed))])
