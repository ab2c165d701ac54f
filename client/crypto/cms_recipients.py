"""CMS RecipientInfos: wrap a content-encryption key for recipients, and unwrap it.

Theory of operation
-------------------
Three kinds are implemented both ways, one kind only read:

* **KeyTransRecipientInfo** (RSA): RSAES-OAEP (we write SHA-256/MGF1-SHA-256; we read any
  hash) or PKCS#1 v1.5. A v1.5 unwrap never fails on its own: on bad padding or a key of
  the wrong length it yields a random key (implicit rejection, RFC 3218 2.3.2), so the only
  failure a caller ever sees is the final content decryption -- no padding oracle. (The
  OpenSSL inside ``cryptography`` also does implicit rejection; we add the length check.)
* **KeyAgreeRecipientInfo**: ephemeral-static ECDH on P-256/P-384/P-521 with the ANSI X9.63
  KDF (RFC 5753; SHA-1/224/256/384/512) and AES key wrap (RFC 3394), or X25519 with HKDF
  (RFC 8418, read only). We write dhSinglePass-stdDH-sha{256,384,512}kdf-scheme by curve
  and aes{128,256}-wrap matching the content key size.
* **PasswordRecipientInfo** (RFC 3211): PBKDF2 (HMAC-SHA-256 by default) and
  id-alg-PWRI-KEK with an AES-CBC KEK cipher -- what ``openssl cms -pwri_password`` reads.
* KEKRecipientInfo and OtherRecipientInfo are recognised and described, never used.

Parsing (``parse_recipient_infos``) copies each RecipientInfo into a small frozen dataclass
inside the caller's error translation; ``unwrap_*`` work on those. Unwrapping returns
``None`` (or a random key, for v1.5) rather than raising, so the caller can try every
candidate and fail once, opaquely.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from asn1crypto import algos, cms, core, keys
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, keywrap, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from client.crypto.cms_common import (
    CIPHERS,
    DIGESTS,
    HMAC_PRF_OIDS,
    HMAC_PRFS,
    KDF_SCHEME_OIDS,
    KDF_SCHEMES,
    OID,
    AlgId,
    EccCmsSharedInfo,
    OriginatorPublicKey,
    Rid,
    hash_for_name,
    issuer_and_serial,
    oid_name,
    retag,
)
from client.errors import MessageTooLarge, UsageError

__all__ = [
    "MAX_PBKDF2_ITERATIONS",
    "Kari",
    "Ktri",
    "OtherRi",
    "ParsedRecipient",
    "Pwri",
    "kari_for",
    "ktri_for",
    "parse_recipient_infos",
    "pwri_for",
    "unwrap_kari",
    "unwrap_ktri",
    "unwrap_pwri",
]

log = logging.getLogger(__name__)

Rng = Callable[[int], bytes]
MAX_PBKDF2_ITERATIONS = 10_000_000

_CURVES: dict[str, tuple[ec.EllipticCurve, str]] = {
    # curve name -> (curve, KDF hash): RFC 5753 pairs the KDF hash with the curve size
    "secp256r1": (ec.SECP256R1(), "sha256"),
    "secp384r1": (ec.SECP384R1(), "sha384"),
    "secp521r1": (ec.SECP521R1(), "sha512"),
}


def _ephemeral_key(curve: ec.EllipticCurve, rng: Rng) -> ec.EllipticCurvePrivateKey:
    """An ephemeral key whose scalar comes from ``rng`` (rejection sampling)."""
    bits = curve.key_size
    for _ in range(64):
        scalar = int.from_bytes(_take(rng, (bits + 7) // 8), "big") >> (-bits % 8)
        if scalar == 0:
            continue
        try:
            return ec.derive_private_key(scalar, curve)
        except ValueError:  # scalar >= group order
            continue
    raise UsageError("rng does not look random")


# --- parsed forms ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ktri:
    rid: Rid
    alg_oid: str
    alg_params: bytes | None
    encrypted_key: bytes

    def describe(self) -> str:
        alg = oid_name(self.alg_oid)
        if self.alg_oid == OID.RSAES_OAEP:
            try:
                alg += f"({_oaep_hash_names(self.alg_params)[0]})"
            except Exception:  # a description must never fail
                alg += "(?)"
        return f"ktri {alg} {self.rid.describe()}"


@dataclass(frozen=True)
class Kari:
    originator_alg: str | None  # None: originator named by certificate (static-static)
    originator_key: bytes | None
    ukm: bytes | None
    scheme_oid: str
    wrap_alg: bytes  # DER AlgorithmIdentifier of the key-wrap algorithm, as sent
    wrap_oid: str
    keys: tuple[tuple[Rid, bytes], ...]

    def describe(self) -> str:
        rids = ", ".join(rid.describe() for rid, _ in self.keys)
        return f"kari {oid_name(self.scheme_oid)}+{oid_name(self.wrap_oid)} {rids}"


@dataclass(frozen=True)
class Pwri:
    kdf_oid: str | None
    kdf_params: bytes | None
    kek_oid: str
    kek_params: bytes | None
    encrypted_key: bytes

    def describe(self) -> str:
        kdf = oid_name(self.kdf_oid) if self.kdf_oid else "no-kdf"
        inner = "?"
        if self.kek_params is not None:
            try:
                inner = oid_name(AlgId.load(self.kek_params)["algorithm"].dotted)
            except Exception:  # a description must never fail
                inner = "?"
        return f"pwri {kdf}+{oid_name(self.kek_oid)}({inner})"


@dataclass(frozen=True)
class OtherRi:
    kind: str

    def describe(self) -> str:
        return self.kind


ParsedRecipient = Ktri | Kari | Pwri | OtherRi


def _params(value: core.Asn1Value) -> bytes | None:
    if isinstance(value, core.Void):
        return None
    der: bytes = value.dump()
    return der


def _rid_of(choice: core.Choice) -> Rid:
    if choice.name == "issuer_and_serial_number":
        ias = choice.chosen
        return Rid(issuer_der=ias["issuer"].dump(), serial=int(ias["serial_number"].native))
    if choice.name == "r_key_id":
        return Rid(ski=bytes(choice.chosen["subject_key_identifier"].native))
    return Rid(ski=bytes(choice.chosen.native))


def parse_recipient_infos(infos: cms.RecipientInfos) -> tuple[ParsedRecipient, ...]:
    """Copy every RecipientInfo out of asn1crypto (call inside ``translate_errors``)."""
    out: list[ParsedRecipient] = []
    for ri in infos:
        name = ri.name
        v = ri.chosen
        if name == "ktri":
            alg = v["key_encryption_algorithm"]
            out.append(
                Ktri(
                    rid=_rid_of(v["rid"]),
                    alg_oid=alg["algorithm"].dotted,
                    alg_params=_params(alg["parameters"]),
                    encrypted_key=bytes(v["encrypted_key"].native),
                )
            )
        elif name == "kari":
            orig = v["originator"]
            o_alg: str | None = None
            o_key: bytes | None = None
            if orig.name == "originator_key":
                opk = OriginatorPublicKey.load(retag(orig.chosen, 0x30), strict=True)
                o_alg = opk["algorithm"]["algorithm"].dotted
                o_key = bytes(opk["public_key"].native)
            kea = v["key_encryption_algorithm"]
            wrap = kea["parameters"]
            wrap_der = b"" if isinstance(wrap, core.Void) else wrap.dump()
            wrap_oid = AlgId.load(wrap_der)["algorithm"].dotted if wrap_der else ""
            ukm = v["ukm"]
            out.append(
                Kari(
                    originator_alg=o_alg,
                    originator_key=o_key,
                    ukm=None if isinstance(ukm, core.Void) else bytes(ukm.native),
                    scheme_oid=kea["algorithm"].dotted,
                    wrap_alg=wrap_der,
                    wrap_oid=wrap_oid,
                    keys=tuple(
                        (_rid_of(rek["rid"]), bytes(rek["encrypted_key"].native))
                        for rek in v["recipient_encrypted_keys"]
                    ),
                )
            )
        elif name == "pwri":
            kdf = v["key_derivation_algorithm"]
            kea = v["key_encryption_algorithm"]
            out.append(
                Pwri(
                    kdf_oid=None if isinstance(kdf, core.Void) else kdf["algorithm"].dotted,
                    kdf_params=None if isinstance(kdf, core.Void) else _params(kdf["parameters"]),
                    kek_oid=kea["algorithm"].dotted,
                    kek_params=_params(kea["parameters"]),
                    encrypted_key=bytes(v["encrypted_key"].native),
                )
            )
        elif name == "kekri":
            kid = bytes(v["kekid"]["key_identifier"].native)
            out.append(OtherRi(f"kekri keyid={kid.hex()} (not supported)"))
        else:
            out.append(OtherRi(f"ori {v['ori_type'].dotted} (not supported)"))
    return tuple(out)


# --- KTRI --------------------------------------------------------------------------------------


def _oaep_hash_names(params: bytes | None) -> tuple[str, str, bytes | None]:
    """(hash, mgf1 hash, label) of RSAES-OAEP-params; defaults are SHA-1 (RFC 4055)."""
    if params is None or params == b"\x05\x00":
        return "sha1", "sha1", None
    p = algos.RSAESOAEPParams.load(params)
    h = DIGESTS[p["hash_algorithm"]["algorithm"].dotted]
    mgf = p["mask_gen_algorithm"]
    if mgf["algorithm"].dotted != OID.MGF1:
        raise ValueError("unsupported OAEP mask generation function")
    m = DIGESTS[mgf["parameters"]["algorithm"].dotted]
    src = p["p_source_algorithm"]
    label: bytes | None = None
    if src["algorithm"].dotted != OID.P_SPECIFIED:
        raise ValueError("unsupported OAEP pSource")
    if not isinstance(src["parameters"], core.Void):
        label = bytes(src["parameters"].native) or None
    return h, m, label


@functools.cache
def _oaep_sha256_der() -> bytes:
    """RSAES-OAEP parameters (SHA-256, MGF1-SHA-256), encoded once: asn1crypto converts a
    freshly built parameter object through its native form when it is placed in a
    structure (11 ms per recipient, against microseconds for a parsed one)."""
    der: bytes = algos.RSAESOAEPParams(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        }
    ).dump()
    return der


def ktri_for(cert: x509.Certificate, cek: bytes, *, oaep: bool) -> cms.RecipientInfo:
    pub = cert.public_key()
    if not isinstance(pub, rsa.RSAPublicKey):
        raise UsageError("key transport needs an RSA certificate")
    alg: dict[str, object]
    if oaep:
        pad: padding.AsymmetricPadding = padding.OAEP(
            mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
        )
        alg = {
            "algorithm": "rsaes_oaep",
            "parameters": algos.RSAESOAEPParams.load(_oaep_sha256_der()),
        }
    else:
        pad = padding.PKCS1v15()
        alg = {"algorithm": "rsaes_pkcs1v15"}
    return cms.RecipientInfo(
        name="ktri",
        value=cms.KeyTransRecipientInfo(
            {
                "version": "v0",
                "rid": cms.RecipientIdentifier(
                    name="issuer_and_serial_number", value=issuer_and_serial(cert)
                ),
                "key_encryption_algorithm": alg,
                "encrypted_key": pub.encrypt(cek, pad),
            }
        ),
    )


def unwrap_ktri(ri: Ktri, key: rsa.RSAPrivateKey, key_size: int) -> tuple[bytes, bool] | None:
    """(CEK, authenticated) or None. v1.5 always yields a key (random on failure)."""
    if ri.alg_oid == OID.RSA:
        fallback = secrets.token_bytes(key_size)
        try:
            cek = key.decrypt(ri.encrypted_key, padding.PKCS1v15())
        except ValueError:
            cek = b""
        good = len(cek) == key_size
        return (cek if good else fallback), False
    if ri.alg_oid == OID.RSAES_OAEP:
        try:
            h, m, label = _oaep_hash_names(ri.alg_params)
            pad = padding.OAEP(
                mgf=padding.MGF1(hash_for_name(m)), algorithm=hash_for_name(h), label=label
            )
            cek = key.decrypt(ri.encrypted_key, pad)
        except (ValueError, KeyError, TypeError):
            return None
        return cek, True
    return None


# --- KARI --------------------------------------------------------------------------------------


def _curve_name(curve: ec.EllipticCurve) -> str:
    return str(curve.name)


def _kek(scheme: str, wrap_alg: bytes, kek_len: int, ukm: bytes | None, shared: bytes) -> bytes:
    sch = KDF_SCHEMES[scheme]
    info: dict[str, object] = {
        "key_info": AlgId.load(wrap_alg),
        "supp_pub_info": (kek_len * 8).to_bytes(4, "big"),
    }
    if ukm is not None:
        info["entity_u_info"] = ukm
    shared_info = EccCmsSharedInfo(info).dump()
    if sch.kdf == "hkdf":
        return HKDF(hash_for_name(sch.hash), kek_len, salt=ukm, info=shared_info).derive(shared)
    return X963KDF(hash_for_name(sch.hash), kek_len, shared_info).derive(shared)


def kari_for(cert: x509.Certificate, cek: bytes, *, rng: Rng) -> cms.RecipientInfo:
    pub = cert.public_key()
    if not isinstance(pub, ec.EllipticCurvePublicKey) or _curve_name(pub.curve) not in _CURVES:
        raise UsageError("key agreement needs a P-256, P-384 or P-521 certificate")
    curve, kdf_hash = _CURVES[_curve_name(pub.curve)]
    eph = _ephemeral_key(curve, rng)
    shared = eph.exchange(ec.ECDH(), pub)
    wrap_oid = OID.AES256_WRAP if len(cek) > 16 else OID.AES128_WRAP
    kek_len = CIPHERS[wrap_oid].key_size
    wrap_alg = AlgId({"algorithm": wrap_oid}).dump()
    scheme_oid = KDF_SCHEME_OIDS[kdf_hash]
    kek = _kek(scheme_oid, wrap_alg, kek_len, None, shared)
    wrapped = keywrap.aes_key_wrap(kek, cek)
    point = eph.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    opk = keys.PublicKeyInfo.load(
        OriginatorPublicKey(
            {"algorithm": {"algorithm": OID.EC_PUBLIC_KEY}, "public_key": point}
        ).dump()
    )
    kea = cms.KeyEncryptionAlgorithm({"algorithm": scheme_oid, "parameters": AlgId.load(wrap_alg)})
    return cms.RecipientInfo(
        name="kari",
        value=cms.KeyAgreeRecipientInfo(
            {
                "version": "v3",
                "originator": cms.OriginatorIdentifierOrKey(name="originator_key", value=opk),
                "key_encryption_algorithm": kea,
                "recipient_encrypted_keys": [
                    {
                        "rid": cms.KeyAgreementRecipientIdentifier(
                            name="issuer_and_serial_number", value=issuer_and_serial(cert)
                        ),
                        "encrypted_key": wrapped,
                    }
                ],
            }
        ),
    )


def unwrap_kari(
    ri: Kari,
    key: ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey,
    cert: x509.Certificate | None,
) -> Iterable[bytes]:
    """Every CEK this KARI yields for ``key`` (AES key wrap authenticates each)."""
    if ri.originator_key is None or ri.scheme_oid not in KDF_SCHEMES:
        return
    wrap = CIPHERS.get(ri.wrap_oid)
    if wrap is None or wrap.mode != "wrap":
        return
    try:
        if isinstance(key, ec.EllipticCurvePrivateKey):
            if ri.originator_alg != OID.EC_PUBLIC_KEY:
                return
            peer = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, ri.originator_key)
            shared = key.exchange(ec.ECDH(), peer)
        else:
            if ri.originator_alg != OID.X25519:
                return
            shared = key.exchange(x25519.X25519PublicKey.from_public_bytes(ri.originator_key))
        kek = _kek(ri.scheme_oid, ri.wrap_alg, wrap.key_size, ri.ukm, shared)
    except (ValueError, KeyError, TypeError) as exc:
        log.debug("kari: key agreement failed: %s", type(exc).__name__)
        return
    for rid, ek in ri.keys:
        if cert is not None and not rid.matches(cert):
            continue
        try:
            yield keywrap.aes_key_unwrap(kek, ek)
        except (ValueError, keywrap.InvalidUnwrap):
            continue


# --- PWRI (RFC 3211) ---------------------------------------------------------------------------


def _kek_cipher(oid: str, key: bytes) -> algorithms.AES | TripleDES:
    spec = CIPHERS.get(oid)
    if spec is None or spec.mode != "cbc":
        raise ValueError("unsupported PWRI KEK cipher")
    if spec.name == "des-ede3-cbc":
        return TripleDES(key)
    return algorithms.AES(key)


def _pwri_wrap(kek_oid: str, kek: bytes, iv: bytes, cek: bytes, rng: Rng) -> bytes:
    b = CIPHERS[kek_oid].block_size
    n = max(2 * b, -(-(4 + len(cek)) // b) * b)
    check = bytes(x ^ 0xFF for x in cek[:3])
    block = bytes([len(cek)]) + check + cek
    block += _take(rng, n - len(block))
    enc = Cipher(_kek_cipher(kek_oid, kek), modes.CBC(iv)).encryptor()
    first = enc.update(block) + enc.finalize()
    enc = Cipher(_kek_cipher(kek_oid, kek), modes.CBC(first[-b:])).encryptor()
    return enc.update(first) + enc.finalize()


def _pwri_unwrap(kek_oid: str, kek: bytes, iv: bytes, wrapped: bytes) -> bytes | None:
    b = CIPHERS[kek_oid].block_size
    n = len(wrapped)
    if n < 2 * b or n % b:
        return None
    ecb = Cipher(_kek_cipher(kek_oid, kek), modes.ECB()).decryptor()  # noqa: S305 - one block
    last = ecb.update(wrapped[-b:]) + ecb.finalize()
    last = bytes(x ^ y for x, y in zip(last, wrapped[-2 * b : -b], strict=True))
    dec = Cipher(_kek_cipher(kek_oid, kek), modes.CBC(last)).decryptor()
    first = dec.update(wrapped) + dec.finalize()
    dec = Cipher(_kek_cipher(kek_oid, kek), modes.CBC(iv)).decryptor()
    block = dec.update(first) + dec.finalize()
    length = block[0]
    check = bytes(x ^ y for x, y in zip(block[1:4], block[4:7], strict=True))
    if not hmac.compare_digest(check, b"\xff\xff\xff") or length < 3 or 4 + length > n:
        return None
    return block[4 : 4 + length]


def pwri_for(
    password: bytes, cek: bytes, *, iterations: int, rng: Rng, prf: str = "sha256"
) -> cms.RecipientInfo:
    kek_oid = CIPHERS["aes256-cbc" if len(cek) > 16 else "aes128-cbc"].oid
    kek_len = CIPHERS[kek_oid].key_size
    salt = _take(rng, 16)
    iv = _take(rng, 16)
    kek = PBKDF2HMAC(hash_for_name(prf), kek_len, salt, iterations).derive(password)
    wrapped = _pwri_wrap(kek_oid, kek, iv, cek, rng)
    return cms.RecipientInfo(
        name="pwri",
        value=cms.PasswordRecipientInfo(
            {
                "version": "v0",
                "key_derivation_algorithm": {
                    "algorithm": "pbkdf2",
                    "parameters": {
                        "salt": algos.Pbkdf2Salt(name="specified", value=salt),
                        "iteration_count": iterations,
                        "prf": {"algorithm": HMAC_PRF_OIDS[prf]},
                    },
                },
                "key_encryption_algorithm": {
                    "algorithm": OID.PWRI_KEK,
                    "parameters": AlgId({"algorithm": kek_oid, "parameters": core.OctetString(iv)}),
                },
                "encrypted_key": wrapped,
            }
        ),
    )


def unwrap_pwri(ri: Pwri, password: bytes) -> bytes | None:
    """The CEK, or None (wrong password or unsupported parameters)."""
    if ri.kdf_oid != OID.PBKDF2 or ri.kek_oid != OID.PWRI_KEK or ri.kek_params is None:
        return None
    try:
        inner = AlgId.load(ri.kek_params, strict=True)
        kek_oid = inner["algorithm"].dotted
        iv = bytes(core.OctetString.load(inner["parameters"].dump()).native)
        spec = CIPHERS.get(kek_oid)
        if spec is None or spec.mode != "cbc" or len(iv) != spec.block_size:
            return None
        p = algos.Pbkdf2Params.load(ri.kdf_params or b"")
        if p["salt"].name != "specified":
            return None
        salt = bytes(p["salt"].chosen.native)
        iterations = int(p["iteration_count"].native)
        prf = HMAC_PRFS.get(p["prf"]["algorithm"].dotted)
        key_length = p["key_length"].native
    except Exception as exc:  # hostile parameters: this RecipientInfo is simply unusable
        log.debug("pwri: unusable parameters: %s", type(exc).__name__)
        return None
    if prf is None or iterations < 1:
        return None
    if iterations > MAX_PBKDF2_ITERATIONS:
        raise MessageTooLarge("the password envelope asks for too many PBKDF2 iterations")
    if key_length is not None and int(key_length) != spec.key_size:
        return None
    kek = PBKDF2HMAC(hash_for_name(prf), spec.key_size, salt, iterations).derive(password)
    try:
        return _pwri_unwrap(kek_oid, kek, iv, ri.encrypted_key)
    except ValueError:
        return None


def _take(rng: Rng, n: int) -> bytes:
    out = rng(n)
    if not isinstance(out, bytes) or len(out) != n:
        raise UsageError(f"rng({n}) must return exactly {n} bytes")
    return out
