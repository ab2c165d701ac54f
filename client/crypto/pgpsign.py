"""Streaming OpenPGP document signatures, shaped by a signature pysequoia made.

Theory of operation
-------------------
``pysequoia.sign`` takes the whole document as bytes, so a 50 MB message would be held
in memory to be signed. A v4 signature over binary data hashes the document followed by
a trailer built only from the signature's own fields (RFC 4880 5.2.4): version, type,
public-key and hash algorithms, and the hashed subpacket area. So::

    template = pysequoia.sign(signer, b"", mode=DETACHED, armor=False)
        -> Sequoia chooses the signing key, the hash and the hashed subpackets
           (creation time, issuer fingerprint, its salt notation) as it always does
    StreamSigner(template, unlocked key named by the issuer fingerprint)
        .one_pass_packet()           -> the OPS packet that goes before the literal
        .update(piece) ...           -> hash the document as it streams past
        .signature_packet()          -> the same fields, this document's hash, signed

The result is what ``pysequoia.sign(..., INLINE)`` writes around a literal packet, with
the document never held whole. A fresh template is made per message, so its salt is
fresh too. The signature is verified with the public key before it is returned (a
faulty RSA-CRT signature leaks the key). Anything unexpected in the template (a v6
signature, an algorithm we cannot sign with) raises ``UnsupportedMessage``; the caller
then signs in memory with pysequoia.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from client.crypto.pgpalgos import hash_new
from client.crypto.pgpkeys import PubAlgo, UnlockedKey
from client.crypto.pgppackets import (
    Reader,
    Tag,
    encode_mpi,
    parse_packets,
    serialize_packet,
    signature_subpackets,
)
from client.errors import SealmailError, UnsupportedMessage

__all__ = ["SignatureTemplate", "StreamSigner", "parse_template"]

_ISSUER_FPR, _ISSUER_KEYID = 33, 16
_CRYPTO_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    8: hashes.SHA256,
    9: hashes.SHA384,
    10: hashes.SHA512,
    11: hashes.SHA224,
    12: hashes.SHA3_256,
    14: hashes.SHA3_512,
}
_SIGNING_ALGOS = frozenset(
    {PubAlgo.RSA, PubAlgo.RSA_SIGN, PubAlgo.EDDSA_LEGACY, PubAlgo.ED25519, PubAlgo.ECDSA}
)


@dataclass(frozen=True, slots=True)
class SignatureTemplate:
    """The document-independent fields of a v4 binary signature."""

    pk_algo: int
    hash_algo: int
    hashed: bytes  # the hashed subpacket area (without its length)
    unhashed: bytes  # the unhashed subpacket area (without its length)
    issuer_fingerprint: bytes

    @property
    def key_id(self) -> bytes:
        return self.issuer_fingerprint[-8:]


def parse_template(signature: bytes) -> SignatureTemplate:
    """The template fields of a binary detached signature (one v4 type-0 packet)."""
    packets = parse_packets(signature)
    if len(packets) != 1 or packets[0].tag != Tag.SIGNATURE:
        raise UnsupportedMessage("the template is not one signature packet")
    r = Reader(packets[0].body, "signature packet")
    version, sig_type, pk_algo, hash_algo = r.u8(), r.u8(), r.u8(), r.u8()
    if version != 4 or sig_type != 0x00:
        raise UnsupportedMessage(f"streaming signing writes v4 binary signatures, not v{version}")
    if pk_algo not in _SIGNING_ALGOS or hash_algo not in _CRYPTO_HASHES:
        raise UnsupportedMessage(f"streaming signing with algorithms {pk_algo}/{hash_algo}")
    hashed = r.take(r.u16())
    unhashed = r.take(r.u16())
    fpr = next(
        (
            body[1:]
            for tag, body in signature_subpackets(hashed)
            if tag == _ISSUER_FPR and body[:1] == b"\x04"
        ),
        None,
    )
    if fpr is None or len(fpr) != 20:
        raise UnsupportedMessage("the template names no v4 issuer fingerprint")
    return SignatureTemplate(pk_algo, hash_algo, hashed, unhashed, fpr)


class StreamSigner:
    """Hash a document piece by piece; sign it with the template's fields."""

    def __init__(self, template: SignatureTemplate, key: UnlockedKey) -> None:
        if key.public.version != 4 or key.public.fingerprint != template.issuer_fingerprint:
            raise UnsupportedMessage("the unlocked key is not the template's signing key")
        if key.public.algo != template.pk_algo:
            raise UnsupportedMessage("the template's algorithm does not match the key")
        self.template = template
        self._key = key
        self._hash = hash_new(template.hash_algo)

    def one_pass_packet(self) -> bytes:
        t = self.template
        body = bytes([3, 0x00, t.hash_algo, t.pk_algo]) + t.key_id + b"\x01"
        return serialize_packet(Tag.ONE_PASS_SIGNATURE, body)

    def update(self, piece: bytes | memoryview) -> None:
        self._hash.update(piece)

    def signature_packet(self) -> bytes:
        """The signature packet over everything passed to :meth:`update`."""
        t = self.template
        hashed_part = bytes([4, 0x00, t.pk_algo, t.hash_algo]) + _u16(len(t.hashed)) + t.hashed
        h = self._hash.copy()
        h.update(hashed_part + b"\x04\xff" + len(hashed_part).to_bytes(4, "big"))
        digest = h.digest()
        mpis = _sign(self._key, digest, _CRYPTO_HASHES[t.hash_algo]())
        body = hashed_part + _u16(len(t.unhashed)) + t.unhashed + digest[:2] + mpis
        return serialize_packet(Tag.SIGNATURE, body)


def _u16(n: int) -> bytes:
    if n > 0xFFFF:
        raise UnsupportedMessage("signature subpacket area too large")
    return n.to_bytes(2, "big")


def _sign(key: UnlockedKey, digest: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    """The algorithm-specific signature MPIs over ``digest``, verified before use."""
    private = key.private
    try:
        if isinstance(private, rsa.RSAPrivateKey):
            sig = private.sign(digest, padding.PKCS1v15(), Prehashed(algorithm))
            private.public_key().verify(sig, digest, padding.PKCS1v15(), Prehashed(algorithm))
            return encode_mpi(sig)
        if isinstance(private, ed25519.Ed25519PrivateKey):
            sig = private.sign(digest)  # OpenPGP EdDSA signs the hash value
            private.public_key().verify(sig, digest)
            if key.public.algo == PubAlgo.ED25519:
                return sig
            return encode_mpi(sig[:32]) + encode_mpi(sig[32:])
        if isinstance(private, ec.EllipticCurvePrivateKey):
            der = private.sign(digest, ec.ECDSA(Prehashed(algorithm)))
            private.public_key().verify(der, digest, ec.ECDSA(Prehashed(algorithm)))
            r, s = decode_dss_signature(der)
            return encode_mpi(r) + encode_mpi(s)
    except InvalidSignature as exc:  # pragma: no cover - a hardware or library fault
        raise SealmailError("the signature failed its own check; nothing was written") from exc
    raise UnsupportedMessage("streaming signing does not support this key type")
