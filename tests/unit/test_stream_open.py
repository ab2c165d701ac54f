"""Opening S/MIME-encrypted message files in bounded memory (client/crypto/streamopen.py).

The judge is the in-memory opener: for every message the streaming path takes, the
opened message must be byte for byte ``message_open``'s and the security report equal
(signatures, layers, protected headers, warnings). Messages come from ../shared/corpus
(third-party), from Sealmail's own protect (signed or not, CBC and GCM, with long
attachments so parts are cut out of the skeleton), from ``openssl cms -encrypt`` and from
``openssl cms -sign -nodetach`` then ``-encrypt`` (opaque signed data inside the envelope,
as Outlook sends it; DER and ``-stream``'s BER with its segmented content).
"""

from __future__ import annotations

import base64
import email
import email.policy
import multiprocessing
import os
import subprocess
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pysequoia
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.crypto import pgparmor, streamopen
from client.crypto.pgppackets import Tag, parse_packets
from client.errors import TamperedMessage, UsageError
from client.services import Session
from keystore.secrets import KdfParams
from keystore.store import Keystore
from tests.helpers.messages import make_message, pgp_mime_encrypted
from tests.helpers.mime_trees import trees
from tests.helpers.pki import make_pki
from tests.vectors import profiles
from tests.vectors.expectations import VECTORS
from tests.vectors.vector import load

NOW = datetime.now(UTC)
_PEM = serialization.Encoding.PEM


def _pieces(data: bytes, n: int = 4096) -> Callable[[], Iterator[bytes]]:
    def source() -> Iterator[bytes]:
        for i in range(0, len(data), n):
            yield data[i : i + n]

    return source


def _same_as_in_memory(
    session: Session, raw: bytes, now: datetime, n: int = 4096, *, fresh: bool = False
) -> bool:
    """Open ``raw`` both ways; True if it streamed (and then agreed exactly). ``fresh``:
    in a new one-thread process (the OpenPGP signature verifier forks, which the streaming
    path only does in a process without other threads; pytest's fixtures run some)."""
    if fresh:
        got = _fresh(_open_both, _PROFILES[id(session)], raw, now, n, streamopen.HOLE_MIN)
        assert got in (None, True), "streamed, but not as in memory"
        return got is True
    streamed = session.message_open_stream(_pieces(raw, n), now=now)
    if streamed is None:
        return False
    out = b"".join(streamed.pieces)
    opened = session.message_open(raw, now=now)
    assert out == opened.message
    assert streamed.report().to_json() == opened.report.to_json()
    return True


_PROFILES: dict[int, Path] = {}  # id(session) -> its keystore directory


def _keystore(directory: Path) -> Keystore:
    return Keystore.open(
        directory, passphrase="pp", env={}, secret_store="passphrase", kdf=KdfParams(n=2**10)
    )


def _fresh(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a new process started with spawn (one thread)."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(fn, args)


def _open_both(
    profile: Path, raw: bytes, now: datetime, n: int, hole_min: int
) -> bool | None:  # runs in the fresh process
    """None: not streamed; True: streamed exactly as in memory; False: streamed otherwise."""
    streamopen.HOLE_MIN = hole_min
    session = Session(_keystore(profile))
    try:
        streamed = session.message_open_stream(_pieces(raw, n), now=now)
        if streamed is None:
            return None
        out = b"".join(streamed.pieces)
        opened = session.message_open(raw, now=now)
        return out == opened.message and streamed.report().to_json() == opened.report.to_json()
    finally:
        session.close()


def _measure_open(profile: Path, raw: bytes, now: datetime, n: int) -> tuple[int, int, list[str]]:
    """(octets written, peak Python allocation, signature statuses) of a streamed open, in
    the fresh process."""
    session = Session(_keystore(profile))
    try:
        tracemalloc.start()
        streamed = session.message_open_stream(_pieces(raw, n), now=now)
        assert streamed is not None
        written = sum(len(piece) for piece in streamed.pieces)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return written, peak, [s.status for s in streamed.report().signatures]
    finally:
        session.close()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Session, Session]]:
    """Alice and Bob, each with an S/MIME identity, each knowing the other's certificate."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    root = tmp_path_factory.mktemp("stream-open")
    pki = make_pki()
    leaves = {
        "alice": pki.leaf("alice@example.org", "p256"),
        "bob": pki.leaf("bob@example.net", "rsa2048"),
    }
    sessions = []
    for name in ("alice", "bob"):
        ks = _keystore(root / name)
        ks.import_bytes(pki.root.public_bytes(_PEM), trust=True)
        leaf = leaves[name]
        p12 = pkcs12.serialize_key_and_certificates(
            b"own", leaf.key, leaf.cert, [pki.intermediate],  # type: ignore[arg-type]
            serialization.BestAvailableEncryption(b"pw"),
        )  # fmt: skip
        ks.import_bytes(p12, passphrase=b"pw")
        other = leaves["bob" if name == "alice" else "alice"]
        ks.import_bytes(other.cert_pem() + pki.intermediate.public_bytes(_PEM))
        ks.generate_pgp(leaf.email, now=NOW - timedelta(minutes=5))
        sessions.append(Session(ks))
        _PROFILES[id(sessions[-1])] = root / name
    for me, other in ((sessions[0], sessions[1]), (sessions[1], sessions[0])):
        me.store.import_bytes(other.store.export_public(_own_pgp(other)))
    yield sessions[0], sessions[1]
    for s in sessions:
        s.close()
    mp.undo()


def _own_pgp(session: Session) -> str:
    return next(k.fingerprint for k in session.store.list(kind="pgp") if k.secret)


@pytest.fixture
def small_holes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut runs of base64 lines out of the skeleton from 4 KiB on (not 64 KiB): small
    attachments are cut out, a signature (~2.6 KB of base64) is not."""
    monkeypatch.setattr(streamopen, "HOLE_MIN", 4096)


def _corpus_both(tmp: Path) -> tuple[list[str], int, list[str]]:  # runs in the fresh process
    """(streamed, tried, streamed otherwise than in memory) over the corpus."""
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    streamopen.HOLE_MIN = 4096  # as small_holes
    built: dict[str, Session] = {}
    streamed, tried, wrong = [], 0, []
    try:
        for v in VECTORS:
            if v.error is not None or v.xfail:
                continue
            if v.profile not in built:
                built[v.profile] = Session(profiles.build(v.profile, tmp / v.profile))
            session, raw = built[v.profile], load(v.path)
            tried += 1
            got = session.message_open_stream(_pieces(raw, 777), now=v.now)
            if got is None:
                continue
            out = b"".join(got.pieces)
            opened = session.message_open(raw, now=v.now)
            streamed.append(v.path)
            if out != opened.message or got.report().to_json() != opened.report.to_json():
                wrong.append(v.path)
    finally:
        for s in built.values():
            s.close()
    return streamed, tried, wrong


def test_corpus_messages_stream_exactly_as_in_memory(tmp_path: Path) -> None:
    """In a one-thread process, as the ``sealmail`` command runs: signed OpenPGP (one-pass
    signatures, and Thunderbird's multipart/signed inside the encryption) streams too."""
    streamed, tried, wrong = _fresh(_corpus_both, tmp_path)
    assert not wrong
    # S/MIME envelopes (opaque signed data inside included) and PGP/MIME with one key for us
    assert len(streamed) >= 60, streamed  # 63 of 278 on 2026-11-24
    assert tried > len(streamed)
    for shape in (
        "thunderbird-smime/alice.sig.SHA256.opaque.env.eml",  # opaque signed in an envelope
        "thunderbird-smime/alice.dsig.SHA256.multipart.env.eml",  # multipart/signed in one
        "deltachat/message/thunderbird_encrypted_signed.eml",  # OpenPGP multipart/signed
        "autocrypt-protected-headers/pgpmime-sign+enc.eml",  # one-pass signatures
        "autocrypt-protected-headers/pgpmime-layered.eml",
        "thunderbird-openpgp/eml-rc-remote-content/rc-openpgp-aead.eml",  # OCB packet
    ):
        assert shape in streamed, shape


@pytest.mark.parametrize("method", ["smime", "pgp"])
@pytest.mark.parametrize("sign", [False, True])
@pytest.mark.parametrize(
    "attachments",
    [[], [("scan.bin", 3 << 20)], [("a.bin", 200_000), ("b.pdf", 70_000), ("c.bin", 10)]],
    ids=["text-only", "one-large", "three"],
)
def test_sealmail_messages_stream_exactly_as_in_memory(
    pair: tuple[Session, Session],
    small_holes: None,
    method: str,
    sign: bool,
    attachments: list[tuple[str, int]],
) -> None:
    alice, bob = pair
    raw = make_message(
        "alice@example.org", "bob@example.net", body="Dose: 5 mg\n",
        attachments=[(name, os.urandom(size)) for name, size in attachments],
    )  # fmt: skip
    protected = alice.message_encrypt(
        raw, to=["bob@example.net"], sender="alice@example.org", method=method, sign=sign,
        now=NOW, rng=os.urandom,
    )  # fmt: skip
    fresh = sign and method == "pgp"
    assert _same_as_in_memory(bob, protected, NOW, n=65536, fresh=fresh)
    report = bob.message_open(protected, now=NOW).report
    assert report.encrypted
    assert [s.status for s in report.signatures] == (["good"] if sign else [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.sampled_from(["smime", "smime-signed", "pgp"]), st.integers(1, 5000))
def test_generated_trees_open_by_streaming_as_in_memory(
    pair: tuple[Session, Session], tree: EmailMessage, how: str, piece: int
) -> None:
    """Any MIME tree (text in 8bit, base64 or quoted-printable, HTML, files with odd names,
    images, forwarded messages, nesting), protected by Sealmail and opened from pieces of
    any size with base64 runs cut out of the skeleton: streaming gives the in-memory
    message and report, or hands over."""
    alice, bob = pair
    tree["From"], tree["To"], tree["Subject"] = "alice@example.org", "bob@example.net", "Grüße"
    raw = tree.as_bytes(policy=email.policy.SMTP)
    protected = alice.message_encrypt(
        raw, to=["bob@example.net"], sender="alice@example.org", method=how.split("-")[0],
        sign=how.endswith("signed"), now=NOW, rng=os.urandom,
    )  # fmt: skip
    # 64: every base64 run is cut out; 4096 keeps a signature part (~2.6 KB) in
    saved, streamopen.HOLE_MIN = streamopen.HOLE_MIN, 4096 if how.endswith("signed") else 64
    try:
        streamed = _same_as_in_memory(bob, protected, NOW, n=piece)
    finally:
        streamopen.HOLE_MIN = saved
    report = bob.message_open(protected, now=NOW).report
    assert report.encrypted
    assert [s.status for s in report.signatures] == (["good"] if how.endswith("signed") else [])
    if streamed:  # the opened message is the tree again (what protect re-encoded aside)
        opened = email.message_from_bytes(bob.message_open(protected, now=NOW).message)
        leaves = [p.get_content_type() for p in opened.walk()]
        assert leaves == [p.get_content_type() for p in tree.walk()]


def test_a_forged_signed_part_is_bad_as_in_memory(
    pair: tuple[Session, Session], small_holes: None, tmp_path: Path
) -> None:
    """The streamed digest covers the signed part: one octet changed inside it (the inner
    entity forged and encrypted again by openssl) gives "bad", as in memory."""
    from client.crypto import cms

    alice, bob = pair
    raw = make_message(
        "alice@example.org", "bob@example.net", body="Dose: 5 mg\n",
        attachments=[("scan.bin", os.urandom(100_000))],
    )  # fmt: skip
    protected = alice.message_encrypt(
        raw, to=["bob@example.net"], sender="alice@example.org", method="smime", sign=True,
        now=NOW, rng=os.urandom,
    )  # fmt: skip
    ident = bob.keys.smime_identities()[0]
    body = protected.split(b"\r\n\r\n", 1)[1]
    inner = cms.decrypt(
        __import__("base64").b64decode(body), cert=ident.certificate, key=ident.private_key
    ).content
    forged = inner.replace(b"Dose: 5 mg", b"Dose: 9 mg")
    assert forged != inner
    (tmp_path / "inner").write_bytes(forged)
    (tmp_path / "bob.pem").write_bytes(ident.certificate.public_bytes(_PEM))
    subprocess.run(
        ["openssl", "cms", "-encrypt", "-binary", "-aes256", "-in", str(tmp_path / "inner"),
         "-out", str(tmp_path / "out"), str(tmp_path / "bob.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    # openssl's header, with Alice's From and To so the signer is matched as usual
    message = b"From: alice@example.org\r\nTo: bob@example.net\r\n" + (
        tmp_path / "out"
    ).read_bytes().replace(b"\n", b"\r\n")
    assert _same_as_in_memory(bob, message, NOW)
    report = bob.message_open(message, now=NOW).report
    assert [s.status for s in report.signatures] == ["bad"]


@pytest.mark.parametrize("lines", [3, 2000])
def test_text_parts_are_never_cut_out(
    pair: tuple[Session, Session], small_holes: None, lines: int
) -> None:
    """A base64 text part is read by the report (inline OpenPGP warnings). A short one
    stays in the skeleton and streams; a long one would be cut out, so the message is
    opened in memory instead. Either way the report warns."""
    from email.message import EmailMessage

    alice, bob = pair
    block = "-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.org", "bob@example.net", "t"
    msg.set_content("hi\n")
    msg.add_attachment("see below\n" + block + "more text\n" * lines, subtype="plain", cte="base64")
    msg.add_attachment(os.urandom(9000), maintype="application", subtype="octet-stream")
    protected = alice.message_encrypt(
        msg.as_bytes(), to=["bob@example.net"], sender="alice@example.org", method="smime",
        sign=True, now=NOW, rng=os.urandom,
    )  # fmt: skip
    assert _same_as_in_memory(bob, protected, NOW) == (lines == 3)
    report = bob.message_open(protected, now=NOW).report
    assert any("OpenPGP" in w for w in report.warnings), report.warnings


def test_openssl_made_envelopes_stream(pair: tuple[Session, Session], tmp_path: Path) -> None:
    _, bob = pair
    bob_cert = tmp_path / "bob.pem"
    bob_cert.write_bytes(bob.keys.smime_identities()[0].certificate.public_bytes(_PEM))
    raw = make_message(
        "alice@example.org", "bob@example.net", body="from openssl\n",
        attachments=[("scan.bin", os.urandom(300_000))],
    )  # fmt: skip
    (tmp_path / "in.eml").write_bytes(raw)
    for cipher in ("-aes256", "-aes-128-gcm"):
        subprocess.run(
            ["openssl", "cms", "-encrypt", cipher, "-in", str(tmp_path / "in.eml"),
             "-out", str(tmp_path / "out.eml"), str(bob_cert)],
            check=True, capture_output=True,
        )  # fmt: skip
        assert _same_as_in_memory(bob, (tmp_path / "out.eml").read_bytes(), NOW), cipher


def _openssl_opaque(
    alice: Session,
    bob: Session,
    tmp_path: Path,
    inner: bytes,
    *,
    cipher: str,
    stream: bool,
    forge: bytes | None = None,
) -> bytes:
    """``inner`` signed by Alice as opaque signed data, then encrypted for Bob, both by
    openssl (Outlook's shape); ``forge``: an octet string changed inside the signed data."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    ident = alice.keys.smime_identities()[0]
    (tmp_path / "a.pem").write_bytes(ident.certificate.public_bytes(_PEM))
    (tmp_path / "a.key").write_bytes(
        ident.private_key.private_bytes(  # type: ignore[union-attr]
            _PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "b.pem").write_bytes(bob.keys.smime_identities()[0].certificate.public_bytes(_PEM))
    (tmp_path / "inner").write_bytes(inner)
    streaming = ["-stream"] if stream else []
    subprocess.run(
        ["openssl", "cms", "-sign", "-nodetach", *streaming, "-in", str(tmp_path / "inner"),
         "-signer", str(tmp_path / "a.pem"), "-inkey", str(tmp_path / "a.key"),
         "-out", str(tmp_path / "signed")],
        check=True, capture_output=True,
    )  # fmt: skip
    signed = (tmp_path / "signed").read_bytes()
    if forge is not None:
        import base64

        head, body = signed.split(b"\n\n", 1)
        der = base64.b64decode(body)
        assert forge in der
        forged = der.replace(forge, bytes([forge[0] ^ 1]) + forge[1:])
        signed = head + b"\n\n" + base64.encodebytes(forged)
        (tmp_path / "signed").write_bytes(signed)
    subprocess.run(
        ["openssl", "cms", "-encrypt", cipher, *streaming, "-in", str(tmp_path / "signed"),
         "-out", str(tmp_path / "out"), str(tmp_path / "b.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return b"From: alice@example.org\r\nTo: bob@example.net\r\n" + (
        tmp_path / "out"
    ).read_bytes().replace(b"\n", b"\r\n")


@pytest.mark.parametrize("stream", [False, True], ids=["der", "ber-stream"])
@pytest.mark.parametrize("cipher", ["-aes256", "-aes-128-gcm"])
def test_opaque_signed_data_inside_an_envelope_streams(
    pair: tuple[Session, Session], small_holes: None, tmp_path: Path, cipher: str, stream: bool
) -> None:
    """Outlook signs (opaque) then encrypts: the signed data's content streams too, its
    digest taken on the way; the report is the in-memory one, signature "good"."""
    alice, bob = pair
    inner = make_message(
        "alice@example.org", "bob@example.net", body="Dose: 5 mg\n",
        attachments=[("scan.bin", os.urandom(300_000)), ("b.bin", os.urandom(20))],
    )  # fmt: skip
    message = _openssl_opaque(alice, bob, tmp_path, inner, cipher=cipher, stream=stream)
    assert b"nveloped-data" in message  # (GCM: authEnveloped-data)
    assert _same_as_in_memory(bob, message, NOW, n=1000)
    report = bob.message_open(message, now=NOW).report
    assert [s.status for s in report.signatures] == ["good"]
    assert report.encrypted


def test_forged_opaque_signed_data_is_bad_as_in_memory(
    pair: tuple[Session, Session], small_holes: None, tmp_path: Path
) -> None:
    """One octet of the signed content changed (then encrypted again): "bad" both ways."""
    alice, bob = pair
    inner = make_message(
        "alice@example.org", "bob@example.net", body="Dose: 5 mg\n",
        attachments=[("scan.bin", os.urandom(100_000))],
    )  # fmt: skip
    message = _openssl_opaque(
        alice, bob, tmp_path, inner, cipher="-aes256", stream=False, forge=b"Dose: 5 mg"
    )
    assert _same_as_in_memory(bob, message, NOW)
    report = bob.message_open(message, now=NOW).report
    assert [s.status for s in report.signatures] == ["bad"]


@pytest.mark.parametrize("method", ["smime", "pgp", "opaque"])
def test_large_message_opens_in_bounded_memory(
    pair: tuple[Session, Session], tmp_path: Path, method: str
) -> None:
    """Read in 16 KiB pieces (gpg's partial lengths are as short): the skeleton still
    leaves the attachment out, and nothing holds the message. "opaque": opaque signed data
    in an envelope, both made by openssl with -stream (BER, segmented content)."""
    alice, bob = pair
    payload = os.urandom(16 << 20)
    raw = make_message(
        "alice@example.org", "bob@example.net", body="scan attached\n",
        attachments=[("scan.bin", payload)],
    )  # fmt: skip
    if method == "opaque":
        protected = _openssl_opaque(alice, bob, tmp_path, raw, cipher="-aes256", stream=True)
    else:
        protected = alice.message_encrypt(
            raw, to=["bob@example.net"], sender="alice@example.org", method=method, sign=True,
            now=NOW, rng=os.urandom,
        )  # fmt: skip
    del raw
    # a fresh process: the OpenPGP verifier forks only where no other thread runs
    written, peak, statuses = _fresh(_measure_open, _PROFILES[id(bob)], protected, NOW, 16384)
    assert written > len(payload)
    assert statuses == ["good"]
    # the message is 30 MB; in memory it is held several times over
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB of Python allocations"


def test_in_memory_pgp_open_copies_neither_the_armor_nor_the_plaintext(
    pair: tuple[Session, Session],
) -> None:
    """The app opens in memory (``message_open``). A signed PGP/MIME message's armor is
    read where it lies in the fetched message, SEIPD v1 is decrypted from a view of its
    packet, and the signature is checked over the literal data: Python's peak is about
    three copies of the binary ciphertext (its packet body, the plaintext in pieces and
    joined). Copying the armored part out first, or the ciphertext and the plaintext
    once more, had it at 3.2x the message (4.3x at the start of this work)."""
    alice, bob = pair
    raw = make_message(
        "alice@example.org", "bob@example.net", body="scan attached\n",
        attachments=[("scan.bin", os.urandom(8 << 20))],
    )  # fmt: skip
    protected = alice.message_encrypt(
        raw, to=["bob@example.net"], sender="alice@example.org", method="pgp", sign=True,
        now=NOW, rng=os.urandom,
    )  # fmt: skip
    del raw
    bob.message_open(protected, now=NOW)  # imports and key loading, not measured
    tracemalloc.start()
    try:
        opened = bob.message_open(protected, now=NOW)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [s.status for s in opened.report.signatures] == ["good"]
    assert peak < 2.6 * len(protected), f"peak {peak / len(protected):.2f}x the message"


@pytest.mark.parametrize("when", [2, 3, 4])
def test_a_file_that_changes_between_passes_is_refused(
    pair: tuple[Session, Session], when: int
) -> None:
    """The file is read four times: the layer pass, a look at the start of the content
    (opaque signed data inside?), the skeleton pass, the output pass. A change seen
    before the output pass sends the message to memory; during it, the open fails."""
    alice, bob = pair
    first, second = (
        alice.message_encrypt(
            make_message("alice@example.org", "bob@example.net", body=text),
            to=["bob@example.net"],
            sender="alice@example.org",
            method="smime",
            now=NOW,
            rng=os.urandom,
        )
        for text in ("version one\n", "version two\n")
    )
    calls: list[int] = []

    def source() -> Iterable[bytes]:
        calls.append(1)
        return [first if len(calls) < when else second]

    streamed = bob.message_open_stream(source, now=NOW)
    if when < 4:  # before the output pass: nothing was output, it goes in memory
        assert streamed is None
        return
    assert streamed is not None  # during the output pass: refused mid-way
    with pytest.raises(UsageError, match="changed while it was being opened"):
        b"".join(streamed.pieces)


def test_opaque_signed_file_that_changes_is_refused(
    pair: tuple[Session, Session], tmp_path: Path
) -> None:
    """Opaque signed data: a file replaced by another during the output pass (the same
    header, other signed content) is refused mid-way; the atomic write keeps nothing."""
    alice, bob = pair
    versions = [
        _openssl_opaque(
            alice, bob, tmp_path / str(i), make_message(
                "alice@example.org", "bob@example.net", body=text,
                attachments=[("scan.bin", os.urandom(100_000))],
            ), cipher="-aes256", stream=False,
        )
        for i, text in enumerate(("version one\n", "version two\n"))
    ]  # fmt: skip
    calls: list[int] = []

    def source() -> Iterable[bytes]:
        calls.append(1)
        return [versions[0] if len(calls) < 4 else versions[1]]

    streamed = bob.message_open_stream(source, now=NOW)
    assert streamed is not None
    with pytest.raises(UsageError, match="changed while it was being opened"):
        b"".join(streamed.pieces)


def test_not_streamed_when_it_cannot_be(pair: tuple[Session, Session]) -> None:
    """Mail that is not S/MIME-encrypted goes in memory (None)."""
    alice, bob = pair
    raw = make_message("alice@example.org", "bob@example.net", body="hello\n")
    signed = alice.message_sign(
        raw, sender="alice@example.org", method="smime", now=NOW, rng=os.urandom
    )
    for data in (raw, signed):
        assert bob.message_open_stream(_pieces(data), now=NOW + timedelta(seconds=1)) is None


@pytest.fixture(scope="module")
def carol(pair: tuple[Session, Session], tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[Session, pysequoia.Tsk]
]:  # fmt: skip
    """Carol's key is Sequoia's own (it announces SEIPD v2); she knows Alice's key."""
    alice, _ = pair
    path = tmp_path_factory.mktemp("carol")
    tsk = pysequoia.Tsk.generate("Carol <carol@example.com>")
    ks = _keystore(path)
    ks.import_bytes(bytes(tsk))
    ks.import_bytes(alice.store.export_public(_own_pgp(alice)))
    session = Session(ks)
    _PROFILES[id(session)] = path
    yield session, tsk
    session.close()


@pytest.mark.parametrize("sign", [False, True])
def test_sequoia_made_seipd_v2_streams(
    pair: tuple[Session, Session],
    carol: tuple[Session, pysequoia.Tsk],
    small_holes: None,
    sign: bool,
) -> None:
    """Sequoia encrypts to a key that announces SEIPD v2 with chunked AEAD (OCB): the
    chunks are opened as they stream; signed with one-pass signatures too."""
    alice, _ = pair
    session, tsk = carol
    inner = make_message(
        "alice@example.org", "carol@example.com", body="Dose: 5 mg\n",
        attachments=[("a.bin", os.urandom(300_000))],
    ).replace(b"\n", b"\r\n")  # fmt: skip
    signer = pysequoia.Tsk.from_bytes(alice.store.export_secret_pgp(_own_pgp(alice)))
    armored = pysequoia.encrypt(
        inner, recipients=[tsk.extract_certificate()],
        signer=signer.signer() if sign else None,
    )  # fmt: skip
    binary = pgparmor.dearmor(armored)
    seipd = [p for p in parse_packets(binary) if p.tag == Tag.SEIPD]
    assert seipd and seipd[0].body[0] == 2  # SEIPD v2

    def message(payload: bytes) -> bytes:
        return pgp_mime_encrypted(
            "From: alice@example.org\nTo: carol@example.com", payload
        ).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # fmt: skip

    assert _same_as_in_memory(session, message(armored), NOW, fresh=sign)
    report = session.message_open(message(armored), now=NOW).report
    assert report.layers[0].integrity == "AEAD-OCB"
    assert [s.status for s in report.signatures] == (["good"] if sign else [])
    # one octet of a chunk changed: the streaming path hands over; in memory it is refused
    broken = bytearray(binary)
    broken[len(broken) // 2] ^= 1
    tampered = message(pgparmor.enarmor(bytes(broken)))
    assert session.message_open_stream(_pieces(tampered), now=NOW) is None
    with pytest.raises(TamperedMessage):
        session.message_open(tampered, now=NOW)


def test_seipd_v2_chunk_boundaries_stream_as_in_memory(
    carol: tuple[Session, pysequoia.Tsk],
) -> None:
    """Plaintext lengths around a chunk boundary (Sequoia writes 4 KiB chunks), read in
    1000-octet pieces: every length streams and agrees with memory."""
    session, tsk = carol
    cert = tsk.extract_certificate()
    for n in range(8100, 8200):
        inner = b"Content-Type: text/plain\r\n\r\n" + b"x" * n
        armored = pysequoia.encrypt(inner, recipients=[cert])
        message = pgp_mime_encrypted("From: a@example.org\nTo: carol@example.com", armored)
        message = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        assert _same_as_in_memory(session, message, NOW, n=1000), n


@pytest.fixture
def gpg(pair: tuple[Session, Session], tmp_path: Path) -> Iterator[list[str]]:
    """A gpg command line over a fresh home holding Alice's secret key and Bob's public
    one; its gpg-agent is stopped afterwards (no daemon outlives the test)."""
    alice, bob = pair
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    cmd = ["gpg", "--homedir", str(home), "--batch", "--yes", "--trust-model", "always"]
    (tmp_path / "bob.asc").write_bytes(bob.store.export_public(_own_pgp(bob)))
    (tmp_path / "alice.sec").write_bytes(alice.store.export_secret_pgp(_own_pgp(alice)))
    subprocess.run([*cmd, "--import", str(tmp_path / "bob.asc"), str(tmp_path / "alice.sec")],
                   check=True, capture_output=True)  # fmt: skip
    yield cmd
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
                   check=False, capture_output=True)  # fmt: skip


@pytest.mark.parametrize("forged", [False, True], ids=["signed", "forged"])
def test_gpg_signed_part_inside_the_encryption_streams(
    pair: tuple[Session, Session],
    small_holes: None,
    tmp_path: Path,
    gpg: list[str],
    forged: bool,
) -> None:
    """Thunderbird's shape: a multipart/signed (gpg's detached signature) encrypted again
    by gpg. The signed part goes to a verifier as it is written; one octet changed inside
    it after signing gives "bad", as in memory."""
    _, bob = pair
    part = (
        b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n--inner\r\n"
        b"Content-Type: text/plain\r\n\r\nDose: 5 mg\r\n--inner\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(os.urandom(200_000)).replace(b"\n", b"\r\n")
        + b"--inner--\r\n"
    )
    (tmp_path / "part").write_bytes(part)
    subprocess.run([*gpg, "--armor", "--detach-sign", "-u", "alice@example.org", "-o",
                    str(tmp_path / "part.sig"), str(tmp_path / "part")],
                   check=True, capture_output=True)  # fmt: skip
    if forged:
        part = part.replace(b"Dose: 5 mg", b"Dose: 9 mg")
    signed = (
        b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: x\r\n"
        b'Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature";'
        b" boundary=sig\r\n\r\n--sig\r\n" + part + b"\r\n--sig\r\n"
        b"Content-Type: application/pgp-signature\r\n\r\n"
        + (tmp_path / "part.sig").read_bytes().replace(b"\n", b"\r\n")
        + b"\r\n--sig--\r\n"
    )
    (tmp_path / "inner").write_bytes(signed)
    subprocess.run(
        [*gpg, "--armor", "--encrypt", "-r", "bob@example.net", "-o", str(tmp_path / "enc.asc"),
         str(tmp_path / "inner")],
        check=True, capture_output=True,
    )  # fmt: skip
    message = (
        pgp_mime_encrypted(
            "From: alice@example.org\nTo: bob@example.net", (tmp_path / "enc.asc").read_bytes()
        )
        .replace(b"\r\n", b"\n")
        .replace(b"\n", b"\r\n")
    )
    assert _same_as_in_memory(bob, message, NOW, fresh=True)
    sigs = bob.message_open(message, now=NOW).report.signatures
    assert [s.status for s in sigs] == (["bad"] if forged else ["good"])


def test_gpg_made_pgp_mime_streams(
    pair: tuple[Session, Session], small_holes: None, tmp_path: Path, gpg: list[str]
) -> None:
    """gpg compresses (ZLIB/ZIP) and signs with one-pass packets: both stream."""
    _, bob = pair
    inner = make_message(
        "alice@example.org", "bob@example.net", attachments=[("a.bin", os.urandom(200_000))]
    ).replace(b"\n", b"\r\n")
    (tmp_path / "inner").write_bytes(inner)
    for extra in ([], ["--sign", "-u", "alice@example.org"], ["--compress-algo", "zip", "--sign"]):
        subprocess.run(
            [*gpg, "--armor", "--encrypt", "-r", "bob@example.net", *extra, "-o",
             str(tmp_path / "enc.asc"), str(tmp_path / "inner")],
            check=True, capture_output=True,
        )  # fmt: skip
        armored = (tmp_path / "enc.asc").read_bytes().replace(b"\n", b"\r\n")
        message = (
            b"From: alice@example.org\r\nTo: bob@example.net\r\nSubject: x\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; "
            b'protocol="application/pgp-encrypted"; boundary="b1"\r\n\r\n'
            b"--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n"
            b'--b1\r\nContent-Type: application/octet-stream; name="encrypted.asc"\r\n\r\n'
            + armored
            + b"\r\n--b1--\r\n"
        )
        assert _same_as_in_memory(bob, message, NOW, fresh=bool(extra)), extra
        sigs = bob.message_open(message, now=NOW).report.signatures
        assert [s.status for s in sigs] == (["good"] if extra else []), extra
