"""Unit tests of the OpenPGP message layer (client.crypto.pgp*), without gpg.

Vectors: RFC 9580 Appendix A and the rnp / Thunderbird messages in the shared corpus
(``../shared/corpus``, see its MANIFEST.md sections 2 and 8 for origin and the keys);
everything else is made here with pysequoia or our own serialiser.
"""

from __future__ import annotations

import bz2
import email
import random
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pysequoia
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.crypto import (
    pgpalgos,
    pgparmor,
    pgpdata,
    pgpkeys,
    pgppackets,
    pgprecipients,
    pgpsession,
    pgpstream,
)
from client.crypto.pgppackets import Tag, parse_packets, serialize_packet
from client.errors import (
    BadPassword,
    DecryptionFailed,
    InvalidKeyMaterial,
    MalformedMessage,
    MessageTooLarge,
    NoKeyForRecipient,
    NotEncrypted,
    SealmailError,
    TamperedMessage,
    UnauthenticatedCiphertext,
    UnsupportedMessage,
    UsageError,
)

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
RNP = CORPUS / "rnp"
TB = CORPUS / "thunderbird-openpgp"


def seeded_rng(seed: int) -> Callable[[int], bytes]:
    gen = random.Random(seed)  # deterministic test randomness, never for real keys
    return lambda n: gen.randbytes(n)


@pytest.fixture(scope="module")
def tsk() -> pysequoia.Tsk:
    return pysequoia.Tsk.generate("Unit <unit@sealmail.test>")


@pytest.fixture(scope="module")
def cert(tsk: pysequoia.Tsk) -> bytes:
    return bytes(tsk.extract_certificate())


# -- public surface ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module",
    [pgpalgos, pgparmor, pgpdata, pgpkeys, pgppackets, pgprecipients, pgpsession, pgpstream],
)
def test_every_module_declares_its_exports(module: object) -> None:
    exported = module.__all__  # type: ignore[attr-defined]
    assert len(set(exported)) == len(exported)
    for name in exported:
        assert hasattr(module, name), name
    assert module.__doc__ and "Theory of operation" in module.__doc__


def test_pgpstream_public_api() -> None:
    assert set(pgpstream.__all__) >= {
        "DecryptedStream",
        "decrypt",
        "encrypt",
        "literal_packet",
        "dearmor",
        "enarmor",
    }


# -- armor ------------------------------------------------------------------------------------


def test_armor_round_trip_and_binary_passthrough() -> None:
    data = bytes(range(256)) * 3
    armored = pgparmor.enarmor(data)
    assert armored.startswith(b"-----BEGIN PGP MESSAGE-----\n\n")
    assert pgparmor.dearmor(armored) == data
    assert pgparmor.dearmor(b"\xc3" + data) == b"\xc3" + data
    crlf = b"some text before\r\n" + armored.replace(b"\n", b"\r\n")
    assert pgparmor.dearmor(crlf) == data
    assert pgparmor.dearmor(armored.replace(b"\n\n", b"\nVersion: x\nComment: y\n\n", 1)) == data


def test_armor_matches_gnupg_crc() -> None:
    # `printf abc | gpg --enarmor` ends with "=uhx7"
    assert pgparmor.enarmor(b"abc", "ARMORED FILE").endswith(
        b"YWJj\n=uhx7\n-----END PGP ARMORED FILE-----\n"
    )


def test_armor_without_crc_and_with_bad_crc() -> None:
    armored = pgparmor.enarmor(b"payload")
    lines = armored.split(b"\n")
    no_crc = b"\n".join(line for line in lines if not line.startswith(b"="))
    assert pgparmor.dearmor(no_crc) == b"payload"
    bad = armored.replace(lines[-3], b"=AAAA")
    assert lines[-3] != b"=AAAA" and bad != armored
    with pytest.raises(MalformedMessage):
        pgparmor.dearmor(bad, check_crc=True)
    # RFC 9580 §6.1: a wrong CRC-24 footer is not a reason to reject by default
    assert pgparmor.dearmor(bad) == b"payload"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plain text",
        b"-----BEGIN PGP MESSAGE-----\n\nAAAA\n",
        b"-----BEGIN PGP MESSAGE-----\n\n!!!!\n-----END PGP MESSAGE-----\n",
        b"-----BEGIN PGP MESSAGE-----\n\nAAA\n-----END PGP MESSAGE-----\n",
        b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n",
    ],
)
def test_armor_rejects_garbage(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        pgparmor.dearmor(data)


def test_enarmor_kind_is_checked() -> None:
    with pytest.raises(UsageError):
        pgparmor.enarmor(b"x", "NONSENSE")


# -- packet framing ---------------------------------------------------------------------------


def test_old_and_new_format_headers() -> None:
    body = b"x" * 300
    old1 = bytes([0x80 | (11 << 2) | 0, 5]) + b"hello"
    old2 = bytes([0x80 | (11 << 2) | 1]) + (300).to_bytes(2, "big") + body
    old4 = bytes([0x80 | (11 << 2) | 2]) + (300).to_bytes(4, "big") + body
    new = serialize_packet(Tag.LITERAL, body) + serialize_packet(Tag.MARKER, b"PGP")
    big = serialize_packet(Tag.LITERAL, b"y" * 10000)
    assert big[1] == 0xFF
    packets = parse_packets(old1 + old2 + old4 + new + big)
    assert [p.tag for p in packets] == [11, 11, 11, 11, 10, 11]
    assert [len(p.body) for p in packets] == [5, 300, 300, 300, 3, 10000]
    indeterminate = bytes([0x80 | (8 << 2) | 3]) + b"\x00rest of input"
    assert parse_packets(indeterminate)[0].body == b"\x00rest of input"


def test_partial_body_lengths() -> None:
    body = bytes(range(256)) * 8  # 2048 octets: 1024 + 512 + 512 partial, then 0
    framed = bytes([0xC0 | 11, 0xE0 + 10]) + body[:1024]
    framed += bytes([0xE0 + 9]) + body[1024:1536] + bytes([0xE0 + 9]) + body[1536:] + b"\x00"
    assert parse_packets(framed) == [pgppackets.Packet(11, body)]


@pytest.mark.parametrize(
    "data",
    [
        b"\x00",  # no packet header bit
        b"\xc3",  # header without length
        b"\xc3\x10abc",  # truncated body
        b"\xc3\xff\x00\x00",  # truncated 5-octet length
        bytes([0xC0 | 2, 0xE1, 0, 0]),  # partial length on a signature packet
        bytes([0x80 | (2 << 2) | 3]) + b"x",  # indeterminate length on a signature
        b"\xc0\x00",  # reserved tag 0
        bytes([0xC0 | 11, 0xE1, 0, 0]),  # partial chunk without the final length
    ],
)
def test_framing_errors_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_packets(data)


def test_packet_count_is_limited() -> None:
    with pytest.raises(MessageTooLarge):
        parse_packets(serialize_packet(Tag.MARKER, b"PGP") * 20, max_packets=10)


def test_mpi_encoding() -> None:
    assert pgppackets.encode_mpi(1) == b"\x00\x01\x01"
    assert pgppackets.encode_mpi(b"\x00\x00\x01\xff") == b"\x00\x09\x01\xff"
    assert pgppackets.encode_mpi(0) == b"\x00\x00"


# -- S2K --------------------------------------------------------------------------------------


def test_s2k_count_decoding_and_kinds() -> None:
    assert pgpalgos.S2K(3, 8, b"\0" * 8, 96).count == 65536
    assert pgpalgos.S2K(3, 8, b"\0" * 8, 255).count == 65011712
    simple = pgpalgos.S2K(0, 2).derive(b"pw", 32)
    assert len(simple) == 32 and simple != pgpalgos.S2K(1, 2, b"saltsalt").derive(b"pw", 32)
    iterated = pgpalgos.S2K(3, 8, b"saltsalt", 0)  # count 1024 < len(salt + passphrase)
    assert iterated.derive(b"p" * 2000, 16) == pgpalgos.S2K(1, 8, b"saltsalt").derive(
        b"p" * 2000, 16
    )


def test_s2k_unknown_and_argon2_limit() -> None:
    with pytest.raises(UnsupportedMessage):
        pgpalgos.S2K.parse(pgppackets.Reader(b"\x65\x02GNU\x01"))
    with pytest.raises(MessageTooLarge):
        pgpalgos.S2K(4, 0, b"s" * 16, 0, (1, 1, 30)).derive(b"pw", 16)
    with pytest.raises(MalformedMessage):
        pgpalgos.S2K(4, 0, b"s" * 16, 0, (0, 1, 10)).derive(b"pw", 16)


def test_cipher_names() -> None:
    assert pgpalgos.cipher_by_name("aes256").algo_id == 9
    assert pgpalgos.cipher_by_name("AES-128").algo_id == 7
    assert pgpalgos.cipher_by_name("CAMELLIA256").algo_id == 13
    with pytest.raises(UnsupportedMessage):
        pgpalgos.cipher_info(10)  # Twofish


# -- round trips with pysequoia keys ----------------------------------------------------------


SUITES = [
    (None, pysequoia.CipherSuite.Cv25519),
    (None, pysequoia.CipherSuite.RSA2k),
    (None, pysequoia.CipherSuite.P256),
    (None, pysequoia.CipherSuite.P384),
    (None, pysequoia.CipherSuite.P521),
    (pysequoia.Profile.RFC9580, pysequoia.CipherSuite.Cv25519),
    (pysequoia.Profile.RFC9580, pysequoia.CipherSuite.P256),
]


@pytest.mark.parametrize(("profile", "suite"), SUITES, ids=lambda x: repr(x))
def test_pysequoia_messages_decrypt_and_verify(
    profile: pysequoia.Profile | None, suite: pysequoia.CipherSuite
) -> None:
    """pysequoia writes PKESK v6 + SEIPDv2 (OCB) for its own keys; we read it."""
    key = pysequoia.Tsk.generate("S <s@x>", profile=profile, cipher_suite=suite)
    own = key.extract_certificate()
    for payload in (b"", b"hello", bytes(70000)):
        msg = pysequoia.encrypt(payload, recipients=[own], signer=key.signer())
        stream = pgpstream.decrypt(msg, secret_keys=[bytes(key)])
        assert stream.literal == payload
        assert stream.integrity == "AEAD-OCB" and stream.signed
        assert len(pysequoia.verify(bytes=stream.packets, store=lambda _: [own]).valid_sigs) == 1


@pytest.mark.parametrize(("profile", "suite"), SUITES[:5], ids=lambda x: repr(x))
def test_our_messages_read_in_pysequoia(
    profile: pysequoia.Profile | None, suite: pysequoia.CipherSuite
) -> None:
    key = pysequoia.Tsk.generate("S <s@x>", profile=profile, cipher_suite=suite)
    own = key.extract_certificate()
    inner = pysequoia.sign(key.signer(), b"data", mode=pysequoia.SignatureMode.INLINE, armor=False)
    msg = pgpstream.encrypt(inner, recipients=[bytes(own)], passwords=[b"pw"])
    assert [p.tag for p in parse_packets(msg)] == [Tag.PKESK, Tag.SKESK, Tag.SEIPD]
    assert pysequoia.decrypt(msg, decryptor=key.decryptor()).bytes == b"data"
    assert pysequoia.decrypt(msg, passwords=["pw"]).bytes == b"data"
    for stream in (
        pgpstream.decrypt(msg, secret_keys=[bytes(key)]),
        pgpstream.decrypt(msg, passwords=[b"pw"]),
    ):
        assert stream.literal == b"data" and stream.integrity == "MDC"
        assert len(pysequoia.verify(bytes=stream.packets, store=lambda _: [own]).valid_sigs) == 1


def test_v6_recipient_is_refused_for_seipd_v1() -> None:
    key = pysequoia.Tsk.generate("S <s@x>", profile=pysequoia.Profile.RFC9580)
    with pytest.raises(NoKeyForRecipient):
        pgpstream.encrypt(
            pgpstream.literal_packet(b"x"), recipients=[bytes(key.extract_certificate())]
        )


def test_rng_makes_output_deterministic(cert: bytes) -> None:
    inner = pgpstream.literal_packet(b"same", filename=b"f.txt", date=1700000000)
    one = pgpstream.encrypt(inner, recipients=[cert], passwords=[b"p"], rng=seeded_rng(7))
    two = pgpstream.encrypt(inner, recipients=[cert], passwords=[b"p"], rng=seeded_rng(7))
    assert one == two
    assert one != pgpstream.encrypt(inner, recipients=[cert], rng=seeded_rng(8))


def test_decrypted_stream_fields(tsk: pysequoia.Tsk, cert: bytes) -> None:
    inner = pgpstream.literal_packet(b"body", filename=b"a.txt", fmt=b"u", date=1234)
    msg = pgpstream.enarmor(pgpstream.encrypt(inner, recipients=[cert], cipher="AES-128"))
    stream = pgpstream.decrypt(msg, secret_keys=[bytes(tsk)])
    assert (stream.filename, stream.literal_format, stream.literal_date) == ("a.txt", "u", 1234)
    assert (stream.cipher, stream.integrity, stream.compression) == ("AES-128", "MDC", None)
    assert not stream.signed
    assert stream.packets == inner
    sub = stream.decrypted_with
    assert stream.recipient_key_ids == (sub[-16:],)
    assert "body" not in repr(stream)


def test_encrypt_usage_errors(cert: bytes) -> None:
    inner = pgpstream.literal_packet(b"x")
    with pytest.raises(UsageError):
        pgpstream.encrypt(inner)
    with pytest.raises(UsageError):
        pgpstream.encrypt(inner, passwords=[b"p"], cipher="CAST5")
    with pytest.raises(UsageError):
        pgpstream.encrypt(b"raw text, not packets", passwords=[b"p"])
    with pytest.raises(UsageError):
        pgpstream.encrypt(inner, recipients=cert)
    with pytest.raises(InvalidKeyMaterial):
        pgpstream.encrypt(inner, recipients=[b"not a certificate"])


def test_encrypt_respects_now(tsk: pysequoia.Tsk) -> None:
    key = pysequoia.Tsk.generate("E <e@x>", validity_seconds=86400 * 30)
    cert = bytes(key.extract_certificate())
    inner = pgpstream.literal_packet(b"x")
    now = datetime.now(UTC)
    assert pgpstream.encrypt(inner, recipients=[cert], now=now + timedelta(days=1))
    for when in (now - timedelta(days=1), now + timedelta(days=31)):
        with pytest.raises(NoKeyForRecipient):
            pgpstream.encrypt(inner, recipients=[cert], now=when)


def test_signing_only_certificate_has_no_recipient_key() -> None:
    sign_only = TB / "keys" / "sign-subkey-only-pub.asc"
    with pytest.raises(NoKeyForRecipient):
        pgpstream.encrypt(pgpstream.literal_packet(b"x"), recipients=[sign_only.read_bytes()])


# -- errors: keys, passwords, structure -------------------------------------------------------


def test_wrong_key_and_no_key_are_the_same_error(cert: bytes) -> None:
    other = pysequoia.Tsk.generate("O <o@x>")
    msg = pgpstream.encrypt(pgpstream.literal_packet(b"x"), recipients=[cert])
    with pytest.raises(DecryptionFailed) as wrong:
        pgpstream.decrypt(msg, secret_keys=[bytes(other)])
    with pytest.raises(DecryptionFailed) as none:
        pgpstream.decrypt(msg)
    assert str(wrong.value) == str(none.value)


def test_not_encrypted_and_structure_errors(tsk: pysequoia.Tsk) -> None:
    signed = pysequoia.sign(tsk.signer(), b"x", armor=False)
    with pytest.raises(NotEncrypted):
        pgpstream.decrypt(signed)
    with pytest.raises(MalformedMessage):
        pgpstream.decrypt(serialize_packet(Tag.PKESK, b"\x03" + bytes(9)))
    msg = pgpstream.encrypt(pgpstream.literal_packet(b"x"), passwords=[b"p"])
    with pytest.raises(MalformedMessage):
        pgpstream.decrypt(msg + pgpstream.literal_packet(b"trailing"), passwords=[b"p"])


def _password_message(inner: bytes, password: bytes = b"pw") -> bytes:
    return pgpstream.encrypt(inner, passwords=[password], rng=seeded_rng(1))


def test_inner_grammar_is_checked() -> None:
    two_literals = pgpstream.literal_packet(b"a") + pgpstream.literal_packet(b"b")
    msg = _password_message(serialize_packet(Tag.COMPRESSED, b"\x00" + two_literals))
    with pytest.raises(MalformedMessage):
        pgpstream.decrypt(msg, passwords=[b"pw"])
    nested = pgpstream.encrypt(pgpstream.literal_packet(b"a"), passwords=[b"pw"])
    msg = _password_message(serialize_packet(Tag.COMPRESSED, b"\x00" + nested))
    with pytest.raises(UnsupportedMessage):
        pgpstream.decrypt(msg, passwords=[b"pw"])


def test_sed_packet_without_mdc_is_refused() -> None:
    # a legacy tag 9 packet (our own serialiser; gpg-made ones are in the interop tests)
    sed = serialize_packet(Tag.SED, bytes(40))
    skesk = serialize_packet(Tag.SKESK, bytes([4, 9]) + pgpalgos.S2K(1, 8, b"12345678").serialize())
    with pytest.raises(UnauthenticatedCiphertext):
        pgpstream.decrypt(skesk + sed, passwords=[b"pw"])


# -- compression ------------------------------------------------------------------------------


def _compressed(algo: int, payload: bytes) -> bytes:
    if algo == 1:
        z = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = z.compress(payload) + z.flush()
    elif algo == 2:
        data = zlib.compress(payload, 9)
    elif algo == 3:
        data = bz2.compress(payload)
    else:
        data = payload
    return serialize_packet(Tag.COMPRESSED, bytes([algo]) + data)


@pytest.mark.parametrize(
    ("algo", "name"), [(0, "uncompressed"), (1, "ZIP"), (2, "ZLIB"), (3, "BZIP2")]
)
def test_compression_algorithms(algo: int, name: str) -> None:
    msg = _password_message(_compressed(algo, pgpstream.literal_packet(b"z" * 5000)))
    stream = pgpstream.decrypt(msg, passwords=[b"pw"])
    assert stream.literal == b"z" * 5000
    assert stream.compression == name


@pytest.mark.parametrize("algo", [1, 2, 3])
def test_decompression_bomb_hits_the_limit(algo: int) -> None:
    bomb = _compressed(algo, pgpstream.literal_packet(bytes(8 * 1024 * 1024)))
    assert len(bomb) < 100_000
    msg = _password_message(bomb)
    with pytest.raises(MessageTooLarge):
        pgpstream.decrypt(msg, passwords=[b"pw"], max_output=1024 * 1024)
    assert len(pgpstream.decrypt(msg, passwords=[b"pw"]).literal) == 8 * 1024 * 1024


def test_nested_compression_is_bounded() -> None:
    inner = pgpstream.literal_packet(b"deep")
    for _ in range(3):
        inner = _compressed(2, inner)
    assert pgpstream.decrypt(_password_message(inner), passwords=[b"pw"]).literal == b"deep"
    for _ in range(pgpstream.MAX_COMPRESSION_DEPTH):
        inner = _compressed(2, inner)
    with pytest.raises(MessageTooLarge):
        pgpstream.decrypt(_password_message(inner), passwords=[b"pw"])


@pytest.mark.parametrize("algo", [1, 2, 3, 99])
def test_damaged_compressed_data(algo: int) -> None:
    packet = serialize_packet(Tag.COMPRESSED, bytes([algo]) + b"\xff" * 50)
    with pytest.raises((MalformedMessage, UnsupportedMessage)):
        pgpstream.decrypt(_password_message(packet), passwords=[b"pw"])


# -- tampering --------------------------------------------------------------------------------


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def test_tampering_anywhere_is_detected(tsk: pysequoia.Tsk, cert: bytes) -> None:
    text = b"the secret text " * 20
    msg = pgpstream.encrypt(pgpstream.literal_packet(text), recipients=[cert], rng=seeded_rng(3))
    pkesk_len = len(parse_packets(msg)[0].serialize())
    regions = {
        "pkesk": range(3, pkesk_len),
        "prefix": range(pkesk_len + 6, pkesk_len + 24),
        "literal": range(pkesk_len + 26, len(msg) - 30),
        "mdc": range(len(msg) - 22, len(msg)),
    }
    for name, region in regions.items():
        for index in list(region)[:: max(1, len(region) // 12)]:
            with pytest.raises((DecryptionFailed, TamperedMessage, MalformedMessage)) as err:
                pgpstream.decrypt(_flip(msg, index), secret_keys=[bytes(tsk)])
            if name != "pkesk":
                assert err.type is TamperedMessage, (name, index)
    with pytest.raises((TamperedMessage, MalformedMessage)):
        pgpstream.decrypt(msg[:-1], secret_keys=[bytes(tsk)])


def test_tampered_seipd_v2_is_detected(tsk: pysequoia.Tsk) -> None:
    own = tsk.extract_certificate()
    msg = pysequoia.encrypt(b"aead text" * 100, recipients=[own], armor=False)
    for index in (len(msg) - 1, len(msg) - 20, len(msg) - 200, len(msg) // 2 + 40):
        with pytest.raises((TamperedMessage, DecryptionFailed, MalformedMessage)):
            pgpstream.decrypt(_flip(msg, index), secret_keys=[bytes(tsk)])


def test_tampered_password_message_is_bad_password() -> None:
    msg = pgpstream.encrypt(pgpstream.literal_packet(b"x" * 100), passwords=[b"pw"])
    with pytest.raises(BadPassword):
        pgpstream.decrypt(_flip(msg, len(msg) - 5), passwords=[b"pw"])


# -- fuzzing ----------------------------------------------------------------------------------

_FUZZ_MESSAGE = pgpstream.encrypt(
    _compressed(2, pgpstream.literal_packet(b"fuzz me " * 30)), passwords=[b"pw"], rng=seeded_rng(5)
)


@settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    try:
        pgpstream.decrypt(data, passwords=[b"pw"])
    except SealmailError:
        pass


@settings(max_examples=300, deadline=3000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(_FUZZ_MESSAGE) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=4,
    ),
    st.integers(0, len(_FUZZ_MESSAGE)),
)
def test_fuzz_mutated_message(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_FUZZ_MESSAGE)
    for index, value in edits:
        data[index] = value
    try:
        stream = pgpstream.decrypt(bytes(data[: max(cut, 1)]), passwords=[b"pw"])
    except SealmailError:
        return
    assert stream.literal == b"fuzz me " * 30  # only an edit that changed nothing can pass


@settings(max_examples=200, deadline=2000)
@given(st.binary(max_size=300))
def test_fuzz_packet_parser(data: bytes) -> None:
    try:
        for packet in parse_packets(data):
            if packet.tag == Tag.PKESK:
                pgpsession.parse_pkesk(packet.body)
            elif packet.tag == Tag.SKESK:
                pgpsession.parse_skesk(packet.body)
            elif packet.tag in (Tag.SECRET_KEY, Tag.SECRET_SUBKEY):
                pgpkeys.parse_secret_key(packet.body)
    except SealmailError:
        pass


# -- corpus: RFC 9580 appendix A, rnp, Thunderbird --------------------------------------------

V6_SECRET = RNP / "RFC9580" / "A.4.transferable-seckey-v6.asc"


@pytest.mark.parametrize(
    ("name", "cipher", "integrity"),
    [
        ("A.8.5-v6pkesk-v2seipd", "AES-128", "AEAD-OCB"),
        ("A.10.5.v6_skesk_ocb.asc", "AES-128", "AEAD-OCB"),
        # Argon2 with 2 GiB of memory (RFC 9580's parameters): ~10 s each, so one of three
        pytest.param("A.12.3.v4-skesk-argon2-aes256.asc", "AES-256", "MDC", marks=pytest.mark.slow),
    ],
)
def test_rfc9580_vectors(name: str, cipher: str, integrity: str) -> None:
    data = (RNP / "RFC9580" / name).read_bytes()
    stream = pgpstream.decrypt(data, secret_keys=[V6_SECRET.read_bytes()], passwords=[b"password"])
    assert stream.literal == b"Hello, world!"
    assert (stream.cipher, stream.integrity) == (cipher, integrity)


@pytest.mark.slow
def test_rfc9580_locked_v6_key_with_argon2_and_aead() -> None:
    locked = (RNP / "RFC9580" / "A.5.sample-locked-v6-seckey-argon2-aead.asc").read_bytes()
    message = (RNP / "RFC9580" / "A.8.5-v6pkesk-v2seipd").read_bytes()
    stream = pgpstream.decrypt(
        message, secret_keys=[locked], key_passphrase=b"correct horse battery staple"
    )
    assert stream.literal == b"Hello, world!"


def test_rfc9580_eax_is_unsupported() -> None:
    with pytest.raises(UnsupportedMessage):
        pgpstream.decrypt(
            (RNP / "RFC9580" / "A.9.5.v6_skesk_eax.asc").read_bytes(), passwords=[b"password"]
        )


@pytest.mark.parametrize("ring", ["secring.gpg", "secring-cast5.gpg"])
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("message.txt.enc-mdc", None),
        ("message.txt.enc-hidden-1", None),
        ("message.txt.enc-no-mdc", UnauthenticatedCiphertext),
        ("message.txt.encrypted", UnsupportedMessage),  # OCB packet with EAX
        ("message.txt.enc-aead-eax", UnsupportedMessage),
        ("message.txt.enc-aead-ocb", UnsupportedMessage),  # Camellia-192 OCB
    ],
)
def test_rnp_messages(ring: str, name: str, expected: type[Exception] | None) -> None:
    data = (RNP / "test_messages" / name).read_bytes()
    keys = [(RNP / "keyrings-1" / ring).read_bytes()]
    if expected is not None:
        with pytest.raises(expected):
            pgpstream.decrypt(
                data, secret_keys=keys, key_passphrase=b"password", passwords=[b"password"]
            )
        return
    stream = pgpstream.decrypt(data, secret_keys=keys, key_passphrase=b"password")
    assert stream.literal == (RNP / "test_messages" / "message.txt").read_bytes()


def _armored_part(path: Path) -> bytes:
    msg = email.message_from_bytes(path.read_bytes())
    for part in msg.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and b"BEGIN PGP MESSAGE" in payload:
            return payload
    raise AssertionError(f"no armored message in {path}")


def _tb_key(name: str) -> bytes:
    return next((TB / "keys").glob(name + "*")).read_bytes()


_ALICE = "alice@openpgp.example-0xf231550c4f47e38e-secret"
_BOB = "bob@openpgp.example-0xfbfcc82a015e7330-secret"


@pytest.mark.parametrize(
    ("eml", "keyfile", "passphrase", "signed", "integrity"),
    [
        ("eml/signed-encrypted-autocrypt-gossip.eml", _BOB + ".", None, True, "MDC"),
        ("eml/encrypted-to-alice-as-hidden-recipient.eml", _ALICE + ".", None, False, "MDC"),
        (
            "eml/unsigned-encrypted-to-0xf231550c4f47e38e-from-0xfbfcc82a015e7330.eml",
            _ALICE + "-with-pp",
            b"alice-passphrase",
            False,
            "MDC",
        ),
        ("eml/partial-encrypt-for-carol-plaintext.eml", "carol@example.com", b"x", False, "MDC"),
        (
            "eml-rc-remote-content/rc-openpgp-aead.eml",
            _BOB + "-with-pp",
            b"bob-passphrase",
            False,
            "AEAD-OCB",
        ),
    ],
)
def test_thunderbird_messages(
    eml: str, keyfile: str, passphrase: bytes | None, signed: bool, integrity: str
) -> None:
    stream = pgpstream.decrypt(
        _armored_part(TB / eml), secret_keys=[_tb_key(keyfile)], key_passphrase=passphrase
    )
    assert stream.signed == signed
    assert stream.integrity == integrity
    assert stream.literal


def test_thunderbird_signed_encrypted_verifies() -> None:
    stream = pgpstream.decrypt(
        _armored_part(TB / "eml/signed-encrypted-autocrypt-gossip.eml"),
        secret_keys=[_tb_key("alice@openpgp.example-0xf231550c4f47e38e-secret.")],
    )
    bob = pysequoia.Cert.from_file(str(TB / "keys/bob@openpgp.example-0xfbfcc82a015e7330-pub.asc"))
    verified = pysequoia.verify(bytes=stream.packets, store=lambda _: [bob])
    assert len(verified.valid_sigs) == 1


def test_thunderbird_no_mdc_is_refused() -> None:
    with pytest.raises(UnauthenticatedCiphertext):
        pgpstream.decrypt(
            _armored_part(TB / "eml-rc-remote-content/rc-openpgp-nomdc.eml"),
            secret_keys=[_tb_key("bob@openpgp.example-0xfbfcc82a015e7330-secret.")],
        )


def test_protected_key_without_passphrase_is_bad_password() -> None:
    data = _armored_part(TB / "eml/partial-encrypt-for-carol-plaintext.eml")
    with pytest.raises(BadPassword):
        pgpstream.decrypt(data, secret_keys=[_tb_key("carol@example.com")])


def test_key_loading_errors() -> None:
    with pytest.raises(InvalidKeyMaterial):
        pgpkeys.load_secret_keys([b"\xc5\x05\x04abc"])
    assert pgpkeys.load_secret_keys([_tb_key("sign-subkey-only-pub")]) == []


def test_unlocked_rsa_keys_are_reused_and_forgotten_when_the_session_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An RSA key unlocked twice is checked once (OpenSSL's primality check is the cost);
    closing the session drops every kept key."""
    from client.services import Session
    from keystore.secrets import KdfParams
    from keystore.store import Keystore

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    key = pysequoia.Tsk.generate("R <r@x>", cipher_suite=pysequoia.CipherSuite.RSA2k)
    pgpkeys.forget_unlocked()
    secret = [k for k in pgpkeys.load_secret_keys([bytes(key)]) if not k.locked]
    assert secret
    first, again = secret[0].unlock(), secret[0].unlock()
    assert first.private is again.private
    assert pgpkeys._rsa_private.cache_info().currsize == 1
    session = Session(
        Keystore.open(
            tmp_path / "p", passphrase="pp", env={}, secret_store="passphrase",
            kdf=KdfParams(n=2**10),
        )
    )  # fmt: skip
    session.close()
    assert pgpkeys._rsa_private.cache_info().currsize == 0
