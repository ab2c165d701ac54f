"""Which subkeys of a recipient certificate to encrypt to.

Theory of operation: deciding whether a subkey may be used for encryption means
verifying binding signatures, key flags, expiry and revocation of the key and the
certificate. Sequoia already does all of that correctly, so we ask it: we encrypt a
one-octet probe with ``pysequoia.encrypt(b"x", recipients=[cert])`` and read, from the
PKESK packets it wrote, which subkeys it chose (key ID in a v3 PKESK, fingerprint in
a v6 PKESK). Those subkeys' public key material is then taken from the certificate
with our own parser (:mod:`client.crypto.pgpkeys`). Sequoia judges validity at the
current wall-clock time; when ``now`` is given we additionally require each chosen
subkey to exist at ``now`` and to be unexpired at ``now`` according to the key
expiration time in its (Sequoia-verified) binding signature.

Only v4 subkeys are returned: a v6 subkey belongs with SEIPDv2, which GnuPG 2.2
cannot read, so for such certificates callers encrypt with pysequoia instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from datetime import datetime

import pysequoia

from client.crypto.pgparmor import dearmor
from client.crypto.pgpkeys import PublicKey, load_public_keys, parse_public_key
from client.crypto.pgppackets import Reader, Tag, parse_packets, signature_subpackets
from client.crypto.pgpsession import parse_pkesk
from client.errors import (
    InvalidKeyMaterial,
    MalformedMessage,
    NoKeyForRecipient,
    SealmailError,
    UnsupportedMessage,
)

__all__ = ["all_encryption_subkeys", "encryption_subkeys"]

log = logging.getLogger(__name__)
_KEY_EXPIRATION_SUBPACKET = 9
# subkey binding, direct key, and the user ID certifications a primary key makes on itself
_SELF_SIGNATURES = frozenset({0x18, 0x1F, 0x10, 0x11, 0x12, 0x13})


def _probe(cert: bytes) -> list[tuple[bytes, bytes]]:
    """(key id, fingerprint) of the subkeys Sequoia encrypts to."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            parsed = pysequoia.Cert.from_bytes(cert)
    except Exception as exc:  # pysequoia raises plain exceptions with Rust details
        log.debug("pysequoia could not parse a certificate: %s", exc)
        raise InvalidKeyMaterial("the recipient certificate cannot be parsed") from exc
    try:
        probe = pysequoia.encrypt(b"x", recipients=[parsed], armor=False)
    except Exception as exc:
        log.debug("pysequoia found no encryption key: %s", exc)
        raise NoKeyForRecipient(
            f"certificate {parsed.fingerprint} has no valid encryption subkey"
        ) from exc
    found = []
    for packet in parse_packets(probe):
        if packet.tag == Tag.PKESK:
            pkesk = parse_pkesk(packet.body)
            found.append((pkesk.key_id, pkesk.fingerprint))
    return found


def _subkey_expiry(cert_packets: list[tuple[int, bytes]], fingerprint: bytes) -> int | None:
    """Seconds after creation at which a key expires (None: never or unknown).

    Only self-signatures after the key's packet count; Sequoia already checked them.
    """
    expiry: int | None = None
    current = False
    for tag, body in cert_packets:
        if tag in (Tag.PUBLIC_SUBKEY, Tag.SECRET_SUBKEY, Tag.PUBLIC_KEY, Tag.SECRET_KEY):
            try:
                current = parse_public_key(Reader(body)).fingerprint == fingerprint
            except (UnsupportedMessage, MalformedMessage):
                current = False
        elif tag == Tag.SIGNATURE and current:
            try:
                value = _binding_expiry(body)
            except MalformedMessage:
                continue
            if value is not None:
                expiry = value  # the newest binding signature comes last in Sequoia's output
    return expiry


def _binding_expiry(sig: bytes) -> int | None:
    """The key expiration time in a self-signature that can carry one (None if absent)."""
    r = Reader(sig, "signature packet")
    version = r.u8()
    if version not in (4, 6):
        return None
    sig_type = r.u8()
    r.take(2)  # public key and hash algorithms
    if sig_type not in _SELF_SIGNATURES:
        return None
    hashed = r.take(r.u16() if version == 4 else r.u32())
    result = None
    for kind, body in signature_subpackets(hashed):
        if kind == _KEY_EXPIRATION_SUBPACKET:
            result = Reader(body, "key expiration subpacket").u32() or None
    return result


def _valid_at(raw: list[tuple[int, bytes]], key: PublicKey, now: datetime) -> bool:
    ts = int(now.timestamp())
    expiry = _subkey_expiry(raw, key.fingerprint)
    return key.created <= ts and (expiry is None or key.created + expiry > ts)


def encryption_subkeys(cert: bytes, *, now: datetime | None = None) -> list[PublicKey]:
    """The v4 public subkeys to encrypt to for one certificate (binary or armored)."""
    chosen = _probe(cert)
    try:
        keys = load_public_keys(cert)
        raw = [(p.tag, p.body) for p in parse_packets(dearmor(cert))]
    except SealmailError as exc:
        raise InvalidKeyMaterial("the recipient certificate cannot be parsed") from exc
    if not keys:
        raise InvalidKeyMaterial("the recipient certificate has no key packets")
    primary = keys[0]
    result: list[PublicKey] = []
    for key_id, fingerprint in chosen:
        match = [
            k
            for k in keys
            if (fingerprint and k.fingerprint == fingerprint)
            or (not fingerprint and k.key_id == key_id)
        ]
        if not match:
            raise NoKeyForRecipient("the chosen encryption subkey is not in the certificate")
        key = match[0]
        if key.version != 4:
            raise NoKeyForRecipient(
                "the recipient key is a v6 key; SEIPDv1 messages cannot be made for it",
                hint="Encrypt to this recipient with the RFC 9580 (SEIPDv2) path instead.",
            )
        if now is not None and not (_valid_at(raw, key, now) and _valid_at(raw, primary, now)):
            continue
        result.append(key)
    if not result:
        raise NoKeyForRecipient("the certificate has no encryption subkey valid at that time")
    return result


def all_encryption_subkeys(certs: Sequence[bytes], *, now: datetime | None) -> list[PublicKey]:
    out: list[PublicKey] = []
    for cert in certs:
        out.extend(encryption_subkeys(cert, now=now))
    return out
