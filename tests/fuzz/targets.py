"""The seven fuzz targets, their seeds and the in-memory keys they open messages with.

========  ================================================================  ================
target    entry points                                                      seeds
========  ================================================================  ================
mime      ``client.mime.parse.open_message`` (Opener over in-memory keys)   every whole corpus
          -- the MIME parser, layer peeling, ``_walk_rest``                 message (VECTORS)
cms       ``cms.content_info_type``, ``cms.verify`` (attached, detached),   rfc4134 *.bin,
          ``cms.decrypt`` (covert-content S/MIME key), ``cms.decompress``,  rfc9216 *.p7m, DER
          ``cms.describe_recipients``, ``cms.extract_certificates``         of corpus S/MIME
pgp       ``pgparmor.dearmor``, ``pgpstream.decrypt`` (covert-content       rnp test_messages,
          OpenPGP key), ``pgpsig.signature_issuers``,                       armored blocks of
          ``pgpsig.split_cleartext``                                        corpus messages
envelope  ``envelope.format.parse``, ``page.extract``, ``open.detect``,     generated envelopes
          ``open.open_bytes`` (no password: stops before the KDF),          (html + binary),
          ``format._contents`` (the manifest parser behind the AEAD)        manifests, corpus
policy    ``policy.orgpolicy.parse_policy``                                 packaging/policy,
                                                                            small variants
protect   differential: ``compose.prepare`` against the streaming path      every whole corpus
          (``parse_head``, ``plan_body``, ``finish_head``, ``emit_body``)    message
open      differential: ``recipes.open_raw`` against                        every whole corpus
          ``streamopen.open_stream``, the input encrypted as S/MIME (opaque  message
          signed for odd lengths), PGP/MIME (one-pass signed for some) or
          Sequoia's SEIPD v2 (lengths that are multiples of 3)
========  ================================================================  ================

Keys live in memory (:class:`MemoryKeys`, the ``KeyAccess`` protocol): the covert-content
attack keys (which decrypt the Efail-style corpus messages), the Johnny public keys and a
committed Sequoia test key (``seipd2-key.asc``, which announces SEIPD v2).
"""

from __future__ import annotations

import base64
import functools
import json
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from client.crypto.keys import CertCheck, PgpCertFacts, SmimeIdentity
from client.errors import NoSigningKey, SealmailError
from tests.fuzz.harness import MASKED

__all__ = ["TARGETS", "MemoryKeys", "Target"]

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpus"
NOW = datetime(2020, 6, 1, 12, tzinfo=UTC)
COVERT = CORPUS / "covert-content-attacks/assets/secret-keys"
JOHNNY = CORPUS / "johnny-you-are-fired/assets"


# -- in-memory keys -----------------------------------------------------------------------------


class MemoryKeys:
    """``client.crypto.keys.KeyAccess`` over a few corpus keys, all in memory."""

    def __init__(self) -> None:
        import pysequoia

        self._tsk = (COVERT / "manager@bigcorporation-sec.asc").read_bytes()
        # a Sequoia key (it announces SEIPD v2, so Sequoia encrypts to it with chunked AEAD)
        self.seipd2 = (Path(__file__).parent / "seipd2-key.asc").read_bytes()
        self._certs = [
            pysequoia.Cert.from_bytes((JOHNNY / f"public-keys/{n}@bigcorporation.asc").read_bytes())
            for n in ("manager", "eve")
        ]
        key, cert, _ = pkcs12.load_key_and_certificates(
            (COVERT / "manager@bigcorporation.pfx").read_bytes(), b"test12345678"
        )
        assert key is not None and cert is not None
        self._smime = [SmimeIdentity(cert, key)]
        self._anchor = x509.load_pem_x509_certificate(
            (JOHNNY / "certificates/intermediate_ca.crt").read_bytes()
        )

    # ---- OpenPGP
    def pgp_secret_keys(self) -> Sequence[tuple[bytes, bytes | None]]:
        return [(self._tsk, None), (self.seipd2, None)]

    def pgp_certs_for_ids(self, ids: Sequence[str]) -> Sequence[Any]:
        wanted = {re.sub(r"[^0-9a-f]", "", i.lower()) for i in ids}
        out = []
        for cert in self._certs:
            fprs = [str(cert.fingerprint).lower(), *self._subkeys(cert)]
            if any(w and f.endswith(w) for w in wanted for f in fprs):
                out.append(cert)
        return out

    @staticmethod
    @functools.cache
    def _subkeys(cert: Any) -> list[str]:
        """Fingerprints of a cert's subkeys (pysequoia has no accessor: read the packets)."""
        from client.crypto.pgpkeys import load_public_keys

        return [k.fingerprint.hex() for k in load_public_keys(bytes(cert))]

    def pgp_facts(self, cert: Any, *, now: datetime) -> PgpCertFacts:
        emails = tuple(
            m.group(1).lower()
            for u in cert.user_ids
            if (m := re.search(r"<([^>]+)>", str(u))) is not None
        )
        return PgpCertFacts(str(cert.fingerprint).upper(), emails, False, False)

    def pgp_encryption_certs(self, email: str, *, now: datetime) -> Sequence[bytes]:
        return []

    def pgp_signer(self, email: str, *, now: datetime) -> Any:
        raise NoSigningKey("no signing key in the fuzz keyring")

    # ---- S/MIME
    def smime_identities(self) -> Sequence[SmimeIdentity]:
        return self._smime

    def smime_signer(self, email: str, *, now: datetime) -> SmimeIdentity:
        raise NoSigningKey("no signing key in the fuzz keyring")

    def smime_encryption_certs(self, email: str, *, now: datetime) -> Sequence[x509.Certificate]:
        return []

    def smime_supports_gcm(self, cert: x509.Certificate) -> bool:
        return False

    def smime_check(
        self, cert: x509.Certificate, intermediates: Sequence[x509.Certificate], *, now: datetime
    ) -> CertCheck:
        return "valid" if cert.issuer == self._anchor.subject else "untrusted"


@functools.cache
def keys() -> MemoryKeys:
    return MemoryKeys()


# -- seeds --------------------------------------------------------------------------------------


def _files(*patterns: str) -> list[bytes]:
    out: list[bytes] = []
    for pattern in patterns:
        out += [p.read_bytes() for p in sorted(CORPUS.glob(pattern)) if p.is_file()]
    return out


def _messages() -> list[bytes]:
    """Every whole message file of the corpus (globbed: no keystore import needed)."""
    out = _files("**/*.eml", "**/*.env", "**/Maildir-cur/*", "notmuch/corpora-*/**/*")
    return [m for m in out if b":" in m[:200]]


_B64_BODY = re.compile(
    rb"Content-Type:\s*application/(?:x-)?pkcs7-(?:mime|signature)[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*"
    rb".*?\r?\n\r?\n([A-Za-z0-9+/=\r\n]{64,})",
    re.S | re.I,
)
_ARMOR = re.compile(rb"-----BEGIN PGP [A-Z ]+-----.*?-----END PGP [A-Z ]+-----\r?\n?", re.S)


def _der_from_messages(messages: Sequence[bytes]) -> list[bytes]:
    out = []
    for raw in messages:
        for m in _B64_BODY.finditer(raw):
            try:
                out.append(base64.b64decode(b"".join(m.group(1).split()), validate=False))
            except ValueError:
                continue
    return out


def _compressed_data() -> bytes:
    import zlib

    from asn1crypto import cms

    ci = cms.ContentInfo(
        {
            "content_type": "compressed_data",
            "content": cms.CompressedData(
                {
                    "version": "v0",
                    "compression_algorithm": {"algorithm": "zlib"},
                    "encap_content_info": {
                        "content_type": "data",
                        "content": zlib.compress(b"Content-Type: text/plain\r\n\r\nhello" * 50),
                    },
                }
            ),
        }
    )
    return bytes(ci.dump())


def _uniq(items: Sequence[bytes], limit: int = 400) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for i in items:
        if i and i not in seen:
            seen[i] = None
    return list(seen)[:limit]


@functools.cache
def mime_seeds() -> list[bytes]:
    return _uniq(_messages())


@functools.cache
def cms_seeds() -> list[bytes]:
    return _uniq(
        [
            *_files("rfc4134/*.bin", "rfc9216-examples-cms/binary-files/*.p7m"),
            _compressed_data(),
            *_der_from_messages(_messages()),
        ]
    )


@functools.cache
def pgp_seeds() -> list[bytes]:
    armored = [m.group(0) for raw in _messages() for m in _ARMOR.finditer(raw)]
    rnp = _files("rnp/test_messages/*")
    return _uniq(rnp + armored[:300])


@functools.cache
def envelope_seeds() -> list[bytes]:
    import os

    from client.envelope import create, page
    from client.envelope import format as fmt

    files = [fmt.Attachment("r.pdf", b"%PDF-1.4 results"), fmt.Attachment("n.txt", b"notes")]
    html = create.create("Hello", files, b"pw-fuzz-0123", now=NOW, rng=os.urandom)
    binary = page.extract(html.data)
    one = [files[0]]
    gpg = create.create("", one, b"pw-fuzz-0123", now=NOW, rng=os.urandom, output="gpg")
    cmsp = create.create("", one, b"pw-fuzz-0123", now=NOW, rng=os.urandom, output="cms")
    manifest = json.dumps(
        {
            "message": "Hello",
            "files": [{"name": "r.pdf", "size": 16, "type": "application/pdf"}],
            "from": "a@example.org",
            "to": "b@example.org",
            "subject": "s",
            "created": NOW.isoformat(),
            "id": "x",
            "in_reply_to": None,
        }
    ).encode()
    plain = struct.pack(">I", len(manifest)) + manifest + b"%PDF-1.4 results"
    vendor = (
        b"<html><body><form action='https://securemail.example.com/formpostdir/"
        b"safeformpost.aspx'><p>You have received a secure message</p><p>Powered by "
        b"Proofpoint Encryption</p><input type=hidden name=msg></form></body></html>"
    )
    msgs = _messages()
    return _uniq(
        [
            html.data,
            binary,
            gpg.data,
            cmsp.data,
            plain,
            vendor,
            *_files("rfc9216-examples-cms/binary-files/*.p7m", "rnp/test_messages/*enc*"),
            *msgs[::10],
        ]
    )


@functools.cache
def policy_seeds() -> list[bytes]:
    example = (REPO / "packaging/policy/example-clinic.json").read_bytes()
    return [
        example,
        b'{"version": 1}',
        b'{"version": 1, "internal_domains": ["Example.ORG"], "minimum_level": "encrypt"}',
        b'{"version": 1, "detectors": {"mrn": {"enabled": false, "threshold": "high"}}}',
        json.dumps(json.loads(example), indent=1).encode("utf-16"),
    ]


# -- the target functions -------------------------------------------------------------------------


def _all(calls: Sequence[Callable[[], object]]) -> None:
    """Run each call; a SealmailError from one does not stop the others. If every call was
    refused, re-raise the first refusal (so the outcome counts as ``refused``)."""
    first: SealmailError | None = None
    passed = False
    for call in calls:
        try:
            call()
            passed = True
        except SealmailError as exc:
            first = first or exc
    if not passed and first is not None:
        raise first


def run_mime(data: bytes) -> None:
    from client.crypto.recipes import Opener
    from client.mime.parse import open_message

    open_message(data, Opener(keys()), now=NOW)


def run_cms(data: bytes) -> None:
    from client.crypto import cms

    ident = keys().smime_identities()[0]
    _all(
        [
            lambda: cms.content_info_type(data),
            lambda: cms.verify(data),
            lambda: cms.verify(data, detached_content=b"Content-Type: text/plain\r\n\r\nx"),
            lambda: cms.decrypt(data, cert=ident.certificate, key=ident.private_key),
            lambda: cms.decrypt(data, password=b"pw"),
            lambda: cms.decompress(data, max_size=1 << 20),
            lambda: cms.describe_recipients(data),
            lambda: cms.extract_certificates(data),
        ]
    )


def run_pgp(data: bytes) -> None:
    from client.crypto import pgparmor, pgpsig, pgpstream

    tsk = keys().pgp_secret_keys()[0][0]

    def issuers() -> object:
        binary = pgparmor.dearmor(data) if pgparmor.is_armored(data) else data
        return pgpsig.signature_issuers(binary)

    _all(
        [
            lambda: pgparmor.dearmor(data),
            lambda: pgparmor.dearmor(data, check_crc=True),
            lambda: pgpstream.decrypt(data, secret_keys=[tsk], max_output=1 << 22),
            lambda: pgpstream.decrypt(data, passwords=[b"password"], max_output=1 << 22),
            issuers,
            lambda: pgpsig.split_cleartext(data),
        ]
    )


def run_envelope(data: bytes) -> None:
    from client.envelope import format as fmt
    from client.envelope import open as env_open
    from client.envelope import page

    _all(
        [
            lambda: fmt.parse(data),
            lambda: fmt.parse(page.extract(data)),
            lambda: env_open.detect(data, "SecureMessage.html"),
            lambda: env_open.open_bytes(
                data, keys=keys(), password=lambda: None, now=NOW, filename="message.p7m"
            ),
            lambda: fmt._contents(fmt.Kind.ENVELOPE, data),
        ]
    )


def run_protect(data: bytes) -> None:
    """Differential: the streaming protect path must build exactly the inner entity the
    in-memory one builds, refuse alike, or hand the message over (None)."""
    import random

    from client.mime import compose
    from tests.helpers.streaming import streamed_inner

    def rng() -> Callable[[int], bytes]:
        return random.Random(7).randbytes

    sizes = [1 + data[-1] % 97, 4096] if data else [1]
    try:
        expected: bytes | None = compose.prepare(data, encrypt=True, now=NOW, rng=rng()).inner
    except SealmailError:
        expected = None
    try:
        got = streamed_inner(data, sizes, now=NOW, rng=rng())
    except SealmailError:
        if expected is not None:
            raise AssertionError("streaming refused what prepare() protects") from None
        return
    if got is not None and got != expected:
        raise AssertionError("streaming built another inner entity than prepare()")


def _smime_message(inner: bytes) -> bytes:
    """``inner`` encrypted (deterministically) to the fuzz keyring's S/MIME identity; first
    signed by it as opaque signed data (Outlook's shape) when its length is odd."""
    import random

    from client.crypto import cms
    from client.mime.raw import b64_lines

    ident = keys().smime_identities()[0]
    cert = ident.certificate
    if len(inner) % 2:
        signed = cms.sign(
            inner, signer_cert=cert, signer_key=ident.private_key, detached=False, now=NOW
        )
        inner = (
            b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + b64_lines(signed)
        )
    der = cms.encrypt(inner, [cert], rng=random.Random(len(inner)).randbytes)
    return (
        b"From: manager@bigcorporation.com\r\nTo: manager@bigcorporation.com\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; "
        b"smime-type=enveloped-data; name=smime.p7m\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64_lines(der)
    )


def _pgp_message(inner: bytes) -> bytes:
    """``inner`` as PGP/MIME, encrypted (deterministically) to the fuzz keyring's key,
    signed by it with one-pass packets when the input says so; when its length is a
    multiple of 3, encrypted by Sequoia to the keyring's SEIPD v2 key instead."""
    import random

    import pysequoia

    from client.crypto import pgparmor, pgpstream
    from tests.helpers.messages import pgp_mime_encrypted

    cert = keys()._tsk  # its public part is what encrypt() reads
    signed = inner[-1:] in b"02468"
    tsk = pysequoia.Tsk.from_bytes(keys()._tsk)
    if len(inner) % 3 == 0:  # Sequoia's SEIPD v2 (OCB chunks; not deterministic)
        v2 = pysequoia.Tsk.from_bytes(keys().seipd2).extract_certificate()
        armored = pysequoia.encrypt(inner, recipients=[v2], signer=tsk.signer() if signed else None)
        return pgp_mime_encrypted(
            "From: manager@bigcorporation.com\nTo: manager@bigcorporation.com", armored
        )
    packets = pgpstream.literal_packet(inner)
    if signed:
        packets = pysequoia.sign(tsk.signer(), inner, armor=False)
    binary = pgpstream.encrypt(
        packets, recipients=[cert], rng=random.Random(len(inner)).randbytes, now=NOW
    )
    return pgp_mime_encrypted(
        "From: manager@bigcorporation.com\nTo: manager@bigcorporation.com",
        pgparmor.enarmor(binary),
    )


def run_open(data: bytes) -> None:
    """Differential: the streaming opener (with small hole sizes, so base64 runs are cut
    out of the skeleton) must give the in-memory opener's message and report, raise
    its error, or hand the message over (None)."""
    import random

    from client.crypto import streamopen
    from client.crypto.recipes import open_raw
    from client.verifyproc import ForkVerifiers
    from tests.helpers.streaming import cut

    message = _pgp_message(data) if data[:1] in b"-CFT" else _smime_message(data)
    try:
        opened = open_raw(message, keys(), now=NOW)
        expected: tuple[bytes, object] | type[BaseException] = (
            opened.message,
            opened.report.to_json(),
        )
    except SealmailError as exc:
        expected = type(exc)
    sizes = [1 + (data[-1] if data else 0) % 97, 4096]
    # 64: every base64 run is cut out; 4096: a signature part stays (the signed path)
    saved, streamopen.HOLE_MIN = streamopen.HOLE_MIN, 4096 if data[:1] in b"-CM" else 64
    try:
        streamed = streamopen.open_stream(
            lambda: cut(message, sizes), keys(), now=NOW, rng=random.Random(1).randbytes,
            verifiers=ForkVerifiers(),
        )  # fmt: skip
        if streamed is None:
            return
        try:
            got: tuple[bytes, object] | type[BaseException] = (
                b"".join(streamed.pieces),
                streamed.report().to_json(),
            )
        except SealmailError as exc:
            got = type(exc)
    finally:
        streamopen.HOLE_MIN = saved
    if got != expected:
        raise AssertionError(f"streaming opened otherwise than in memory: {got!r:.200}")


def run_policy(data: bytes) -> None:
    from client.policy.orgpolicy import parse_policy

    parse_policy(data)


@dataclass(frozen=True)
class Target:
    name: str
    func: Callable[[bytes], None]
    seeds: Callable[[], list[bytes]]
    time_limit: float = 5.0
    masked: tuple[type[BaseException], ...] = ()


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("mime", run_mime, mime_seeds, 10.0, MASKED),
        Target("cms", run_cms, cms_seeds),
        Target("pgp", run_pgp, pgp_seeds),
        Target("envelope", run_envelope, envelope_seeds),
        Target("policy", run_policy, policy_seeds),
        Target("protect", run_protect, mime_seeds),
        Target("open", run_open, mime_seeds),
    )
}
