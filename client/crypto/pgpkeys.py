"""OpenPGP key packets: public key material, fingerprints, secret-key unlocking.

Theory of operation: a key packet body is parsed into a :class:`PublicKey` (version,
creation time, algorithm, algorithm-specific fields, fingerprint). Secret key packets
add a :class:`SecretKey`, which keeps the protected secret material as found and is
unlocked on demand with :meth:`SecretKey.unlock` (S2K usage 0, and 254/255 with any
:class:`~client.crypto.pgpalgos.S2K`; wrong passphrase -> ``BadPassword``). Unlocking
returns an :class:`UnlockedKey` holding a ``cryptography`` private key object (or
integers for ElGamal), ready for the session-key layer.

:func:`load_secret_keys` turns the algorithms that can decrypt into private keys: RSA,
ElGamal, ECDH (Curve25519 legacy, NIST P-256/384/521, brainpool) and X25519/X448.
:func:`load_signing_key` unlocks one named key for streaming signatures (RSA, EdDSA
legacy on Ed25519, Ed25519, ECDSA). Other key packets (unknown algorithms, GnuPG stubs)
are kept as public keys or skipped.

Curve25519 (legacy ECDH) stores the secret scalar as an MPI, i.e. big-endian, while
X25519 wants the native little-endian octets: we left-pad to 32 octets and reverse,
as GnuPG and Sequoia do. Key files are the user's own material, so damage in them is
:class:`~client.errors.InvalidKeyMaterial`, not a message error.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from client.crypto.pgpalgos import (
    AEAD_NONCE_SIZES,
    S2K,
    aead_cipher,
    cfb_decrypt,
    cipher_info,
    sum16,
)
from client.crypto.pgparmor import dearmor
from client.crypto.pgppackets import Packet, Reader, Tag, parse_packets
from client.errors import (
    BadPassword,
    InvalidKeyMaterial,
    MalformedMessage,
    SealmailError,
    UnsupportedMessage,
)

__all__ = [
    "CURVES",
    "PrivateKey",
    "PubAlgo",
    "PublicKey",
    "SecretKey",
    "UnlockedKey",
    "forget_unlocked",
    "load_public_keys",
    "load_secret_keys",
    "load_signing_key",
    "parse_public_key",
    "parse_secret_key",
]


class PubAlgo(IntEnum):
    RSA = 1
    RSA_ENCRYPT = 2
    RSA_SIGN = 3
    ELGAMAL = 16
    DSA = 17
    ECDH = 18
    ECDSA = 19
    ELGAMAL_LEGACY = 20
    EDDSA_LEGACY = 22
    X25519 = 25
    X448 = 26
    ED25519 = 27
    ED448 = 28


ENCRYPTION_ALGOS = frozenset(
    {PubAlgo.RSA, PubAlgo.RSA_ENCRYPT, PubAlgo.ELGAMAL, PubAlgo.ECDH, PubAlgo.X25519, PubAlgo.X448}
)
CURVE25519_OID = bytes.fromhex("2b060104019755010501")
ED25519_LEGACY_OID = bytes.fromhex("2b06010401da470f01")

#: ECDH curve OID -> (name, cryptography curve or None for Curve25519, coordinate size)
CURVES: dict[bytes, tuple[str, ec.EllipticCurve | None, int]] = {
    CURVE25519_OID: ("Curve25519", None, 32),
    bytes.fromhex("2a8648ce3d030107"): ("NIST P-256", ec.SECP256R1(), 32),
    bytes.fromhex("2b81040022"): ("NIST P-384", ec.SECP384R1(), 48),
    bytes.fromhex("2b81040023"): ("NIST P-521", ec.SECP521R1(), 66),
    bytes.fromhex("2b2403030208010107"): ("brainpoolP256r1", ec.BrainpoolP256R1(), 32),
    bytes.fromhex("2b240303020801010b"): ("brainpoolP384r1", ec.BrainpoolP384R1(), 48),
    bytes.fromhex("2b240303020801010d"): ("brainpoolP512r1", ec.BrainpoolP512R1(), 64),
}

_RAW_SIZES = {PubAlgo.X25519: 32, PubAlgo.X448: 56, PubAlgo.ED25519: 32, PubAlgo.ED448: 57}
_SECRET_RAW_SIZES = {PubAlgo.X25519: 32, PubAlgo.X448: 56, PubAlgo.ED25519: 32, PubAlgo.ED448: 57}


@dataclass(frozen=True, slots=True)
class PublicKey:
    """The public part of a key packet."""

    version: int
    created: int
    algo: int
    fields: tuple[bytes, ...]  # MPIs (without length) or raw octet strings
    body: bytes  # the public key packet body, as hashed for the fingerprint
    curve_oid: bytes = b""
    kdf_hash: int = 0
    kdf_cipher: int = 0

    @property
    def fingerprint(self) -> bytes:
        if self.version == 4:
            return hashlib.sha1(  # noqa: S324 - the v4 fingerprint is defined as SHA-1
                b"\x99" + len(self.body).to_bytes(2, "big") + self.body
            ).digest()
        prefix = b"\x9b" if self.version == 6 else b"\x9a"
        return hashlib.sha256(prefix + len(self.body).to_bytes(4, "big") + self.body).digest()

    @property
    def key_id(self) -> bytes:
        fpr = self.fingerprint
        return fpr[-8:] if self.version == 4 else fpr[:8]

    @property
    def can_encrypt(self) -> bool:
        return self.algo in ENCRYPTION_ALGOS

    def as_public_packet_body(self) -> bytes:
        return self.body


PrivateKey = (
    rsa.RSAPrivateKey
    | ec.EllipticCurvePrivateKey
    | ed25519.Ed25519PrivateKey
    | x25519.X25519PrivateKey
    | x448.X448PrivateKey
    | tuple[int, int, int]  # ElGamal (p, g, x)
)


@dataclass(frozen=True, slots=True)
class UnlockedKey:
    """A key packet with usable private key material."""

    public: PublicKey
    private: PrivateKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class SecretKey:
    """A secret key packet, possibly still passphrase-protected."""

    public: PublicKey
    usage: int
    cipher: int
    s2k: S2K | None
    iv: bytes
    secret: bytes = field(repr=False)
    aead: int = 0
    packet_tag: int = Tag.SECRET_KEY

    @property
    def locked(self) -> bool:
        return self.usage != 0

    def unlock(self, passphrase: bytes | None = None) -> UnlockedKey:
        """Decrypt the secret material; BadPassword if the passphrase is missing or wrong."""
        if self.usage == 0:
            plain = self.secret
            if self.public.version != 6:
                plain, check = plain[:-2], plain[-2:]
                if not hmac.compare_digest(sum16(plain), check):
                    raise InvalidKeyMaterial("secret key checksum mismatch")
            return _make_private(self.public, plain)
        if passphrase is None:
            raise BadPassword("the secret key is protected by a passphrase")
        if self.usage == 253 and self.s2k is not None:
            return self._unlock_aead(self.s2k, passphrase)
        if self.usage not in (254, 255) or self.s2k is None:
            raise UnsupportedMessage(f"secret key protection {self.usage} is not supported")
        info = cipher_info(self.cipher)
        key = self.s2k.derive(passphrase, info.key_size)
        plain = cfb_decrypt(info, key, self.secret, self.iv)
        if self.usage == 254:
            plain, check = plain[:-20], plain[-20:]
            ok = hmac.compare_digest(hashlib.sha1(plain).digest(), check)  # noqa: S324
        else:
            plain, check = plain[:-2], plain[-2:]
            ok = hmac.compare_digest(sum16(plain), check)
        if not ok:
            raise BadPassword("wrong passphrase for the secret key")
        try:
            return _make_private(self.public, plain)
        except InvalidKeyMaterial as exc:  # a 16-bit checksum can pass by chance
            raise BadPassword("wrong passphrase for the secret key") from exc

    def _unlock_aead(self, s2k: S2K, passphrase: bytes) -> UnlockedKey:
        """S2K usage 253 (RFC 9580 5.5.3): HKDF-derived key, AEAD over the material."""
        info = cipher_info(self.cipher)
        header = bytes([0xC0 | self.packet_tag])
        params = bytes([self.public.version, self.cipher, self.aead])
        ikm = s2k.derive(passphrase, info.key_size)
        kek = HKDF(hashes.SHA256(), info.key_size, None, header + params).derive(ikm)
        try:
            plain = aead_cipher(self.aead, self.cipher, kek).decrypt(
                self.iv, self.secret, header + self.public.body
            )
        except (InvalidTag, ValueError) as exc:
            raise BadPassword("wrong passphrase for the secret key") from exc
        return _make_private(self.public, plain)


def _read_oid(r: Reader) -> bytes:
    n = r.u8()
    if n in (0, 0xFF):
        raise MalformedMessage("reserved curve OID length")
    return r.take(n)


def _read_material(r: Reader, version: int, algo: int) -> tuple[tuple[bytes, ...], bytes, int, int]:
    oid, kdf_hash, kdf_cipher = b"", 0, 0
    if algo in (PubAlgo.RSA, PubAlgo.RSA_ENCRYPT, PubAlgo.RSA_SIGN):
        fields: tuple[bytes, ...] = (r.mpi(), r.mpi())
    elif algo in (PubAlgo.ELGAMAL, PubAlgo.ELGAMAL_LEGACY):
        fields = (r.mpi(), r.mpi(), r.mpi())
    elif algo == PubAlgo.DSA:
        fields = (r.mpi(), r.mpi(), r.mpi(), r.mpi())
    elif algo in (PubAlgo.ECDSA, PubAlgo.EDDSA_LEGACY):
        oid = _read_oid(r)
        fields = (r.mpi(),)
    elif algo == PubAlgo.ECDH:
        oid = _read_oid(r)
        fields = (r.mpi(),)
        kdf = Reader(r.take(r.u8()), "ECDH KDF parameters")
        if kdf.u8() != 1:
            raise UnsupportedMessage("unknown ECDH KDF parameter version")
        kdf_hash, kdf_cipher = kdf.u8(), kdf.u8()
    elif algo in _RAW_SIZES:
        fields = (r.take(_RAW_SIZES[PubAlgo(algo)]),)
    else:
        raise UnsupportedMessage(f"public key algorithm {algo} is not supported")
    return fields, oid, kdf_hash, kdf_cipher


def parse_public_key(r: Reader) -> PublicKey:
    """Parse the public part of a key packet from ``r`` (left positioned after it)."""
    start = r.pos
    version = r.u8()
    if version not in (4, 5, 6):
        raise UnsupportedMessage(f"key packet version {version} is not supported")
    created = r.u32()
    algo = r.u8()
    if version == 4:
        fields, oid, kdf_hash, kdf_cipher = _read_material(r, version, algo)
        end = r.pos
    else:
        material = Reader(r.take(r.u32()), "key material")
        fields, oid, kdf_hash, kdf_cipher = _read_material(material, version, algo)
        material.end()
        end = r.pos
    body = r.window(start, end)
    return PublicKey(version, created, algo, fields, body, oid, kdf_hash, kdf_cipher)


def parse_secret_key(body: bytes, tag: int = Tag.SECRET_KEY) -> SecretKey:
    """Parse a secret key / subkey packet body (material stays protected)."""
    r = Reader(body, "secret key packet")
    public = parse_public_key(r)
    usage = r.u8()
    cipher, s2k, iv, aead = 0, None, b"", 0
    if usage != 0:
        # v5/v6 announce the size of the protection parameters
        cond = Reader(r.take(r.u8()), "key protection") if public.version in (5, 6) else r
        if usage in (253, 254, 255):
            cipher = cond.u8()
            aead = cond.u8() if usage == 253 else 0
            if public.version == 6:
                s2k = S2K.parse(Reader(cond.take(cond.u8()), "S2K specifier"))
            else:
                s2k = S2K.parse(cond)
            if usage == 253:
                nonce_size = AEAD_NONCE_SIZES.get(aead)
                if nonce_size is None:
                    raise UnsupportedMessage(f"AEAD mode {aead} is not supported")
                iv = cond.take(nonce_size)
            else:
                iv = cond.take(cipher_info(cipher).block_size)
            if cond is not r:
                cond.end()
        else:
            raise UnsupportedMessage("legacy (pre-S2K) secret key protection is not supported")
    if public.version == 5:
        r.u32()  # LibrePGP: length of the secret material
    return SecretKey(public, usage, cipher, s2k, iv, r.rest(), aead, tag)


def _int(b: bytes) -> int:
    return int.from_bytes(b, "big")


@functools.lru_cache(maxsize=8)
def _rsa_private(p: int, q: int, d: int, e: int, n: int) -> rsa.RSAPrivateKey:
    """The RSA key, checked in full by OpenSSL (primality of p and q: 40 ms for RSA-2048,
    130 ms for RSA-4096). The same secret numbers, already unlocked once in this process,
    give back the same checked key instead of paying the check on every message. Only the
    numbers themselves (so: an unlocked key) reach the cache; closing the session empties
    it (:func:`forget_unlocked`)."""
    return rsa.RSAPrivateNumbers(
        p,
        q,
        d,
        rsa.rsa_crt_dmp1(d, p),
        rsa.rsa_crt_dmq1(d, q),
        rsa.rsa_crt_iqmp(p, q),
        rsa.RSAPublicNumbers(e, n),
    ).private_key()


def forget_unlocked() -> None:
    """Drop the RSA keys kept by :func:`_rsa_private` (when the profile is closed)."""
    _rsa_private.cache_clear()


def _make_private(public: PublicKey, plain: bytes) -> UnlockedKey:
    try:
        return UnlockedKey(public, _private_from_material(public, Reader(plain, "secret key")))
    except (ValueError, MalformedMessage) as exc:
        raise InvalidKeyMaterial("secret key material does not match its public key") from exc


def _private_from_material(public: PublicKey, r: Reader) -> PrivateKey:
    algo = public.algo
    if algo in (PubAlgo.RSA, PubAlgo.RSA_ENCRYPT, PubAlgo.RSA_SIGN):
        d, p, q = _int(r.mpi()), _int(r.mpi()), _int(r.mpi())
        r.mpi()  # u = p^-1 mod q (we recompute CRT values ourselves)
        n, e = _int(public.fields[0]), _int(public.fields[1])
        if p * q != n:
            raise ValueError("RSA primes do not match the modulus")
        return _rsa_private(p, q, d, e, n)
    if algo in (PubAlgo.ELGAMAL, PubAlgo.ELGAMAL_LEGACY):
        x = _int(r.mpi())
        p, g, y = (_int(f) for f in public.fields)
        if pow(g, x, p) != y:
            raise ValueError("ElGamal secret does not match")
        return (p, g, x)
    if algo == PubAlgo.ECDH:
        scalar = r.mpi()
        curve = CURVES.get(public.curve_oid)
        if curve is None:
            raise UnsupportedMessage("unsupported ECDH curve")
        _, ec_curve, _size = curve
        if ec_curve is None:
            if len(scalar) > 32:
                raise ValueError("Curve25519 secret too long")
            key = x25519.X25519PrivateKey.from_private_bytes(scalar.rjust(32, b"\0")[::-1])
            pub = public.fields[0]
            if pub[:1] != b"\x40" or key.public_key().public_bytes_raw() != pub[1:]:
                raise ValueError("Curve25519 secret does not match")
            return key
        return ec.derive_private_key(_int(scalar), ec_curve)
    if algo == PubAlgo.X25519:
        return x25519.X25519PrivateKey.from_private_bytes(r.take(32))
    if algo in (PubAlgo.EDDSA_LEGACY, PubAlgo.ED25519):
        return _ed25519_private(public, r)
    if algo == PubAlgo.ECDSA:
        curve = CURVES.get(public.curve_oid)
        if curve is None or curve[1] is None:
            raise UnsupportedMessage("unsupported ECDSA curve")
        signing = ec.derive_private_key(_int(r.mpi()), curve[1])
        point = signing.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        if point != public.fields[0]:
            raise ValueError("ECDSA secret does not match")
        return signing
    if algo == PubAlgo.X448:
        return x448.X448PrivateKey.from_private_bytes(r.take(56))
    raise UnsupportedMessage(f"no decryption with public key algorithm {algo}")


def _ed25519_private(public: PublicKey, r: Reader) -> ed25519.Ed25519PrivateKey:
    """EdDSA legacy keeps the 32-octet seed as an MPI (big-endian as stored, so only
    leading zeros were dropped) and the public point as 0x40 || A; Ed25519 keeps both raw."""
    if public.algo == PubAlgo.EDDSA_LEGACY:
        if public.curve_oid != ED25519_LEGACY_OID:
            raise UnsupportedMessage("unsupported EdDSA curve")
        seed, point = r.mpi(), public.fields[0]
        if len(seed) > 32 or point[:1] != b"\x40":
            raise ValueError("malformed Ed25519 key")
        seed, point = seed.rjust(32, b"\0"), point[1:]
    else:
        seed, point = r.take(32), public.fields[0]
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    if key.public_key().public_bytes_raw() != point:
        raise ValueError("Ed25519 secret does not match")
    return key


_KEY_TAGS = {Tag.SECRET_KEY, Tag.SECRET_SUBKEY}
_PUBLIC_TAGS = {Tag.PUBLIC_KEY, Tag.PUBLIC_SUBKEY}


def _packets_of(data: bytes) -> list[Packet]:
    try:
        return parse_packets(dearmor(data))
    except SealmailError as exc:
        raise InvalidKeyMaterial("the OpenPGP key data cannot be parsed") from exc


def load_secret_keys(tsks: Iterable[bytes]) -> list[SecretKey]:
    """Every decryption-capable secret key packet in the given TSKs (binary or armored)."""
    out: list[SecretKey] = []
    for data in tsks:
        for packet in _packets_of(data):
            if packet.tag not in _KEY_TAGS:
                continue
            try:
                key = parse_secret_key(packet.body, packet.tag)
            except UnsupportedMessage:
                continue  # a signing-only algorithm, a stub, or protection we cannot open
            except MalformedMessage as exc:
                raise InvalidKeyMaterial("a secret key packet is damaged") from exc
            if key.public.can_encrypt:
                out.append(key)
    return out


def load_signing_key(tsk: bytes, fingerprint: bytes, passphrase: bytes | None) -> UnlockedKey:
    """The unlocked secret key packet of ``tsk`` whose fingerprint is ``fingerprint``.

    ``UnsupportedMessage`` when the key is absent, a stub, or of an algorithm we cannot
    sign with (the caller then lets pysequoia sign in memory).
    """
    for packet in _packets_of(tsk):
        if packet.tag not in _KEY_TAGS:
            continue
        try:
            key = parse_secret_key(packet.body, packet.tag)
        except MalformedMessage as exc:
            raise InvalidKeyMaterial("a secret key packet is damaged") from exc
        if key.public.fingerprint == fingerprint:
            return key.unlock(passphrase)
    raise UnsupportedMessage("the signing key's secret material is not in the key")


def load_public_keys(certs: Sequence[bytes] | bytes) -> list[PublicKey]:
    """Every key packet (primary and subkeys, public or secret) in certificate data."""
    if isinstance(certs, bytes):
        certs = [certs]
    out: list[PublicKey] = []
    for data in certs:
        for packet in _packets_of(data):
            if packet.tag not in _PUBLIC_TAGS | _KEY_TAGS:
                continue
            try:
                out.append(parse_public_key(Reader(packet.body, "public key packet")))
            except UnsupportedMessage:
                continue
            except MalformedMessage as exc:
                raise InvalidKeyMaterial("a public key packet is damaged") from exc
    return out
