"""Identity bundle: all own secret keys and certificates in one passphrase-protected file.

Format, version 1
-----------------
::

    magic    8 bytes   b"SEALID\\x00\\x01"  (name, NUL, format version 1)
    header   2 bytes   big-endian length H, then H bytes of UTF-8 JSON:
                       {"kdf": "scrypt", "n": N, "r": R, "p": P, "salt": base64(16 bytes),
                        "aead": "AES-256-GCM", "nonce": base64(12 bytes),
                        "created": ISO 8601 UTC}
    payload  rest      AES-256-GCM ciphertext + 16-byte tag, key = scrypt(passphrase,
                       salt, N, R, P, 32), associated data = magic || header bytes

The plaintext payload is UTF-8 JSON::

    {"version": 1, "items": [
        {"kind": "pgp", "fingerprint": F, "secret": base64(transferable secret key),
         "password": str | null},               # the key's own passphrase, if it has one
        {"kind": "x509", "fingerprint": F, "cert": base64(DER),
         "key": base64(PKCS#8 DER) | null, "trust_anchor": bool}
    ]}

Every X.509 certificate of the profile that has a private key, and its issuers held in
the profile, are included; OpenPGP keys with a secret part are included whole. Because
the header is bound as associated data, changing the KDF parameters or the nonce makes
the file fail to open (:class:`~keystore.errors.BadPassword`, the same error as a wrong
passphrase: a reader cannot tell the two apart). scrypt parameters are bounded on
reading, so a hostile file cannot ask for gigabytes of memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keystore.errors import BadPassword, InvalidKeyMaterial, UsageError
from keystore.secrets import KdfParams

__all__ = ["MAGIC", "BundleItem", "open_bundle", "seal_bundle"]

MAGIC = b"SEALID\x00\x01"
_MAX_HEADER = 4096


@dataclass(frozen=True)
class BundleItem:
    kind: str  # "pgp" or "x509"
    fingerprint: str
    secret: bytes | None = None  # pgp: transferable secret key; x509: PKCS#8 DER key
    password: str | None = None  # pgp: the key's own passphrase
    cert: bytes | None = None  # x509: DER
    trust_anchor: bool = False

    def to_json(self) -> dict[str, Any]:
        def b64(v: bytes | None) -> str | None:
            return base64.b64encode(v).decode("ascii") if v is not None else None

        if self.kind == "pgp":
            return {
                "kind": "pgp",
                "fingerprint": self.fingerprint,
                "secret": b64(self.secret),
                "password": self.password,
            }
        return {
            "kind": "x509",
            "fingerprint": self.fingerprint,
            "cert": b64(self.cert),
            "key": b64(self.secret),
            "trust_anchor": self.trust_anchor,
        }


def _unb64(v: object) -> bytes | None:
    if v is None:
        return None
    if not isinstance(v, str):
        raise InvalidKeyMaterial("identity bundle is damaged (expected base64)")
    try:
        return base64.b64decode(v, validate=True)
    except binascii.Error as exc:
        raise InvalidKeyMaterial("identity bundle is damaged (bad base64)") from exc


def _item(obj: object) -> BundleItem:
    if not isinstance(obj, dict) or obj.get("kind") not in ("pgp", "x509"):
        raise InvalidKeyMaterial("identity bundle holds an unknown item")
    fpr = str(obj.get("fingerprint", ""))
    if obj["kind"] == "pgp":
        pw = obj.get("password")
        return BundleItem(
            "pgp",
            fpr,
            secret=_unb64(obj.get("secret")),
            password=pw if isinstance(pw, str) else None,
        )
    return BundleItem(
        "x509",
        fpr,
        secret=_unb64(obj.get("key")),
        cert=_unb64(obj.get("cert")),
        trust_anchor=bool(obj.get("trust_anchor")),
    )


def seal_bundle(
    items: list[BundleItem],
    passphrase: bytes,
    *,
    now: datetime,
    kdf: KdfParams | None = None,
) -> bytes:
    if not passphrase:
        raise UsageError("an identity bundle needs a passphrase")
    kdf = kdf or KdfParams(n=2**17)
    salt, nonce = os.urandom(16), os.urandom(12)
    header = json.dumps(
        {
            "kdf": "scrypt",
            "n": kdf.n,
            "r": kdf.r,
            "p": kdf.p,
            "salt": base64.b64encode(salt).decode("ascii"),
            "aead": "AES-256-GCM",
            "nonce": base64.b64encode(nonce).decode("ascii"),
            "created": now.astimezone(UTC).isoformat(),
        },
        sort_keys=True,
    ).encode("utf-8")
    payload = json.dumps({"version": 1, "items": [i.to_json() for i in items]}).encode("utf-8")
    aad = MAGIC + struct.pack(">H", len(header)) + header
    ct = AESGCM(kdf.derive(passphrase, salt)).encrypt(nonce, payload, aad)
    return aad + ct


def open_bundle(data: bytes, passphrase: bytes) -> list[BundleItem]:
    """The items of a bundle; BadPassword for a wrong passphrase (or a tampered file)."""
    if not data.startswith(MAGIC[:6]):
        raise InvalidKeyMaterial("not a Sealmail identity bundle")
    if not data.startswith(MAGIC):
        raise InvalidKeyMaterial("identity bundle of an unknown version")
    if len(data) < len(MAGIC) + 2:
        raise InvalidKeyMaterial("identity bundle is truncated")
    (hlen,) = struct.unpack(">H", data[len(MAGIC) : len(MAGIC) + 2])
    if hlen > _MAX_HEADER or len(data) < len(MAGIC) + 2 + hlen + 16:
        raise InvalidKeyMaterial("identity bundle is truncated or damaged")
    header_raw = data[len(MAGIC) + 2 : len(MAGIC) + 2 + hlen]
    try:
        header = json.loads(header_raw)
        params = KdfParams(n=int(header["n"]), r=int(header["r"]), p=int(header["p"]))
        salt = _unb64(header["salt"])
        nonce = _unb64(header["nonce"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidKeyMaterial("identity bundle header is damaged") from exc
    if header.get("kdf") != "scrypt" or header.get("aead") != "AES-256-GCM":
        raise InvalidKeyMaterial("identity bundle uses an unknown algorithm")
    if not (2**10 <= params.n <= 2**20 and 1 <= params.r <= 32 and 1 <= params.p <= 16):
        raise InvalidKeyMaterial("identity bundle asks for out-of-range KDF parameters")
    if salt is None or nonce is None or len(nonce) != 12:
        raise InvalidKeyMaterial("identity bundle header is damaged")
    aad = data[: len(MAGIC) + 2 + hlen]
    try:
        plain = AESGCM(params.derive(passphrase, salt)).decrypt(nonce, data[len(aad) :], aad)
    except InvalidTag as exc:
        raise BadPassword("wrong passphrase for the identity bundle (or it was altered)") from exc
    try:
        doc = json.loads(plain)
    except ValueError as exc:
        raise InvalidKeyMaterial("identity bundle payload is damaged") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("version") != 1
        or not isinstance(doc.get("items"), list)
    ):
        raise InvalidKeyMaterial("identity bundle payload has an unknown format")
    return [_item(i) for i in doc["items"]]
