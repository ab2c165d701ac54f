"""The CMS layer (RFC 5652) for S/MIME: sign, verify, encrypt, decrypt -- sans I/O.

Theory of operation
-------------------
``cryptography`` has no CMS verification and only AES-CBC/RSA-v1.5 envelopes, so this layer
builds and reads CMS itself: asn1crypto for the ASN.1 structures, ``cryptography`` for the
primitives. Everything takes and returns DER ``bytes`` (the S/MIME recipe layer does the
MIME and base64); certificates are ``cryptography.x509.Certificate``, keys are
``cryptography`` private keys; ``now`` and ``rng`` are parameters.

* :func:`sign` / :func:`verify` -- SignedData (``cms_sign``, ``cms_verify``).
* :func:`encrypt` / :func:`encrypt_password` / :func:`decrypt` -- EnvelopedData and
  AuthEnvelopedData (``cms_envelope``) with RecipientInfos from ``cms_recipients``;
  :func:`describe_recipients` says to whom an envelope is addressed without decrypting.
* :func:`content_info_type` sniffs what a DER blob is; :func:`decompress` opens
  CompressedData (RFC 3274) with a size limit; :func:`parse_capabilities` names the
  algorithms in an SMIMECapabilities value.

Every entry point parses first and computes second (see ``cms_common``): hostile input
ends in a ``client.errors.MessageError`` subclass, never a library exception. Decryption
failures are one opaque ``DecryptionFailed`` (``TamperedMessage`` only when an
authenticated key met a bad tag). A signature is never "valid" without a signer: a
SignedData with no signerInfos raises ``NotSigned``.
"""

from __future__ import annotations

import zlib

from asn1crypto import cms, core

from client.crypto.bercheck import check_headers
from client.crypto.cms_common import OID, oid_name, translate_errors
from client.crypto.cms_envelope import (
    DEFAULT_PBKDF2_ITERATIONS,
    Decrypted,
    EncryptCipher,
    decrypt,
    describe_recipients,
    encrypt,
    encrypt_password,
    encrypt_stream,
)
from client.crypto.cms_sign import (
    SMIME_CAPABILITIES,
    micalg,
    parse_capabilities,
    sign,
    signing_digest,
)
from client.crypto.cms_verify import SignerResult, VerifyResult, extract_certificates, verify
from client.errors import MalformedMessage, MessageTooLarge, UnsupportedMessage

__all__ = [
    "DEFAULT_DECOMPRESS_LIMIT",
    "DEFAULT_PBKDF2_ITERATIONS",
    "SMIME_CAPABILITIES",
    "Decrypted",
    "EncryptCipher",
    "SignerResult",
    "VerifyResult",
    "content_info_type",
    "decompress",
    "decrypt",
    "describe_recipients",
    "encrypt",
    "encrypt_password",
    "encrypt_stream",
    "extract_certificates",
    "micalg",
    "parse_capabilities",
    "sign",
    "signing_digest",
    "verify",
]

DEFAULT_DECOMPRESS_LIMIT = 256 * 1024 * 1024


def content_info_type(der: bytes) -> str:
    """What a DER ContentInfo holds: ``"signed-data"``, ``"enveloped-data"``,
    ``"authenveloped-data"``, ``"compressed-data"``, ``"data"``, ``"digested-data"``,
    ``"encrypted-data"``, ``"authenticated-data"``..., or the dotted OID if unknown.

    Only the outer SEQUENCE and the OID are read. Raises MalformedMessage for anything
    that is not a ContentInfo.
    """
    with translate_errors("ContentInfo"):
        check_headers(der, "ContentInfo")  # asn1crypto is quadratic on long tags (DoS)
        outer = core.Sequence.load(der, strict=True)
        first = outer[0]
        oid = core.ObjectIdentifier.load(first.dump()).dotted
        if len(outer) > 2:
            raise MalformedMessage("ContentInfo has too many fields")
        return oid_name(oid)


def decompress(der: bytes, *, max_size: int = DEFAULT_DECOMPRESS_LIMIT) -> tuple[str, bytes]:
    """Open CompressedData (RFC 3274, zlib): ``(inner content type, content)``.

    Raises MessageTooLarge if the content would exceed ``max_size`` bytes (zip bombs),
    MalformedMessage for broken structures or zlib data, UnsupportedMessage for other
    compression algorithms.
    """
    with translate_errors("CompressedData"):
        check_headers(der, "CompressedData")  # asn1crypto is quadratic on long tags (DoS)
        ci = cms.ContentInfo.load(der, strict=True)
        if ci["content_type"].dotted != OID.COMPRESSED_DATA:
            raise MalformedMessage("not a CompressedData")
        cd = ci["content"]
        alg = cd["compression_algorithm"]["algorithm"].dotted
        if alg != OID.ZLIB:
            raise UnsupportedMessage(f"compression algorithm {alg} is not supported")
        encap = cd["encap_content_info"]
        inner_type = oid_name(encap["content_type"].dotted)
        content = encap["content"]
        if isinstance(content, core.Void):
            raise MalformedMessage("CompressedData without content")
        data = bytes(content)
    # 1 MiB at a time: a bomb is refused holding at most ``max_size`` octets (one call with
    # max_length=max_size+1 peaked at twice that inside zlib; tests/unit/test_bombs.py)
    d = zlib.decompressobj()
    chunks: list[bytes] = []
    total = 0
    try:
        pending = data
        while True:
            chunk = d.decompress(pending, 1 << 20)
            pending = d.unconsumed_tail
            total += len(chunk)
            if total > max_size:
                raise MessageTooLarge(f"decompressed content exceeds {max_size} bytes")
            chunks.append(chunk)
            if d.eof or (not pending and not chunk):
                break
        tail = d.flush()
    except zlib.error as exc:
        raise MalformedMessage("CompressedData: broken zlib stream") from exc
    if total + len(tail) > max_size:
        raise MessageTooLarge(f"decompressed content exceeds {max_size} bytes")
    if not d.eof:
        raise MalformedMessage("CompressedData: truncated zlib stream")
    chunks.append(tail)
    return inner_type, b"".join(chunks)
