"""CMS EnvelopedData (RFC 5652 6) and AuthEnvelopedData (RFC 5083/5084): encrypt, decrypt.

Theory of operation
-------------------
:func:`encrypt` draws a content-encryption key (CEK) and IV/nonce from ``rng``, encrypts
the content with AES-CBC (EnvelopedData) or AES-GCM (AuthEnvelopedData, 16-byte tag in
``mac``), and wraps the CEK once per recipient (``cms_recipients``: RSA key transport, ECDH
key agreement) or for a password (:func:`encrypt_password`, RFC 3211).

:func:`decrypt` works in two phases. *Parse*: the whole structure is copied into plain
values; a broken structure raises ``MalformedMessage``, a non-envelope ``NotEncrypted``, a
content cipher we do not implement ``UnsupportedMessage`` -- none of these depend on any
secret. *Decrypt*: every RecipientInfo that fits the key (or password) given yields
candidate CEKs; each candidate is tried on the content and the first that decrypts wins.
Every failure from here on is one opaque ``DecryptionFailed`` -- no padding, key-unwrap or
"wrong recipient" distinctions. One exception: if a CEK came from an *authenticated*
unwrap (OAEP, AES key wrap, PWRI check bytes) and the GCM/Poly1305 tag then fails, the
ciphertext was changed: ``TamperedMessage``. A CEK from PKCS#1 v1.5 is never trusted that
way, so a v1.5 padding error and a tag failure look the same. No partial plaintext is ever
returned; AES-CBC output is unauthenticated, which :class:`Decrypted` says (``aead``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from asn1crypto import cms, core
from cryptography import x509
from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from client.crypto.bercheck import check_headers
from client.crypto.cms_common import (
    CIPHERS,
    KDF_SCHEMES,
    OID,
    AlgId,
    CipherSpec,
    GcmParams,
    oid_name,
    retag,
    translate_errors,
)
from client.crypto.cms_recipients import (
    Kari,
    Ktri,
    ParsedRecipient,
    Pwri,
    kari_for,
    ktri_for,
    parse_recipient_infos,
    pwri_for,
    unwrap_kari,
    unwrap_ktri,
    unwrap_pwri,
)
from client.errors import (
    DecryptionFailed,
    MalformedMessage,
    MessageTooLarge,
    NotEncrypted,
    TamperedMessage,
    UnsupportedMessage,
    UsageError,
)

__all__ = [
    "DEFAULT_PBKDF2_ITERATIONS",
    "Decrypted",
    "EncryptCipher",
    "decrypt",
    "describe_recipients",
    "encrypt",
    "encrypt_password",
    "encrypt_stream",
]

log = logging.getLogger(__name__)

Rng = Callable[[int], bytes]
EncryptCipher = Literal["aes256-cbc", "aes128-cbc", "aes256-gcm", "aes128-gcm"]
DecryptionKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey

DEFAULT_PBKDF2_ITERATIONS = 600_000  # OWASP 2023 for PBKDF2-HMAC-SHA256
MAX_RECIPIENT_INFOS = 1024  # more is refused (MessageTooLarge)
MAX_PASSWORD_TRIES = 4  # PasswordRecipientInfos tried per password
MAX_CONTENT_TRIES = 16  # candidate keys tried on the content (pass cert= to pick one)
_GCM_TAG = 16
_OPAQUE = "the message could not be decrypted"


@dataclass(frozen=True)
class Decrypted:
    """A decrypted envelope.

    ``cipher`` is the content cipher (``"aes256-gcm"``...), ``aead`` whether the content
    was integrity-protected (AuthEnvelopedData), ``content_type`` the inner type
    (``"data"``, ``"signed-data"``...), ``recipients`` one description per RecipientInfo,
    ``opened_by`` the description of the one that yielded the key.
    """

    content: bytes
    cipher: str
    content_type: str
    recipients: tuple[str, ...]
    aead: bool
    opened_by: str


# --- encrypt -----------------------------------------------------------------------------------


def _take(rng: Rng, n: int) -> bytes:
    out = rng(n)
    if not isinstance(out, bytes) or len(out) != n:
        raise UsageError(f"rng({n}) must return exactly {n} bytes")
    return out


def _content_cipher(spec: CipherSpec, cek: bytes, rng: Rng) -> tuple[dict[str, object], Any]:
    """(content-encryption AlgorithmIdentifier, encryptor) with a fresh IV or nonce."""
    if spec.mode == "cbc":
        iv = _take(rng, 16)
        enc = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
        return {"algorithm": spec.oid, "parameters": core.OctetString(iv)}, enc
    nonce = _take(rng, 12)
    enc = Cipher(algorithms.AES(cek), modes.GCM(nonce)).encryptor()
    return {
        "algorithm": spec.oid,
        "parameters": GcmParams({"aes_nonce": nonce, "aes_icvlen": _GCM_TAG}),
    }, enc


def _ciphertext_length(spec: CipherSpec, length: int) -> int:
    return (length // 16 + 1) * 16 if spec.mode == "cbc" else length


def _encrypt_pieces(
    spec: CipherSpec, enc: Any, pieces: Iterable[bytes | memoryview], length: int
) -> Iterator[bytes]:
    """The ciphertext of ``pieces`` (``length`` octets in all), then for GCM the DER
    OCTET STRING of the tag. CBC pads only the last block (PKCS #7)."""
    seen = 0
    for piece in pieces:
        seen += len(piece)
        if seen > length:
            raise UsageError("the content is longer than announced")
        out = enc.update(piece)
        if out:
            yield out
    if seen != length:
        raise UsageError("the content is shorter than announced")
    if spec.mode == "cbc":
        pad = 16 - length % 16
        yield enc.update(bytes([pad]) * pad) + enc.finalize()
        return
    last = enc.finalize()
    yield last + core.OctetString(enc.tag).dump()


def _der_header(tag: int, length: int) -> bytes:
    """A DER tag and length (single-byte tag) for contents written separately."""
    if length < 0x80:
        return bytes([tag, length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets


def _frame(
    spec: CipherSpec, alg: dict[str, object], ct_len: int, infos: list[cms.RecipientInfo]
) -> bytes:
    """The DER ContentInfo up to the ciphertext: asn1crypto encodes everything but the
    ciphertext (the [0] IMPLICIT OCTET STRING of EncryptedContentInfo, ``ct_len`` octets)
    and, for AuthEnvelopedData, the MAC after it, which follow as they are made."""
    eci_head: bytes = cms.EncryptedContentInfo(
        {
            "content_type": "data",
            # asn1crypto has no spec for GCM parameters: encode ours and load it as theirs
            "content_encryption_algorithm": cms.EncryptionAlgorithm.load(AlgId(alg).dump()),
        }
    ).contents
    ct_head = _der_header(0x80, ct_len)
    eci_prefix = _der_header(0x30, len(eci_head) + len(ct_head) + ct_len) + eci_head + ct_head
    if spec.mode == "gcm":
        before = cms.CMSVersion("v0").dump() + cms.RecipientInfos(infos).dump()
        after_len = 2 + _GCM_TAG
        ctype = "authenticated_enveloped_data"
    else:
        kinds = {ri.name for ri in infos}
        if kinds & {"pwri", "ori"}:
            version = "v3"
        elif kinds == {"ktri"}:
            version = "v0"
        else:
            version = "v2"
        before = cms.CMSVersion(version).dump() + cms.RecipientInfos(infos).dump()
        after_len = 0
        ctype = "enveloped_data"
    rest = ct_len + after_len
    before = bytes(before)
    env_prefix = _der_header(0x30, len(before) + len(eci_prefix) + rest) + before + eci_prefix
    explicit_prefix = _der_header(0xA0, len(env_prefix) + rest) + env_prefix
    oid: bytes = cms.ContentType(ctype).dump()
    return _der_header(0x30, len(oid) + len(explicit_prefix) + rest) + oid + explicit_prefix


def _envelope(
    spec: CipherSpec,
    cek: bytes,
    content: bytes,
    infos: list[cms.RecipientInfo],
    rng: Rng,
) -> bytes:
    """The DER ContentInfo, the ciphertext spliced in after :func:`_frame` and copied
    once: the same octets as dumping the whole structure, without asn1crypto's copies."""
    return b"".join(_envelope_pieces(spec, cek, [content], len(content), infos, rng))


def _envelope_pieces(
    spec: CipherSpec,
    cek: bytes,
    pieces: Iterable[bytes | memoryview],
    length: int,
    infos: list[cms.RecipientInfo],
    rng: Rng,
) -> Iterator[bytes]:
    alg, enc = _content_cipher(spec, cek, rng)
    yield _frame(spec, alg, _ciphertext_length(spec, length), infos)
    yield from _encrypt_pieces(spec, enc, pieces, length)


def _spec_for(cipher: str) -> CipherSpec:
    if cipher not in ("aes256-cbc", "aes128-cbc", "aes256-gcm", "aes128-gcm"):
        raise UsageError(f"unsupported cipher {cipher!r}")
    return CIPHERS[cipher]


def encrypt(
    content: bytes,
    recipients: Sequence[x509.Certificate],
    *,
    cipher: EncryptCipher = "aes256-cbc",
    rsa_padding: Literal["oaep", "pkcs1v15", "auto"] = "auto",
    rng: Rng,
) -> bytes:
    """Encrypt ``content`` to certificates; return a DER ContentInfo.

    CBC ciphers make EnvelopedData, GCM ciphers AuthEnvelopedData. RSA recipients get
    KeyTransRecipientInfo (``"auto"`` = RSAES-OAEP with SHA-256; ``"pkcs1v15"`` for old
    readers), EC P-256/P-384/P-521 recipients KeyAgreeRecipientInfo (ephemeral-static ECDH).
    Recipients are named by IssuerAndSerialNumber. ``rng(n)`` supplies the CEK, IV/nonce
    and the ephemeral ECDH scalars (RSA padding randomness comes from the OS).
    """
    return b"".join(
        encrypt_stream(
            [content], len(content), recipients, cipher=cipher, rsa_padding=rsa_padding, rng=rng
        )
    )


def encrypt_stream(
    pieces: Iterable[bytes | memoryview],
    length: int,
    recipients: Sequence[x509.Certificate],
    *,
    cipher: EncryptCipher = "aes256-cbc",
    rsa_padding: Literal["oaep", "pkcs1v15", "auto"] = "auto",
    rng: Rng,
) -> Iterator[bytes]:
    """:func:`encrypt` of content that arrives in ``pieces`` (``length`` octets in all,
    known in advance, so the DER stays definite-length): the ContentInfo in pieces. Every
    check and the RecipientInfos happen before this returns; content that turns out
    longer or shorter than ``length`` raises UsageError before the last piece."""
    spec = _spec_for(cipher)
    if rsa_padding not in ("oaep", "pkcs1v15", "auto"):
        raise UsageError(f"unsupported rsa_padding {rsa_padding!r}")
    if not recipients:
        raise UsageError("encrypt() needs at least one recipient")
    cek = _take(rng, spec.key_size)
    infos: list[cms.RecipientInfo] = []
    for cert in recipients:
        try:
            pub = cert.public_key()
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise UsageError("a recipient certificate has an unusable public key") from exc
        if isinstance(pub, rsa.RSAPublicKey):
            infos.append(ktri_for(cert, cek, oaep=rsa_padding != "pkcs1v15"))
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            infos.append(kari_for(cert, cek, rng=rng))
        else:
            raise UsageError(f"cannot encrypt to a {type(pub).__name__} certificate")
    return _envelope_pieces(spec, cek, pieces, length, infos, rng)


def encrypt_password(
    content: bytes,
    password: bytes,
    *,
    cipher: EncryptCipher = "aes256-cbc",
    iterations: int = DEFAULT_PBKDF2_ITERATIONS,
    rng: Rng,
) -> bytes:
    """Encrypt ``content`` under a password (PasswordRecipientInfo, PBKDF2-HMAC-SHA256)."""
    spec = _spec_for(cipher)
    if not password:
        raise UsageError("the password must not be empty")
    if not 1 <= iterations <= 10_000_000:
        raise UsageError("iterations must be between 1 and 10,000,000")
    cek = _take(rng, spec.key_size)
    info = pwri_for(password, cek, iterations=iterations, rng=rng)
    return _envelope(spec, cek, content, [info], rng)


# --- decrypt: parse ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Parsed:
    auth: bool
    recipients: tuple[ParsedRecipient, ...]
    content_type: str
    cipher: CipherSpec
    iv: bytes
    tag_len: int
    ciphertext: bytes | memoryview
    mac: bytes | None
    aad: bytes | None


def _der_tlv_at(der: bytes, pos: int, end: int) -> tuple[int, int, int] | None:
    """(tag, content start, content end) of the definite-length TLV at ``pos``, or None."""
    if pos + 2 > end or der[pos] & 0x1F == 0x1F:
        return None
    first = der[pos + 1]
    if first < 0x80:
        start, length = pos + 2, first
    elif first == 0x80 or first > 0x84:
        return None  # indefinite (BER) or absurd: leave it to asn1crypto
    else:
        start = pos + 2 + (first & 0x7F)
        length = int.from_bytes(der[pos + 2 : start], "big")
    if start + length > end:
        return None
    return der[pos], start, start + length


def _children(der: bytes, start: int, end: int) -> list[tuple[int, int, int, int]] | None:
    """(tag, header start, content start, content end) of each child, or None."""
    out: list[tuple[int, int, int, int]] = []
    pos = start
    while pos < end and len(out) < 16:
        tlv = _der_tlv_at(der, pos, end)
        if tlv is None:
            return None
        out.append((tlv[0], pos, tlv[1], tlv[2]))
        pos = tlv[2]
    return out if pos == end else None


def _split_ciphertext(der: bytes) -> tuple[bytes, int, int] | None:
    """A copy of ``der`` with an empty encryptedContent, and where the real one lies.

    asn1crypto copies every nested value it parses (a 50 MB ciphertext three or four
    times). For definite-length encodings (ours, ``openssl cms``) the path ContentInfo /
    [0] / (Auth)EnvelopedData / EncryptedContentInfo / [0] is walked here instead, the small
    remainder is parsed by asn1crypto as usual, and the ciphertext is sliced once. Anything
    unexpected returns None: the whole input then goes to asn1crypto unchanged.
    """
    top = _der_tlv_at(der, 0, len(der))
    if top is None or top[0] != 0x30 or top[2] != len(der):
        return None
    ci = _children(der, top[1], top[2])
    if ci is None or len(ci) != 2 or ci[1][0] != 0xA0:
        return None
    wrapped = _children(der, ci[1][2], ci[1][3])
    if wrapped is None or len(wrapped) != 1 or wrapped[0][0] != 0x30:
        return None
    env = wrapped[0]
    members = _children(der, env[2], env[3])
    if members is None:
        return None
    tags = [m[0] for m in members]
    if 0x31 not in tags or 0x30 not in tags[tags.index(0x31) :]:
        return None
    eci = members[tags.index(0x30, tags.index(0x31))]
    parts = _children(der, eci[2], eci[3])
    if parts is None or len(parts) != 3 or parts[2][0] != 0x80:
        return None
    target = parts[2]

    def rewrap(tag: int, start: int, end: int, cut: int, cut_end: int, new: bytes) -> bytes:
        contents = der[start:cut] + new + der[cut_end:end]
        return _der_header(tag, len(contents)) + contents

    eci_new = rewrap(0x30, eci[2], eci[3], target[1], target[3], b"\x80\x00")
    env_new = rewrap(0x30, env[2], env[3], eci[1], eci[3], eci_new)
    a0_new = rewrap(0xA0, ci[1][2], ci[1][3], env[1], env[3], env_new)
    stub = rewrap(0x30, top[1], top[2], ci[1][1], ci[1][3], a0_new)
    return stub, target[2], target[3]


def _parse(der: bytes) -> _Parsed:
    with translate_errors("enveloped message"):
        check_headers(der, "EnvelopedData")  # asn1crypto is quadratic on long tags (DoS)
        split = _split_ciphertext(der)
        ci = cms.ContentInfo.load(split[0] if split else der, strict=True)
        ctype = ci["content_type"].dotted
        if ctype not in (OID.ENVELOPED_DATA, OID.AUTH_ENVELOPED_DATA):
            raise NotEncrypted(f"not an encrypted message ({oid_name(ctype)})")
        auth = ctype == OID.AUTH_ENVELOPED_DATA
        env = ci["content"]
        if not isinstance(env, cms.EnvelopedData | cms.AuthEnvelopedData):
            raise MalformedMessage("enveloped message: unexpected content")
        if len(env["recipient_infos"]) > MAX_RECIPIENT_INFOS:
            raise MessageTooLarge("the envelope has too many recipients")
        recipients = parse_recipient_infos(env["recipient_infos"])
        eci = env["auth_encrypted_content_info" if auth else "encrypted_content_info"]
        alg = AlgId.load(eci["content_encryption_algorithm"].dump())
        cipher_oid = alg["algorithm"].dotted
        spec = CIPHERS.get(cipher_oid)
        if spec is None or spec.mode in ("unsupported", "wrap"):
            raise UnsupportedMessage(f"content cipher {oid_name(cipher_oid)} is not supported")
        if auth != (spec.mode in ("gcm", "chacha20-poly1305")):
            raise UnsupportedMessage(
                f"content cipher {spec.name} in {'Auth' if auth else ''}EnvelopedData"
            )
        params = alg["parameters"]
        if isinstance(params, core.Void):
            raise MalformedMessage("content cipher parameters missing")
        tag_len = 0
        if spec.mode == "cbc":
            iv = bytes(params.parse(core.OctetString).native)
            if len(iv) != spec.block_size:
                raise MalformedMessage("content cipher IV has the wrong length")
        elif spec.mode == "gcm":
            gp = params.parse(GcmParams)
            iv = bytes(gp["aes_nonce"].native)
            tag_len = int(gp["aes_icvlen"].native)
            if not 12 <= tag_len <= 16 or not 12 <= len(iv) <= 64:
                raise UnsupportedMessage("AES-GCM with short tags or odd nonces")
        else:
            iv = bytes(params.parse(core.OctetString).native)
            tag_len = 16
            if len(iv) != 12:
                raise MalformedMessage("ChaCha20-Poly1305 nonce has the wrong length")
        enc = eci["encrypted_content"]
        if isinstance(enc, core.Void):
            raise UnsupportedMessage("detached encrypted content is not supported")
        # a view of the message, not a copy (50 MB of ciphertext was sliced out whole)
        ciphertext = memoryview(der)[split[1] : split[2]] if split else bytes(enc)
        mac: bytes | None = None
        aad: bytes | None = None
        if auth:
            mac = bytes(env["mac"].native)
            if len(mac) != tag_len:
                raise MalformedMessage("authentication tag has the wrong length")
            attrs = env["auth_attrs"]
            if not isinstance(attrs, core.Void):
                aad = retag(attrs, 0x31)
        return _Parsed(
            auth=auth,
            recipients=recipients,
            content_type=oid_name(eci["content_type"].dotted),
            cipher=spec,
            iv=iv,
            tag_len=tag_len,
            ciphertext=ciphertext,
            mac=mac,
            aad=aad,
        )


# --- decrypt: compute --------------------------------------------------------------------------


class _TagFailed(Exception):
    pass


def _decrypt_content(p: _Parsed, cek: bytes) -> bytes | None:
    """Plaintext, None on any failure, or _TagFailed for an AEAD tag mismatch."""
    spec = p.cipher
    if len(cek) != spec.key_size:
        return None
    try:
        if spec.mode == "cbc":
            if not p.ciphertext or len(p.ciphertext) % spec.block_size:
                return None
            algo = TripleDES(cek) if spec.name == "des-ede3-cbc" else algorithms.AES(cek)
            dec = Cipher(algo, modes.CBC(p.iv)).decryptor()
            # Only the last block carries padding: decrypt the bulk once and unpad the tail
            # (the unpadder copies all it is given; a whole 50 MB content cost two copies).
            view = memoryview(p.ciphertext)
            cut = len(view) - spec.block_size
            bulk = dec.update(view[:cut])
            unpadder = sym_padding.PKCS7(spec.block_size * 8).unpadder()
            tail = unpadder.update(dec.update(view[cut:]) + dec.finalize()) + unpadder.finalize()
            out: bytes = bulk + bytes(tail) if tail else bulk
            return out
        assert p.mac is not None
        if spec.mode == "gcm":
            dec = Cipher(
                algorithms.AES(cek), modes.GCM(p.iv, p.mac, min_tag_length=p.tag_len)
            ).decryptor()
            if p.aad is not None:
                dec.authenticate_additional_data(p.aad)
            out = dec.update(p.ciphertext) + dec.finalize()
            return out
        out = ChaCha20Poly1305(cek).decrypt(p.iv, bytes(p.ciphertext) + p.mac, p.aad)
        return out
    except InvalidTag as exc:
        raise _TagFailed from exc
    except ValueError:
        return None


def _candidates(
    p: _Parsed,
    cert: x509.Certificate | None,
    key: DecryptionKey | None,
    password: bytes | None,
) -> list[tuple[bytes, bool, str]]:
    """(CEK, authenticated, description) for every RecipientInfo that fits.

    Authenticated keys come first; at most MAX_CONTENT_TRIES are returned and at most
    MAX_PASSWORD_TRIES PasswordRecipientInfos are tried (hostile envelopes could otherwise
    make us decrypt a large content or run PBKDF2 many times).
    """
    out: list[tuple[bytes, bool, str]] = []
    passwords_tried = 0
    for ri in p.recipients:
        if isinstance(ri, Pwri) and password is not None:
            passwords_tried += 1
            if passwords_tried > MAX_PASSWORD_TRIES:
                continue
            cek = unwrap_pwri(ri, password)
            if cek is not None:
                out.append((cek, True, ri.describe()))
        elif isinstance(ri, Ktri) and isinstance(key, rsa.RSAPrivateKey):
            if cert is not None and not ri.rid.matches(cert):
                continue
            got = unwrap_ktri(ri, key, p.cipher.key_size)
            if got is not None:
                out.append((got[0], got[1], ri.describe()))
        elif isinstance(ri, Kari) and isinstance(
            key, ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey
        ):
            out.extend((cek, True, ri.describe()) for cek in unwrap_kari(ri, key, cert))
    out.sort(key=lambda c: not c[1])  # stable: authenticated first, in message order
    if len(out) > MAX_CONTENT_TRIES:
        log.debug("decrypt: %d candidate keys, trying %d", len(out), MAX_CONTENT_TRIES)
    return out[:MAX_CONTENT_TRIES]


def _addressed_but_unsupported(p: _Parsed, cert: x509.Certificate) -> str | None:
    """A RecipientInfo naming ``cert`` whose algorithms we do not implement (not secret)."""
    for ri in p.recipients:
        if isinstance(ri, Ktri) and ri.rid.matches(cert):
            if ri.alg_oid not in (OID.RSA, OID.RSAES_OAEP):
                return ri.describe()
        elif isinstance(ri, Kari) and any(rid.matches(cert) for rid, _ in ri.keys):
            wrap = CIPHERS.get(ri.wrap_oid)
            if (
                ri.originator_key is None
                or ri.scheme_oid not in KDF_SCHEMES
                or wrap is None
                or wrap.mode != "wrap"
            ):
                return ri.describe()
    return None


def describe_recipients(der: bytes) -> tuple[str, ...]:
    """One description per RecipientInfo of an envelope, without decrypting anything
    (e.g. to tell the user which certificate or password a message needs)."""
    return tuple(ri.describe() for ri in _parse(der).recipients)


def decrypt(
    der: bytes,
    *,
    cert: x509.Certificate | None = None,
    key: DecryptionKey | None = None,
    password: bytes | None = None,
) -> Decrypted:
    """Decrypt a DER ContentInfo holding EnvelopedData or AuthEnvelopedData.

    Give ``key`` (with its ``cert`` to pick the matching RecipientInfo; without it every
    RecipientInfo of the key's type is tried; for PKCS#1 v1.5 key transport with AES-CBC
    content a wrong key is then caught only by the CBC padding check, which about 1 in 256
    random keys pass, yielding garbage as OpenSSL's ``cms -decrypt`` does; always pass the
    certificate when it is known) and/or ``password``. Raises DecryptionFailed
    for every failure to decrypt, TamperedMessage when an authenticated key was recovered
    but the content's tag did not match, MalformedMessage / NotEncrypted /
    UnsupportedMessage for structures that are broken, not envelopes, or use an
    algorithm we do not implement.
    """
    if key is None and password is None:
        raise UsageError("decrypt() needs a private key or a password")
    if cert is not None and key is None:
        raise UsageError("decrypt(cert=...) needs the matching key")
    if key is not None and not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey
    ):
        raise UsageError("key must be an RSA, EC or X25519 private key")
    p = _parse(der)
    candidates = _candidates(p, cert, key, password)
    tampered = False
    for cek, authenticated, described in candidates:
        try:
            plain = _decrypt_content(p, cek)
        except _TagFailed:
            tampered = tampered or authenticated
            continue
        if plain is not None:
            return Decrypted(
                content=plain,
                cipher=p.cipher.name,
                content_type=p.content_type,
                recipients=tuple(ri.describe() for ri in p.recipients),
                aead=p.auth,
                opened_by=described,
            )
    log.debug("decrypt: %d candidate key(s), none opened the content", len(candidates))
    if not candidates and cert is not None:
        unsupported = _addressed_but_unsupported(p, cert)
        if unsupported is not None:
            raise UnsupportedMessage(f"encrypted to this certificate with {unsupported}")
    if tampered:
        raise TamperedMessage("the encrypted content was changed (authentication tag mismatch)")
    raise DecryptionFailed(_OPAQUE)
