"""Key discovery and per-address status: WKD (cached), Autocrypt peers, harvested certificates.

Theory of operation
-------------------
Everything found here enters the keystore with ``origin="discovered"`` and
``confirmed=False``; a discovered key never replaces a confirmed one: it is stored as
its own row (lookups list confirmed keys first), and when it differs from a key the
user confirmed for the same address (or from the key the peer used before) the
address is flagged *changed* until the user confirms one of them.

* :func:`discover_wkd` looks an address up in its domain's Web Key Directory
  (:mod:`keystore.wkd`) unless the profile's cache (table ``discovery_cache``) holds a
  fresh answer: found keys for ``ttl_found``, "not published"/errors for
  ``ttl_missing``. A cached failure is raised again as the same typed error.
* :func:`process_autocrypt` applies Autocrypt Level 1 to one received message: the
  peer's ``last_seen``, ``autocrypt_seen``, key and ``prefer-encrypt`` (table
  ``peerstate``); a message older than the last Autocrypt header seen changes nothing.
* :func:`harvest_smime` records the signer certificate chain of a *verified* S/MIME
  signature and its SMIMECapabilities (does it list AES-GCM?), newest wins.
* :func:`address_status` answers "how can I protect mail to this address, right now?"
  for the CLI's ``keys status`` and the protection policy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import cms as asn1_cms
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keystore import certs as x509m
from keystore import openpgp as pgp
from keystore import wkd
from keystore.autocrypt import header_for_sender
from keystore.errors import (
    DiscoveryError,
    DiscoveryNetworkError,
    DiscoveryTimeout,
    DiscoveryTlsError,
    InvalidKeyMaterial,
    KeyNotPublished,
    ResponseTooLarge,
    WrongKeyForAddress,
)
from keystore.index import CacheRow, PeerRow
from keystore.store import KeyInfo, Keystore, normalize_fingerprint

__all__ = [
    "GCM_OIDS",
    "TTL_FOUND",
    "TTL_MISSING",
    "AddressStatus",
    "AutocryptOutcome",
    "DiscoveryResult",
    "MethodInfo",
    "address_status",
    "discover_wkd",
    "harvest_smime",
    "parse_smime_capabilities",
    "process_autocrypt",
]

log = logging.getLogger(__name__)

TTL_FOUND = timedelta(days=1)
TTL_MISSING = timedelta(hours=1)
#: id-aes128-GCM, id-aes192-GCM, id-aes256-GCM (RFC 5084)
GCM_OIDS = frozenset(
    {"2.16.840.1.101.3.4.1.6", "2.16.840.1.101.3.4.1.26", "2.16.840.1.101.3.4.1.46"}
)
_ERRORS: dict[str, type[DiscoveryError]] = {
    cls.__name__: cls
    for cls in (
        KeyNotPublished,
        WrongKeyForAddress,
        DiscoveryTlsError,
        DiscoveryTimeout,
        ResponseTooLarge,
        DiscoveryNetworkError,
    )
}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- WKD ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscoveryResult:
    email: str
    method: str  # "wkd"
    fingerprints: tuple[str, ...]
    fetched: datetime
    from_cache: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "method": self.method,
            "outcome": "found",
            "fingerprints": list(self.fingerprints),
            "fetched": self.fetched.isoformat(),
            "from_cache": self.from_cache,
            "detail": self.detail,
        }


def discover_wkd(
    ks: Keystore,
    email: str,
    *,
    now: datetime,
    settings: wkd.WkdSettings | None = None,
    refresh: bool = False,
    ttl_found: timedelta = TTL_FOUND,
    ttl_missing: timedelta = TTL_MISSING,
) -> DiscoveryResult:
    """Keys for ``email`` from its Web Key Directory (or the cache); stores them as discovered."""
    now = _aware(now)
    addr = email.strip().lower()
    wkd.split_address(addr)
    index = ks.index
    cached = None if refresh else index.cache_get("wkd", addr)
    if cached is not None:
        age = now - _aware(cached.fetched)
        fresh = age < (ttl_found if cached.outcome == "found" else ttl_missing)
        if fresh and cached.outcome == "found":
            fprs = tuple(f for f in (cached.fingerprint or "").split(",") if f)
            if all(index.get(f) is not None for f in fprs):
                return DiscoveryResult(addr, "wkd", fprs, cached.fetched, True, cached.detail)
        elif fresh:
            cls = _ERRORS.get(cached.outcome, DiscoveryError)
            raise cls(f"{cached.detail} (cached {cached.fetched.isoformat()})")
    try:
        answer = wkd.fetch_wkd(email.strip(), settings)
    except DiscoveryError as exc:
        with index.transaction():
            index.cache_put(CacheRow("wkd", addr, now, type(exc).__name__, None, str(exc)))
        raise
    infos: list[KeyInfo] = []
    for raw in answer.certs:
        infos.extend(ks.import_bytes(raw, origin="discovered"))
    fprs = tuple(dict.fromkeys(i.fingerprint for i in infos))
    with index.transaction():
        index.cache_put(CacheRow("wkd", addr, now, "found", ",".join(fprs), answer.url))
    _note_changed(ks, addr, fprs, now=now)
    return DiscoveryResult(addr, "wkd", fprs, now, False, answer.url)


def _confirmed_pgp(ks: Keystore, addr: str) -> list[str]:
    return [
        r.fingerprint
        for r in ks.index.by_email(addr, kind="pgp")
        if r.confirmed and r.secret is None
    ]


def _note_changed(ks: Keystore, addr: str, fprs: Sequence[str], *, now: datetime) -> None:
    """Flag the address when a discovered key differs from a confirmed one."""
    confirmed = _confirmed_pgp(ks, addr)
    new = [f for f in fprs if f not in confirmed]
    if not confirmed or not new:
        return
    peer = ks.index.peer(addr)
    with ks.index.transaction():
        ks.index.put_peer(
            PeerRow(
                email=addr,
                last_seen=peer.last_seen if peer else now,
                autocrypt_seen=peer.autocrypt_seen if peer else None,
                fingerprint=peer.fingerprint if peer else None,
                prefer_encrypt=peer.prefer_encrypt if peer else "nopreference",
                changed_from=confirmed[0],
            )
        )


# --- Autocrypt ------------------------------------------------------------------------


@dataclass(frozen=True)
class AutocryptOutcome:
    email: str
    updated: bool  # the peer state took this message's header
    fingerprint: str | None
    changed_from: str | None
    detail: str = ""


def process_autocrypt(
    ks: Keystore,
    from_addr: str,
    header_values: Iterable[str],
    *,
    message_date: datetime,
    now: datetime,
) -> AutocryptOutcome:
    """Update the peer state of ``from_addr`` from one received message (Level 1)."""
    now = _aware(now)
    addr = from_addr.strip().lower()
    date = min(_aware(message_date), now)
    peer = ks.index.peer(addr)
    header = header_for_sender(header_values, addr)
    if header is None:
        if peer is not None and date > _aware(peer.last_seen):
            with ks.index.transaction():
                ks.index.put_peer(PeerRow(**{**peer.__dict__, "last_seen": date}))
        return AutocryptOutcome(addr, False, peer.fingerprint if peer else None, None, "no header")
    if peer is not None and peer.autocrypt_seen and date <= _aware(peer.autocrypt_seen):
        return AutocryptOutcome(addr, False, peer.fingerprint, peer.changed_from, "older message")
    try:
        materials = pgp.parse_keys(header.keydata)
    except InvalidKeyMaterial as exc:
        return AutocryptOutcome(addr, False, None, None, f"bad keydata: {exc}")
    if len(materials) != 1 or materials[0].tsk is not None:
        return AutocryptOutcome(addr, False, None, None, "keydata must be one public key")
    if addr not in pgp.cert_facts(materials[0].cert).emails:
        return AutocryptOutcome(addr, False, None, None, "wrong key for address")
    (info,) = ks.import_bytes(bytes(materials[0].cert), origin="discovered")
    fpr = info.fingerprint
    changed_from = peer.changed_from if peer else None
    if peer is not None and peer.fingerprint and peer.fingerprint != fpr:
        changed_from = peer.fingerprint
    confirmed = _confirmed_pgp(ks, addr)
    if confirmed and fpr not in confirmed:
        changed_from = confirmed[0]
    elif fpr in confirmed:
        changed_from = None
    new_peer = PeerRow(
        email=addr,
        last_seen=max(date, _aware(peer.last_seen)) if peer else date,
        autocrypt_seen=date,
        fingerprint=fpr,
        prefer_encrypt=header.prefer_encrypt,
        changed_from=changed_from,
    )
    with ks.index.transaction():
        ks.index.put_peer(new_peer)
    return AutocryptOutcome(addr, True, fpr, changed_from)


# --- S/MIME harvesting ----------------------------------------------------------------


def parse_smime_capabilities(caps: bytes | Sequence[str] | None) -> tuple[str, ...]:
    """Algorithm OIDs from a DER SMIMECapabilities value, or a list of dotted OIDs."""
    if caps is None:
        return ()
    if isinstance(caps, bytes | bytearray):
        try:
            parsed = asn1_cms.SMIMECapabilites.load(bytes(caps))
            return tuple(str(c["capability_id"].dotted) for c in parsed)
        except (ValueError, TypeError) as exc:
            raise InvalidKeyMaterial("SMIMECapabilities could not be read") from exc
    return tuple(str(c) for c in caps)


def harvest_smime(
    ks: Keystore,
    chain: Sequence[x509.Certificate],
    capabilities: bytes | Sequence[str] | None,
    *,
    seen: datetime,
) -> list[KeyInfo]:
    """Store the signer certificate (first) and its issuers from a *verified* signature."""
    if not chain:
        return []
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain)
    infos = ks.import_bytes(pem, origin="discovered")
    if capabilities is not None:
        oids = parse_smime_capabilities(capabilities)
        leaf = x509m.x509_fingerprint(chain[0])
        seen = _aware(seen)
        with ks.index.transaction():
            old = ks.index.smime_caps(leaf)
            if old is None or _aware(old[2]) <= seen:
                ks.index.set_smime_caps(
                    leaf, gcm=bool(GCM_OIDS & set(oids)), caps=",".join(oids), seen=seen
                )
    return infos


# --- status ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MethodInfo:
    method: str  # "pgp" or "smime"
    fingerprint: str
    origin: str
    confirmed: bool
    expires: datetime | None
    gcm: bool | None = None  # S/MIME: the certificate's owner announced AES-GCM
    user_id: str | None = None  # OpenPGP: the user id valid for the address at that time

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "fingerprint": self.fingerprint,
            "origin": self.origin,
            "confirmed": self.confirmed,
            "expires": self.expires.isoformat() if self.expires else None,
        }
        if self.method == "smime":
            out["gcm"] = self.gcm
        else:
            out["user_id"] = self.user_id
        return out


@dataclass(frozen=True)
class AddressStatus:
    email: str
    methods: tuple[MethodInfo, ...]
    reasons: tuple[str, ...]
    changed_key: bool
    changed_from: str | None
    peer: PeerRow | None = None
    wkd: CacheRow | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return bool(self.methods)

    @property
    def confirmed(self) -> bool:
        return any(m.confirmed for m in self.methods)

    def to_json(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "usable": self.usable,
            "methods": [m.to_json() for m in self.methods],
            "reasons": list(self.reasons),
            "confirmed": self.confirmed,
            "discovered_only": self.usable and not self.confirmed,
            "changed_key": self.changed_key,
            "changed_from": self.changed_from,
            "autocrypt": None
            if self.peer is None or self.peer.autocrypt_seen is None
            else {
                "fingerprint": self.peer.fingerprint,
                "prefer_encrypt": self.peer.prefer_encrypt,
                "last_seen": self.peer.last_seen.isoformat(),
                "autocrypt_seen": self.peer.autocrypt_seen.isoformat(),
            },
            "wkd": None
            if self.wkd is None
            else {
                "outcome": self.wkd.outcome,
                "fetched": self.wkd.fetched.isoformat(),
                "fingerprints": [f for f in (self.wkd.fingerprint or "").split(",") if f],
            },
        }


def address_status(ks: Keystore, email: str, *, now: datetime) -> AddressStatus:
    """Usable methods (with fingerprints) for ``email`` at ``now``, and why not when none."""
    addr = email.strip().lower()
    found = ks.recipient_keys(addr, now=now)
    methods: list[MethodInfo] = []
    for cert in found.pgp:
        row = ks.index.get(normalize_fingerprint(str(cert.fingerprint)))
        if row is not None:
            uid = next(
                (
                    u.user_id
                    for u in pgp.user_id_validity(cert, now=now)
                    if u.valid and u.email == addr
                ),
                None,
            )
            methods.append(
                MethodInfo(
                    "pgp", row.fingerprint, row.origin, row.confirmed, row.expires, user_id=uid
                )
            )
    for gkey in found.gnupg:
        uid = next(
            (
                u
                for u, v in zip(gkey.user_ids, gkey.uid_validity, strict=True)
                if pgp.email_of_uid(u) == addr and v in ("f", "u")
            ),
            None,
        )
        methods.append(
            MethodInfo("pgp", gkey.fingerprint, "gnupg", True, gkey.expires, user_id=uid)
        )
    for xcert in found.x509:
        row = ks.index.get(x509m.x509_fingerprint(xcert))
        if row is not None:
            methods.append(
                MethodInfo(
                    "smime",
                    row.fingerprint,
                    row.origin,
                    row.confirmed,
                    row.expires,
                    gcm=ks.smime_supports_gcm(xcert),
                )
            )
    peer = ks.index.peer(addr)
    changed_from = peer.changed_from if peer else None
    return AddressStatus(
        email=addr,
        methods=tuple(methods),
        reasons=found.reasons,
        changed_key=changed_from is not None,
        changed_from=changed_from,
        peer=peer,
        wkd=ks.index.cache_get("wkd", addr),
    )
