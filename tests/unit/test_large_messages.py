"""The bounded-copy helpers behind large-message protection give the same bytes as before.

Each fast path (chunked armor with combined CRC-24, header-only packet scan, chunked
SEIPDv1, sliced base64, DER splicing of CMS ciphertext) is compared with the simple
reference it replaced, on sizes around its step boundaries, and a multi-megabyte message is
protected and opened end to end.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.crypto import cms_envelope, pgparmor, pgpdata, pgppackets, pgpstream
from client.crypto.pgpalgos import cfb_encrypt, cipher_info
from client.crypto.pgppackets import Tag, parse_packets, serialize_packet
from client.errors import MalformedMessage
from client.mime import compose, raw
from client.mime.raw import b64_decode_lenient, b64_lines, qp_decode, short_lines, to_crlf
from tests.helpers.pki import make_pki

STEP = 48 * 16384  # pgparmor's armor step


def _pieces(data: bytes, rnd: random.Random) -> list[bytes]:
    cuts = sorted(rnd.sample(range(len(data) + 1), min(4, len(data) + 1)))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("size", [1, 2, 47, 48, 49, 1000, STEP - 1, STEP, STEP + 1, 3 * STEP + 7])
def test_armor_chunks_equals_enarmor(size: int) -> None:
    rnd = random.Random(size)
    data = rnd.randbytes(size)
    joined = b"".join(pgparmor.armor_chunks(_pieces(data, rnd)))
    assert joined == pgparmor.enarmor(data)
    crlf = b"".join(pgparmor.armor_chunks([data], eol=b"\r\n"))
    assert crlf == pgparmor.enarmor(data).replace(b"\n", b"\r\n")
    assert pgparmor.dearmor(crlf, check_crc=True) == data


def test_armor_chunks_crc_matches_reference() -> None:
    data = random.Random(3).randbytes(2 * STEP + 100)
    armored = b"".join(pgparmor.armor_chunks([data]))
    footer = armored.rsplit(b"\n=", 1)[1][:4]
    assert int.from_bytes(base64.b64decode(footer), "big") == pgparmor.crc24(data)


def _stream(rnd: random.Random) -> bytes:
    body = rnd.randbytes(rnd.choice([0, 5, 191, 192, 8383, 8384, 70000]))
    lit = b"b\x00\x00\x00\x00\x00" + body
    packets = [serialize_packet(Tag.ONE_PASS_SIGNATURE, b"\x03\x00\x08\x01" + bytes(9))]
    if len(lit) > 512:  # a partial-length literal, as gpg and Sequoia write them
        rest = lit[512:]
        packets.append(b"\xcb\xe9" + lit[:512] + pgppackets.encode_new_length(len(rest)) + rest)
    else:
        packets.append(serialize_packet(Tag.LITERAL, lit))
    packets.append(b"\x88\x03abc")  # old format, one-octet length
    rnd.shuffle(packets)
    return b"".join(packets)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32))
def test_packet_tags_agree_with_parse_packets(seed: int) -> None:
    data = _stream(random.Random(seed))
    assert pgppackets.packet_tags(data) == [p.tag for p in parse_packets(data)]


@pytest.mark.parametrize(
    "bad", [b"\x00", b"\xc2", b"\xcb\x05ab", b"\xc2\xe1ab", b"\x8b\x05ab", b"\x80\x00"]
)
def test_packet_tags_refuses_what_parse_packets_refuses(bad: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_packets(bad)
    with pytest.raises(MalformedMessage):
        pgppackets.packet_tags(bad)


@pytest.mark.parametrize("size", [0, 1, 100, (1 << 20) - 3, (1 << 20) + 17])
def test_chunked_seipd_v1_equals_one_shot(size: int) -> None:
    plaintext = random.Random(size).randbytes(size)
    key = bytes(range(32))
    prefix = bytes(range(16))
    body = pgpdata.encrypt_seipd_v1(plaintext, 9, key, lambda n: prefix[:n])
    plain = prefix + prefix[-2:] + plaintext + b"\xd3\x14"
    mdc = hashlib.sha1(plain).digest()  # noqa: S324 - the MDC is SHA-1
    reference = b"\x01" + cfb_encrypt(cipher_info(9), key, plain + mdc)
    assert body == reference
    assert len(body) == pgpdata.seipd_v1_length(size, 9)


def test_encrypt_chunks_equals_encrypt() -> None:
    inner = pgpstream.literal_packet(random.Random(1).randbytes(3 << 20))
    one = pgpstream.encrypt(inner, passwords=[b"pw"], rng=random.Random(5).randbytes)
    two = b"".join(
        pgpstream.encrypt_chunks(inner, passwords=[b"pw"], rng=random.Random(5).randbytes)
    )
    assert one == two
    opened = pgpstream.decrypt(one, passwords=[b"pw"])
    assert opened.literal == inner[6 + 6 :]  # 6-octet header (5-octet length) + literal fields


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 57 * 16384 - 1, 57 * 16384 + 1])
def test_b64_lines_equals_encodebytes(size: int) -> None:
    data = random.Random(size).randbytes(size)
    assert b64_lines(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert b64_lines(data, b"\n") == base64.encodebytes(data)


def _lenient_reference(body: bytes) -> bytes | None:
    cleaned = re.sub(rb"[^A-Za-z0-9+/=]", b"", body).split(b"=", 1)[0]
    cleaned += b"=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned)
    except ValueError:
        return None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=24) | st.text("AB+/=\r\n -*z9", max_size=24).map(str.encode))
def test_b64_decode_lenient_equals_reference(body: bytes) -> None:
    try:
        got: bytes | None = b64_decode_lenient(body)
    except MalformedMessage:
        got = None
    assert got == _lenient_reference(body)


@settings(max_examples=300, deadline=None)
@given(st.text("a\r\n", max_size=12).map(str.encode))
def test_to_crlf_equals_reference(data: bytes) -> None:
    reference = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    assert to_crlf(data) == reference


@pytest.mark.parametrize("shift", [-1003, -1000, -999, -2, 0, 1, 500, 998, 1001])
@pytest.mark.parametrize("line", [998, 999])
def test_long_line_detection_across_windows(line: int, shift: int) -> None:
    """A long line anywhere near the seam of two windows is seen (1 MiB windows)."""
    body = b"x" * 76 + b"\r\n"
    head = (body * ((1 << 20) // len(body) + 20))[: (1 << 20) + shift]
    head = head[: head.rfind(b"\r\n") + 2]
    data = head + b"y" * line + b"\r\n" + body * 3
    assert short_lines(data) is (line <= 998)


def _lines_reference(data: bytes) -> bool:
    return max(map(len, data.split(b"\r\n"))) <= 998


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([0, 1, 76, 997, 998, 999, 1000, 2000]), min_size=1, max_size=6),
    st.booleans(),
)
def test_short_lines_equals_splitting(lengths: list[int], final_crlf: bool) -> None:
    data = b"\r\n".join(b"z" * n for n in lengths) + (b"\r\n" if final_crlf else b"")
    assert short_lines(data) is _lines_reference(data)


def test_pgp_encrypted_message_equals_assemble_of_wrap() -> None:
    data = random.Random(9).randbytes(5000)
    outer = (("From", "a@example.org"), ("Subject", "[...]"))
    old = compose.assemble(outer, compose.wrap_pgp_encrypted(pgparmor.enarmor(data), _rng(1)))
    new = compose.pgp_encrypted_message(
        outer, list(pgparmor.armor_chunks([data], eol=b"\r\n")), _rng(1)
    )
    assert new == old


def _rng(seed: int):  # type: ignore[no-untyped-def]
    return random.Random(seed).randbytes


@pytest.mark.parametrize("cipher", ["aes256-cbc", "aes128-cbc", "aes256-gcm"])
@pytest.mark.parametrize("size", [0, 15, 16, 17, 70000])
def test_cms_envelope_splice_is_valid_der(cipher: str, size: int) -> None:
    from asn1crypto import cms

    pki = make_pki()
    leaf = pki.leaf("a@example.org", "rsa2048")
    data = random.Random(size).randbytes(size)
    der = cms_envelope.encrypt(data, [leaf.cert], cipher=cipher, rng=_rng(size))  # type: ignore[arg-type]
    assert cms.ContentInfo.load(der, strict=True).dump(force=True) == der
    assert cms_envelope.decrypt(der, cert=leaf.cert, key=leaf.key).content == data
    pw = cms_envelope.encrypt_password(data, b"pw", cipher=cipher, iterations=10, rng=_rng(2))  # type: ignore[arg-type]
    assert cms.ContentInfo.load(pw, strict=True).dump(force=True) == pw


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from([b"QUJD", b"QQ==", b"QUI=", b"=", b"Q", b"!", b"\r\n", b" "])),
    st.integers(1, 9),
)
def test_windowed_armor_decoding_equals_one_strict_decode(parts: list[bytes], window: int) -> None:
    text = b"".join(parts)
    try:
        expected: bytes | None = base64.b64decode(text.translate(None, b" \t\r\n"), validate=True)
    except ValueError:
        expected = None
    saved, pgparmor._WINDOW = pgparmor._WINDOW, window  # type: ignore[attr-defined]
    try:
        got: bytes | None = pgparmor._decode_windows(text, 0, len(text), b"")
    except MalformedMessage:
        got = None
    finally:
        pgparmor._WINDOW = saved  # type: ignore[attr-defined]
    assert got == expected


@pytest.mark.parametrize("window", [5, 64, 1 << 20])
def test_dearmor_windows_round_trip(window: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgparmor, "_WINDOW", window)
    data = random.Random(window).randbytes(5000)
    armored = pgparmor.enarmor(data)
    assert pgparmor.dearmor(armored, check_crc=True) == data
    assert pgparmor.dearmor(armored.replace(b"\n", b"\r\n"), check_crc=True) == data


@pytest.mark.parametrize("cipher", ["aes256-cbc", "aes256-gcm"])
def test_cms_ciphertext_split_matches_asn1crypto(cipher: str) -> None:
    from asn1crypto import cms

    pki = make_pki()
    rsa, ec = pki.leaf("a@example.org", "rsa2048"), pki.leaf("b@example.org", "p256")
    data = random.Random(4).randbytes(100_000)
    der = cms_envelope.encrypt(data, [rsa.cert, ec.cert], cipher=cipher, rng=_rng(4))  # type: ignore[arg-type]
    split = cms_envelope._split_ciphertext(der)
    assert split is not None
    stub, start, end = split
    key = "auth_encrypted_content_info" if "gcm" in cipher else "encrypted_content_info"
    assert der[start:end] == cms.ContentInfo.load(der)["content"][key]["encrypted_content"].native
    assert cms.ContentInfo.load(stub, strict=True).dump(force=True) == stub
    assert cms_envelope.decrypt(der, cert=ec.cert, key=ec.key).content == data
    # indefinite lengths (BER), trailing data, truncation: not split, asn1crypto decides
    assert cms_envelope._split_ciphertext(b"\x30\x80" + der[4:] + b"\x00\x00") is None
    assert cms_envelope._split_ciphertext(der + b"\x00") is None
    assert cms_envelope._split_ciphertext(der[:-1]) is None


# -- windowed passes (raw.WINDOW): the same bytes whatever the window, seams included


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=40) | st.text("AB+/=\r\n -*z9", max_size=40).map(str.encode),
    st.integers(1, 9),
)
def test_windowed_b64_decode_equals_reference(body: bytes, window: int) -> None:
    with _window(window):
        try:
            got: bytes | None = b64_decode_lenient(body)
        except MalformedMessage:
            got = None
    assert got == _lenient_reference(body)


@settings(max_examples=400, deadline=None)
@given(st.text("a\r\n", max_size=30).map(str.encode), st.integers(1, 7))
def test_windowed_to_crlf_equals_reference(data: bytes, window: int) -> None:
    reference = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    with _window(window):
        assert to_crlf(data) == reference


@settings(max_examples=400, deadline=None)
@given(st.text("a=3D \t\r\nF", max_size=40).map(str.encode), st.integers(1, 7))
def test_windowed_qp_decode_equals_quopri(data: bytes, window: int) -> None:
    import quopri

    with _window(window):
        assert qp_decode(data) == quopri.decodestring(data)


class _window:
    def __init__(self, size: int) -> None:
        self.size = size

    def __enter__(self) -> None:
        self.saved = raw.WINDOW
        raw.WINDOW = self.size

    def __exit__(self, *exc: object) -> None:
        raw.WINDOW = self.saved


def _dot_stuff_reference(raw: bytes) -> bytes:
    data = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


@settings(max_examples=400, deadline=None)
@given(st.text(".a\r\n", max_size=30).map(str.encode), st.integers(1, 7))
def test_windowed_dot_stuffing_equals_reference(data: bytes, window: int) -> None:
    with _window(window):
        assert raw.dot_stuff(data) == _dot_stuff_reference(data)


@settings(max_examples=300, deadline=None)
@given(st.text("boundary= Bx", max_size=60).map(str.encode), st.integers(1, 9))
def test_windowed_boundary_count_equals_findall(data: bytes, window: int) -> None:
    expected = len(raw._BOUNDARY_PARAM.findall(data))
    with _window(window):
        assert raw._count_boundary_params(data) == expected


def _dearmor_outcome(data: bytes, span: tuple[int, int] | None) -> bytes | str:
    try:
        return pgparmor.dearmor(data, span=span, check_crc=True)
    except MalformedMessage as exc:
        return f"MalformedMessage: {exc}"


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=300),
    st.lists(
        st.sampled_from(
            [b"\n", b"\r\n", b"Version: x\n", b" ", b"-----END PGP MESSAGE-----\n", b"=AAAA\n"]
        ),
        max_size=4,
    ),
    st.sampled_from([b"", b"\n", b"Content-Type: text/plain\r\n\r\n", b"\x80binary\n", b"junk\n"]),
    st.sampled_from(
        [
            b"",
            b"\r\n",
            b"--boundary--\r\n",
            b"-----BEGIN PGP MESSAGE-----\n",
            b"\nQUJD\n-----END PGP MESSAGE-----\n",
        ]
    ),
    st.sampled_from(["lf", "crlf", "cut", "binary", "garbage"]),
)
def test_dearmor_of_a_span_is_dearmor_of_the_slice(
    payload: bytes, noise: list[bytes], before: bytes, after: bytes, shape: str
) -> None:
    """A PGP/MIME part's armor is read where it lies in the message (``span``): whatever
    lies around it, the result (or the error) is that of the part copied out."""
    armored = pgparmor.enarmor(payload) if payload else b""
    if shape == "crlf":
        armored = armored.replace(b"\n", b"\r\n")
    elif shape == "cut":
        armored = armored[: len(armored) // 2] + b"".join(noise)
    elif shape == "binary":
        armored = b"\xc3" + payload
    elif shape == "garbage":
        armored = b"".join(noise) + armored[5:]
    data = before + armored + after
    span = (len(before), len(before) + len(armored))
    assert _dearmor_outcome(data, span) == _dearmor_outcome(armored, None)
