"""OpenPGP v4 key generation that GnuPG 2.2 can use: packets built here, keys by cryptography.

Theory of operation
-------------------
pysequoia's ``Tsk.generate`` marks every key it makes with the SEIPDv2 feature, and
Sequoia then encrypts messages for such keys with PKESK v6 + SEIPDv2, which gpg 2.2
and 2.4 cannot read. pysequoia has no switch for that, and rewriting the feature
subpacket would break the signatures. So Sealmail makes its own v4 keys, the way
``gpg --quick-gen-key`` does:

* a primary key for certification and signing (Ed25519 "EdDSA legacy", or RSA-3072),
* one encryption subkey (Curve25519 ECDH, or RSA-3072),
* a positive certification of the user id and a subkey binding signature, both SHA-256,
  advertising features = MDC only (SEIPDv1), AES-256/192/128, SHA-512/384/256 and *no
  compression* (so gpg does not compress what it encrypts to us),
* creation time = ``now`` and an optional validity period.

The packets are serialised here (RFC 4880/9580 v4 formats, new-style packet headers,
unprotected secret key material). The result is parsed by pysequoia (which checks
every self-signature) before it is handed out; the caller then protects it with the
profile's master key (see :mod:`keystore.secrets`).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

__all__ = ["PgpAlgo", "build_v4_key"]

PgpAlgo = Literal["cv25519", "rsa3072"]

_ED25519_OID = bytes.fromhex("2b06010401da470f01")
_CV25519_OID = bytes.fromhex("2b060104019755010501")
_ALG_RSA, _ALG_ECDH, _ALG_EDDSA = 1, 18, 22
_HASH_SHA256 = 8
_TAG_SECRET_KEY, _TAG_SIG, _TAG_SECRET_SUBKEY, _TAG_UID = 5, 2, 7, 13


def _mpi(value: bytes | int) -> bytes:
    if isinstance(value, int):
        value = value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
    value = value.lstrip(b"\x00")
    bits = len(value) * 8 - (8 - value[0].bit_length()) if value else 0
    return struct.pack(">H", bits) + value


def _packet(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 192:
        length = bytes([n])
    elif n < 8384:
        n -= 192
        length = bytes([(n >> 8) + 192, n & 0xFF])
    else:
        length = b"\xff" + struct.pack(">I", n)
    return bytes([0xC0 | tag]) + length + body


def _subpacket(kind: int, data: bytes) -> bytes:
    n = len(data) + 1
    if n >= 192:  # never happens for the subpackets written here
        raise ValueError("subpacket too long")
    return bytes([n, kind]) + data


@dataclass(frozen=True)
class _Key:
    public_body: bytes
    secret_material: bytes  # MPIs of the secret part
    algo: int

    @property
    def fingerprint(self) -> bytes:
        return hashlib.sha1(self._hash_prefix, usedforsecurity=False).digest()

    @property
    def _hash_prefix(self) -> bytes:
        return b"\x99" + struct.pack(">H", len(self.public_body)) + self.public_body

    def secret_body(self) -> bytes:
        checksum = sum(self.secret_material) & 0xFFFF
        return self.public_body + b"\x00" + self.secret_material + struct.pack(">H", checksum)


def _public_head(created: int, algo: int) -> bytes:
    return b"\x04" + struct.pack(">I", created) + bytes([algo])


def _ed25519_key(created: int) -> tuple[_Key, ed25519.Ed25519PrivateKey]:
    sk = ed25519.Ed25519PrivateKey.generate()
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    seed = sk.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    body = (
        _public_head(created, _ALG_EDDSA)
        + bytes([len(_ED25519_OID)])
        + _ED25519_OID
        + _mpi(b"\x40" + pub)
    )
    return _Key(body, _mpi(seed), _ALG_EDDSA), sk


def _cv25519_key(created: int) -> _Key:
    sk = x25519.X25519PrivateKey.generate()
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    native = sk.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    kdf_params = bytes([3, 1, _HASH_SHA256, 9])  # SHA-256, AES-256 key wrap
    body = (
        _public_head(created, _ALG_ECDH)
        + bytes([len(_CV25519_OID)])
        + _CV25519_OID
        + _mpi(b"\x40" + pub)
        + kdf_params
    )
    # OpenPGP stores the Curve25519 secret scalar big-endian: reverse the native bytes.
    return _Key(body, _mpi(native[::-1]), _ALG_ECDH)


def _rsa_key(created: int, bits: int) -> tuple[_Key, rsa.RSAPrivateKey]:
    sk = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    nums = sk.private_numbers()
    p, q = sorted((nums.p, nums.q))  # RFC 4880: p < q, u = p^-1 mod q
    u = pow(p, -1, q)
    body = (
        _public_head(created, _ALG_RSA) + _mpi(nums.public_numbers.n) + _mpi(nums.public_numbers.e)
    )
    secret = _mpi(nums.d) + _mpi(p) + _mpi(q) + _mpi(u)
    return _Key(body, secret, _ALG_RSA), sk


def _sign(
    signer: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey,
    issuer: _Key,
    sig_type: int,
    hashed_subpackets: bytes,
    signed_prefix: bytes,
) -> bytes:
    hashed_part = (
        bytes([4, sig_type, issuer.algo, _HASH_SHA256])
        + struct.pack(">H", len(hashed_subpackets))
        + hashed_subpackets
    )
    trailer = b"\x04\xff" + struct.pack(">I", len(hashed_part))
    digest = hashlib.sha256(signed_prefix + hashed_part + trailer).digest()
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        raw = signer.sign(digest)
        sig_mpis = _mpi(raw[:32]) + _mpi(raw[32:])
    else:
        sig_mpis = _mpi(signer.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256())))
    unhashed = _subpacket(16, issuer.fingerprint[-8:])  # issuer key id
    body = hashed_part + struct.pack(">H", len(unhashed)) + unhashed + digest[:2] + sig_mpis
    return _packet(_TAG_SIG, body)


def build_v4_key(
    user_id: str,
    *,
    now: datetime,
    algo: PgpAlgo = "cv25519",
    validity_seconds: int | None = None,
) -> bytes:
    """Binary transferable secret key (unprotected) for one user id."""
    created = int(now.timestamp())
    primary: _Key
    signer: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if algo == "cv25519":
        primary, signer = _ed25519_key(created)
        sub = _cv25519_key(created)
    elif algo == "rsa3072":
        primary, signer = _rsa_key(created, 3072)
        sub, _unused = _rsa_key(created, 3072)
    else:
        raise ValueError(f"unknown OpenPGP key algorithm {algo!r}")

    issuer_fpr = _subpacket(33, b"\x04" + primary.fingerprint)
    common = _subpacket(2, struct.pack(">I", created))
    if validity_seconds is not None:
        common += _subpacket(9, struct.pack(">I", validity_seconds))

    uid = user_id.encode("utf-8")
    uid_hashed = (
        common
        + _subpacket(27, b"\x03")  # certify + sign
        + _subpacket(11, bytes([9, 8, 7]))  # AES-256, AES-192, AES-128
        + _subpacket(21, bytes([10, 9, 8]))  # SHA-512, SHA-384, SHA-256
        + _subpacket(22, bytes([0]))  # uncompressed only
        + _subpacket(30, b"\x01")  # features: MDC (SEIPDv1) only
        + _subpacket(23, b"\x80")  # key server: no-modify
        + _subpacket(25, b"\x01")  # primary user id
        + issuer_fpr
    )
    primary_prefix = b"\x99" + struct.pack(">H", len(primary.public_body)) + primary.public_body
    uid_sig = _sign(
        signer,
        primary,
        0x13,
        uid_hashed,
        primary_prefix + b"\xb4" + struct.pack(">I", len(uid)) + uid,
    )
    sub_prefix = b"\x99" + struct.pack(">H", len(sub.public_body)) + sub.public_body
    sub_hashed = common + _subpacket(27, b"\x0c") + issuer_fpr  # encrypt comms + storage
    sub_sig = _sign(signer, primary, 0x18, sub_hashed, primary_prefix + sub_prefix)
    return (
        _packet(_TAG_SECRET_KEY, primary.secret_body())
        + _packet(_TAG_UID, uid)
        + uid_sig
        + _packet(_TAG_SECRET_SUBKEY, sub.secret_body())
        + sub_sig
    )
