"""OpenPGP session keys: PKESK and SKESK packets, both directions.

Theory of operation: an encrypted message starts with one or more session-key
packets. :func:`parse_pkesk` / :func:`parse_skesk` turn their bodies into frozen
records; :func:`pkesk_session_key` recovers a :class:`SessionKey` with an unlocked
secret key, :func:`skesk_session_key` with a password. Every cryptographic failure in
here (bad PKCS#1 padding, key-unwrap failure, checksum mismatch, AEAD tag) raises the
same opaque :class:`~client.errors.DecryptionFailed` with the same text, so a caller
cannot learn which check failed. RSA decryption goes through ``cryptography`` (which
applies implicit rejection on OpenSSL 3.2+); ElGamal is plain integer arithmetic
(legacy keys only, not constant time).

The writers produce what GnuPG 2.2 reads: PKESK v3 (RSA PKCS#1 v1.5, ECDH per
RFC 6637 with AES key wrap, X25519 per RFC 9580) and SKESK v4 with an iterated and
salted S2K and an encrypted session key.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from client.crypto.pgpalgos import (
    AEAD_NONCE_SIZES,
    S2K,
    aead_cipher,
    cfb_decrypt,
    cfb_encrypt,
    cipher_info,
    hash_new,
    sum16,
)
from client.crypto.pgpkeys import CURVES, PubAlgo, PublicKey, UnlockedKey
from client.crypto.pgppackets import Reader, encode_mpi
from client.errors import DecryptionFailed, MalformedMessage, UnsupportedMessage

__all__ = [
    "PKESK",
    "SKESK",
    "SessionKey",
    "build_pkesk_v3",
    "build_skesk_v4",
    "parse_pkesk",
    "parse_skesk",
    "pkesk_session_key",
    "skesk_session_key",
]

_FAIL = "the message could not be decrypted"
_ANONYMOUS_SENDER = b"Anonymous Sender    "


@dataclass(frozen=True, slots=True)
class SessionKey:
    """A recovered session key; ``cipher`` is None when the packet does not say (v6)."""

    cipher: int | None
    key: bytes = field(repr=False)
    source: str  # fingerprint/key id of the subkey, or "password"


@dataclass(frozen=True, slots=True)
class PKESK:
    version: int
    key_id: bytes  # 8 octets (v3), or b"" for a wildcard / anonymous recipient
    fingerprint: bytes  # v6 only
    algo: int
    fields: tuple[bytes, ...]
    sym_algo: int = 0  # X25519/X448 in a v3 PKESK carry the cipher in the clear

    @property
    def wildcard(self) -> bool:
        return not self.key_id.strip(b"\0") and not self.fingerprint


@dataclass(frozen=True, slots=True)
class SKESK:
    version: int
    cipher: int
    s2k: S2K
    esk: bytes
    aead: int = 0
    iv: bytes = b""


def parse_pkesk(body: bytes) -> PKESK:
    r = Reader(body, "PKESK packet")
    version = r.u8()
    fingerprint = b""
    if version == 3:
        key_id = r.take(8)
    elif version == 6:
        n = r.u8()
        if n:
            r.u8()  # key version
            fingerprint = r.take(n - 1)
        key_id = fingerprint[:8] if len(fingerprint) == 32 else fingerprint[-8:]
    else:
        raise UnsupportedMessage(f"PKESK version {version} is not supported")
    algo = r.u8()
    sym_algo = 0
    if algo in (PubAlgo.RSA, PubAlgo.RSA_ENCRYPT):
        fields: tuple[bytes, ...] = (r.mpi(),)
    elif algo in (PubAlgo.ELGAMAL, PubAlgo.ELGAMAL_LEGACY):
        fields = (r.mpi(), r.mpi())
    elif algo == PubAlgo.ECDH:
        fields = (r.mpi(), r.take(r.u8()))
    elif algo in (PubAlgo.X25519, PubAlgo.X448):
        eph = r.take(32 if algo == PubAlgo.X25519 else 56)
        rest = Reader(r.take(r.u8()), "PKESK key")
        if version == 3:
            sym_algo = rest.u8()
        fields = (eph, rest.rest())
    else:
        raise UnsupportedMessage(f"PKESK public key algorithm {algo} is not supported")
    r.end()
    return PKESK(version, key_id, fingerprint, algo, fields, sym_algo)


def parse_skesk(body: bytes) -> SKESK:
    r = Reader(body, "SKESK packet")
    version = r.u8()
    if version == 4:
        cipher = r.u8()
        return SKESK(4, cipher, S2K.parse(r), r.rest())
    if version in (5, 6):
        if version == 6:
            r = Reader(r.rest(), "SKESK packet")
            count = r.u8()
            if count > r.remaining:
                raise MalformedMessage("truncated SKESK packet")
        cipher, aead = r.u8(), r.u8()
        s2k = S2K.parse(Reader(r.take(r.u8()), "S2K specifier")) if version == 6 else S2K.parse(r)
        iv = r.take(AEAD_NONCE_SIZES.get(aead, 0) or _unsupported_aead(aead))
        return SKESK(version, cipher, s2k, r.rest(), aead, iv)
    raise UnsupportedMessage(f"SKESK version {version} is not supported")


def _unsupported_aead(aead: int) -> int:
    raise UnsupportedMessage(f"AEAD mode {aead} is not supported")


# -- recovering session keys -------------------------------------------------------------


def _check_and_split(plain: bytes, with_algo: bool) -> tuple[int | None, bytes]:
    """Split "[algo] key checksum" and verify the checksum; opaque failure."""
    if len(plain) < (3 if with_algo else 2) + 1:
        raise DecryptionFailed(_FAIL)
    algo = plain[0] if with_algo else None
    key, check = plain[1 if with_algo else 0 : -2], plain[-2:]
    ok = hmac.compare_digest(sum16(key), check)
    if algo is not None:
        info = _cipher_or_none(algo)
        ok = ok and info is not None and info == len(key)
    if not ok:
        raise DecryptionFailed(_FAIL)
    return algo, key


def _cipher_or_none(algo: int) -> int | None:
    try:
        return cipher_info(algo).key_size
    except UnsupportedMessage:
        return None


def _pkcs1_v15_decode(em: bytes) -> bytes:
    # ElGamal only (RSA uses cryptography). Not constant time; legacy keys.
    if len(em) < 11 or em[0] != 0 or em[1] != 2:
        raise DecryptionFailed(_FAIL)
    sep = em.find(b"\x00", 2)
    if sep < 10:
        raise DecryptionFailed(_FAIL)
    return em[sep + 1 :]


def _ecdh_kdf_param(pub: PublicKey) -> bytes:
    fpr = pub.fingerprint[:20] if pub.version == 5 else pub.fingerprint
    return (
        bytes([len(pub.curve_oid)])
        + pub.curve_oid
        + bytes([PubAlgo.ECDH, 3, 1, pub.kdf_hash, pub.kdf_cipher])
        + _ANONYMOUS_SENDER
        + fpr
    )


def _ecdh_kek(pub: PublicKey, shared: bytes) -> bytes:
    if pub.kdf_cipher not in (7, 8, 9):
        raise UnsupportedMessage("ECDH key wrap with a non-AES cipher is not supported")
    h = hash_new(pub.kdf_hash)
    h.update(b"\x00\x00\x00\x01" + shared + _ecdh_kdf_param(pub))
    return h.digest()[: cipher_info(pub.kdf_cipher).key_size]


def _ecdh_shared(key: UnlockedKey, eph: bytes) -> bytes:
    curve = CURVES[key.public.curve_oid]
    private = key.private
    if curve[1] is None:
        if not isinstance(private, x25519.X25519PrivateKey) or len(eph) != 33 or eph[0] != 0x40:
            raise DecryptionFailed(_FAIL)
        return private.exchange(x25519.X25519PublicKey.from_public_bytes(eph[1:]))
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise DecryptionFailed(_FAIL)
    point = ec.EllipticCurvePublicKey.from_encoded_point(curve[1], eph)
    return private.exchange(ec.ECDH(), point)


def _x_hkdf(algo: int, eph: bytes, recipient: bytes, shared: bytes) -> bytes:
    if algo == PubAlgo.X25519:
        hkdf = HKDF(hashes.SHA256(), 16, None, b"OpenPGP X25519")
    else:
        hkdf = HKDF(hashes.SHA512(), 32, None, b"OpenPGP X448")
    return hkdf.derive(eph + recipient + shared)


def pkesk_session_key(pkesk: PKESK, key: UnlockedKey) -> SessionKey:
    """Recover the session key from ``pkesk`` with ``key``; opaque DecryptionFailed."""
    if pkesk.algo != key.public.algo and not (
        {pkesk.algo, key.public.algo} <= {PubAlgo.RSA, PubAlgo.RSA_ENCRYPT}
    ):
        raise DecryptionFailed(_FAIL)
    source = key.public.fingerprint.hex()
    v3 = pkesk.version == 3
    try:
        private = key.private
        if isinstance(private, rsa.RSAPrivateKey):
            size = (private.key_size + 7) // 8
            c = pkesk.fields[0]
            if len(c) > size:
                raise DecryptionFailed(_FAIL)
            plain = private.decrypt(c.rjust(size, b"\0"), padding.PKCS1v15())
            algo, sk = _check_and_split(plain, v3)
        elif isinstance(private, tuple):
            p, _g, x = private
            c1, c2 = int.from_bytes(pkesk.fields[0], "big"), int.from_bytes(pkesk.fields[1], "big")
            if not (1 < c1 < p and 0 < c2 < p):
                raise DecryptionFailed(_FAIL)
            m = c2 * pow(c1, p - 1 - x, p) % p
            em = m.to_bytes((p.bit_length() + 7) // 8, "big")
            algo, sk = _check_and_split(_pkcs1_v15_decode(em), v3)
        elif pkesk.algo == PubAlgo.ECDH:
            shared = _ecdh_shared(key, pkesk.fields[0])
            padded = aes_key_unwrap(_ecdh_kek(key.public, shared), pkesk.fields[1])
            n = padded[-1]
            if not 1 <= n <= len(padded) or not hmac.compare_digest(padded[-n:], bytes([n]) * n):
                raise DecryptionFailed(_FAIL)
            algo, sk = _check_and_split(padded[:-n], v3)
        elif isinstance(private, x25519.X25519PrivateKey | x448.X448PrivateKey):
            eph, wrapped = pkesk.fields
            if isinstance(private, x25519.X25519PrivateKey):
                shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(eph))
            else:
                shared = private.exchange(x448.X448PublicKey.from_public_bytes(eph))
            kek = _x_hkdf(pkesk.algo, eph, key.public.fields[0], shared)
            sk = aes_key_unwrap(kek, wrapped)
            algo = pkesk.sym_algo if v3 else None
            if algo is not None and _cipher_or_none(algo) != len(sk):
                raise DecryptionFailed(_FAIL)
        else:
            raise DecryptionFailed(_FAIL)
    except (ValueError, InvalidUnwrap, IndexError, MalformedMessage) as exc:
        raise DecryptionFailed(_FAIL) from exc
    return SessionKey(algo, sk, source)


def skesk_session_key(skesk: SKESK, password: bytes) -> SessionKey:
    """Derive the session key from ``skesk`` and ``password`` (no check is possible for
    a v4 SKESK without an encrypted session key: a wrong password shows up later)."""
    info = cipher_info(skesk.cipher)
    kek = skesk.s2k.derive(password, info.key_size)
    if skesk.version == 4:
        if not skesk.esk:
            return SessionKey(skesk.cipher, kek, "password")
        plain = cfb_decrypt(info, kek, skesk.esk)
        if _cipher_or_none(plain[0]) != len(plain) - 1:
            raise DecryptionFailed(_FAIL)
        return SessionKey(plain[0], plain[1:], "password")
    ad = bytes([0xC3, skesk.version, skesk.cipher, skesk.aead])
    if skesk.version == 6:
        kek = HKDF(hashes.SHA256(), info.key_size, None, ad).derive(kek)
    try:
        sk = aead_cipher(skesk.aead, skesk.cipher, kek).decrypt(skesk.iv, skesk.esk, ad)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed(_FAIL) from exc
    return SessionKey(skesk.cipher if skesk.version == 5 else None, sk, "password")


# -- writing -------------------------------------------------------------------------------


def build_pkesk_v3(
    pub: PublicKey, cipher: int, session_key: bytes, rng: Callable[[int], bytes]
) -> bytes:
    """A version 3 PKESK body encrypting ``session_key`` to ``pub``."""
    head = bytes([3]) + pub.key_id + bytes([pub.algo])
    plain = bytes([cipher]) + session_key + sum16(session_key)
    if pub.algo in (PubAlgo.RSA, PubAlgo.RSA_ENCRYPT):
        n, e = (int.from_bytes(f, "big") for f in pub.fields)
        rsa_pub = rsa.RSAPublicNumbers(e, n).public_key()
        return head + encode_mpi(rsa_pub.encrypt(plain, padding.PKCS1v15()))
    if pub.algo == PubAlgo.ECDH:
        curve = CURVES.get(pub.curve_oid)
        if curve is None:
            raise UnsupportedMessage("unsupported ECDH curve")
        if curve[1] is None:
            eph_key = x25519.X25519PrivateKey.from_private_bytes(rng(32))
            point = pub.fields[0]
            if len(point) != 33 or point[0] != 0x40:
                raise MalformedMessage("bad Curve25519 public point")
            shared = eph_key.exchange(x25519.X25519PublicKey.from_public_bytes(point[1:]))
            eph = b"\x40" + eph_key.public_key().public_bytes_raw()
        else:
            order_bytes = curve[2] + 8
            scalar = int.from_bytes(rng(order_bytes), "big")
            nist = ec.derive_private_key(scalar % (_curve_order(curve[1]) - 1) + 1, curve[1])
            peer = ec.EllipticCurvePublicKey.from_encoded_point(curve[1], pub.fields[0])
            shared = nist.exchange(ec.ECDH(), peer)
            eph = nist.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        pad = 8 - len(plain) % 8
        wrapped = aes_key_wrap(_ecdh_kek(pub, shared), plain + bytes([pad]) * pad)
        return head + encode_mpi(eph) + bytes([len(wrapped)]) + wrapped
    if pub.algo == PubAlgo.X25519:
        eph_key = x25519.X25519PrivateKey.from_private_bytes(rng(32))
        eph = eph_key.public_key().public_bytes_raw()
        shared = eph_key.exchange(x25519.X25519PublicKey.from_public_bytes(pub.fields[0]))
        wrapped = aes_key_wrap(_x_hkdf(pub.algo, eph, pub.fields[0], shared), session_key)
        return head + eph + bytes([len(wrapped) + 1, cipher]) + wrapped
    raise UnsupportedMessage(f"cannot encrypt to public key algorithm {pub.algo}")


def build_skesk_v4(
    password: bytes, cipher: int, session_key: bytes, rng: Callable[[int], bytes]
) -> bytes:
    """A version 4 SKESK body: iterated+salted SHA-256 S2K, encrypted session key."""
    s2k = S2K(3, 8, rng(8), 0xF0)
    info = cipher_info(cipher)
    kek = s2k.derive(password, info.key_size)
    esk = cfb_encrypt(info, kek, bytes([cipher]) + session_key)
    return bytes([4, cipher]) + s2k.serialize() + esk


# group orders (from `openssl ecparam -param_enc explicit -text`), to turn rng() octets
# into an ephemeral scalar in [1, n-1]
_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "ffffffffffffffffffffffffffffffffffffffffffffffff"
        "c7634d81f4372ddf581a0db248b0a77aecec196accc52973",
        16,
    ),
    "secp521r1": int(
        "01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
        "fa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409",
        16,
    ),
}


def _curve_order(curve: ec.EllipticCurve) -> int:
    order = _ORDERS.get(curve.name)
    if order is None:
        raise UnsupportedMessage(f"encryption to {curve.name} is not supported")
    return order
