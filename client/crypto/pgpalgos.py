"""OpenPGP algorithm tables, string-to-key (S2K) and the CFB helpers.

Theory of operation: OpenPGP names algorithms by small integers. This module maps
the symmetric ciphers and hashes we can run with ``cryptography``/``hashlib`` to
:class:`CipherInfo` / hash constructors; an identifier we do not know raises
:class:`~client.errors.UnsupportedMessage` (never KeyError). :class:`S2K` parses a
string-to-key specifier (simple, salted, iterated+salted, Argon2) and derives key
material from a passphrase; iterated S2K hashes in 64 KiB blocks so its cost is
bounded by the (one-octet) count, and Argon2 memory is capped. ``cfb_encrypt`` /
``cfb_decrypt`` are plain CFB (what SEIPDv1, SKESK and v4 secret-key protection use;
the legacy resynchronising CFB of tag 9 is never implemented because we refuse it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives.ciphers import (
    BlockCipherAlgorithm,
    Cipher,
    CipherContext,
    algorithms,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESOCB3
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from client.crypto.pgppackets import Reader
from client.errors import MalformedMessage, MessageTooLarge, UnsupportedMessage

__all__ = [
    "AEAD_NAMES",
    "AEAD_NONCE_SIZES",
    "CIPHERS",
    "HASHES",
    "S2K",
    "CipherInfo",
    "aead_cipher",
    "cfb_decrypt",
    "cfb_encrypt",
    "cfb_encryptor",
    "cipher_by_name",
    "cipher_info",
    "hash_new",
    "sum16",
]


@dataclass(frozen=True, slots=True)
class CipherInfo:
    """A symmetric cipher: OpenPGP id, display name, key and block size in octets."""

    algo_id: int
    name: str
    key_size: int
    block_size: int
    factory: Callable[[bytes], BlockCipherAlgorithm]


CIPHERS: dict[int, CipherInfo] = {
    c.algo_id: c
    for c in (
        CipherInfo(1, "IDEA", 16, 8, decrepit.IDEA),
        CipherInfo(2, "TripleDES", 24, 8, decrepit.TripleDES),
        CipherInfo(3, "CAST5", 16, 8, decrepit.CAST5),
        CipherInfo(4, "Blowfish", 16, 8, decrepit.Blowfish),
        CipherInfo(7, "AES-128", 16, 16, algorithms.AES),
        CipherInfo(8, "AES-192", 24, 16, algorithms.AES),
        CipherInfo(9, "AES-256", 32, 16, algorithms.AES),
        CipherInfo(11, "Camellia-128", 16, 16, decrepit.Camellia),
        CipherInfo(12, "Camellia-192", 24, 16, decrepit.Camellia),
        CipherInfo(13, "Camellia-256", 32, 16, decrepit.Camellia),
    )
}
_CIPHER_NAMES = {10: "Twofish"}

HASHES: dict[int, str] = {
    1: "md5",
    2: "sha1",
    3: "ripemd160",
    8: "sha256",
    9: "sha384",
    10: "sha512",
    11: "sha224",
    12: "sha3_256",
    14: "sha3_512",
}

AEAD_NAMES = {1: "EAX", 2: "OCB", 3: "GCM"}
AEAD_NONCE_SIZES = {1: 16, 2: 15, 3: 12}

_ARGON2_MAX_MEMORY_EXP = 21  # 2 GiB, RFC 9580's first recommended parameter set
_S2K_BLOCK = 65536


def cipher_info(algo_id: int) -> CipherInfo:
    info = CIPHERS.get(algo_id)
    if info is None:
        name = _CIPHER_NAMES.get(algo_id, f"cipher {algo_id}")
        raise UnsupportedMessage(f"symmetric algorithm {name} is not supported")
    return info


def _norm(name: str) -> str:
    return name.upper().replace("-", "").replace("_", "")


def cipher_by_name(name: str) -> CipherInfo:
    """Look a cipher up by name ("AES-256", "aes256", "CAMELLIA256", ...)."""
    for info in CIPHERS.values():
        if _norm(info.name) == _norm(name):
            return info
    raise UnsupportedMessage(f"unknown cipher {name!r}")


def hash_new(algo_id: int) -> hashlib._Hash:
    name = HASHES.get(algo_id)
    if name is None:
        raise UnsupportedMessage(f"hash algorithm {algo_id} is not supported")
    try:
        return hashlib.new(name)
    except ValueError as exc:
        raise UnsupportedMessage(f"hash algorithm {name} is not available") from exc


def aead_cipher(aead: int, cipher: int, key: bytes) -> AESOCB3 | AESGCM:
    """The AEAD primitive for an OpenPGP (AEAD algorithm, cipher) pair."""
    if cipher not in (7, 8, 9):
        raise UnsupportedMessage("AEAD with a non-AES cipher is not supported")
    if aead == 2:
        return AESOCB3(key)
    if aead == 3:
        return AESGCM(key)
    name = AEAD_NAMES.get(aead, str(aead))
    raise UnsupportedMessage(f"AEAD mode {name} is not supported")


def sum16(data: bytes) -> bytes:
    """The two-octet "sum of all octets mod 65536" checksum."""
    return (sum(data) & 0xFFFF).to_bytes(2, "big")


def _cipher(info: CipherInfo, key: bytes, iv: bytes) -> Cipher[CFB]:
    if len(key) != info.key_size or len(iv) != info.block_size:
        raise MalformedMessage("wrong key or IV size for the cipher")
    return Cipher(info.factory(key), CFB(iv))


#: Octets per cipher call on large data: cryptography holds the GIL for the whole of one
#: ``update``, and the app's GUI thread waits for it (one 20 MB call stalled it 75 ms).
STEP = 1 << 20


def cfb_decrypt(info: CipherInfo, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    dec = _cipher(info, key, iv if iv is not None else bytes(info.block_size)).decryptor()
    if len(data) <= STEP:
        return dec.update(data) + dec.finalize()
    view = memoryview(data)
    parts = [dec.update(view[i : i + STEP]) for i in range(0, len(view), STEP)]
    parts.append(dec.finalize())
    return b"".join(parts)


def cfb_decryptor(info: CipherInfo, key: bytes) -> CipherContext:
    """An incremental CFB decryptor with a zero IV (SEIPD v1), for data read in steps."""
    return _cipher(info, key, bytes(info.block_size)).decryptor()


def cfb_encryptor(info: CipherInfo, key: bytes, iv: bytes | None = None) -> CipherContext:
    """An incremental CFB encryptor (zero IV unless given), for data written in steps."""
    return _cipher(info, key, iv if iv is not None else bytes(info.block_size)).encryptor()


def cfb_encrypt(info: CipherInfo, key: bytes, data: bytes, iv: bytes | None = None) -> bytes:
    enc = _cipher(info, key, iv if iv is not None else bytes(info.block_size)).encryptor()
    return enc.update(data) + enc.finalize()


@dataclass(frozen=True, slots=True)
class S2K:
    """A string-to-key specifier (RFC 9580 section 3.7)."""

    kind: int  # 0 simple, 1 salted, 3 iterated+salted, 4 Argon2
    hash_algo: int = 8
    salt: bytes = b""
    count_octet: int = 0
    argon2: tuple[int, int, int] = (0, 0, 0)  # passes, parallelism, memory exponent

    @classmethod
    def parse(cls, r: Reader) -> S2K:
        kind = r.u8()
        if kind == 0:
            return cls(0, r.u8())
        if kind == 1:
            return cls(1, r.u8(), r.take(8))
        if kind == 3:
            return cls(3, r.u8(), r.take(8), r.u8())
        if kind == 4:
            salt = r.take(16)
            t, p, m = r.u8(), r.u8(), r.u8()
            return cls(4, 0, salt, 0, (t, p, m))
        if kind == 101:
            raise UnsupportedMessage("GnuPG S2K extension (stub or smartcard key)")
        raise UnsupportedMessage(f"S2K specifier {kind} is not supported")

    def serialize(self) -> bytes:
        if self.kind == 0:
            return bytes([0, self.hash_algo])
        if self.kind == 1:
            return bytes([1, self.hash_algo]) + self.salt
        if self.kind == 3:
            return bytes([3, self.hash_algo]) + self.salt + bytes([self.count_octet])
        return bytes([4]) + self.salt + bytes(self.argon2)

    @property
    def count(self) -> int:
        c = self.count_octet
        return (16 + (c & 15)) << ((c >> 4) + 6)

    def derive(self, passphrase: bytes, key_size: int) -> bytes:
        if self.kind == 4:
            return self._argon2(passphrase, key_size)
        out = b""
        preload = 0
        while len(out) < key_size:
            h = hash_new(self.hash_algo)
            h.update(b"\x00" * preload)
            data = self.salt + passphrase
            if self.kind == 3:
                total = max(self.count, len(data))
                block = data * max(1, _S2K_BLOCK // max(1, len(data)))
                while total >= len(block):
                    h.update(block)
                    total -= len(block)
                h.update(block[:total])
            else:
                h.update(data)
            out += h.digest()
            preload += 1
        return out[:key_size]

    def _argon2(self, passphrase: bytes, key_size: int) -> bytes:
        t, p, m = self.argon2
        if not (1 <= t and 1 <= p and 8 * p <= 1 << m and m <= 31):
            raise MalformedMessage("invalid Argon2 parameters")
        if m > _ARGON2_MAX_MEMORY_EXP:
            raise MessageTooLarge("Argon2 memory parameter exceeds the safety limit")
        kdf = Argon2id(salt=self.salt, length=key_size, iterations=t, lanes=p, memory_cost=1 << m)
        return kdf.derive(passphrase)
