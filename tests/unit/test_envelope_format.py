"""The envelope container (client.envelope.format) and page (client.envelope.page).

Vectors are made here with a seeded rng; the browser tests (tests/browser) check the same
format against Chromium's WebCrypto, so the two implementations judge each other.
"""

from __future__ import annotations

import json
import random
import struct
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.envelope import format as fmt
from client.envelope import page
from client.errors import (
    BadPassword,
    MalformedMessage,
    SealmailError,
    TamperedMessage,
    UnsupportedMessage,
    UsageError,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PW = "bazok-tifum-ruveg-nodal"


def rng_for(seed: int):  # type: ignore[no-untyped-def]
    r = random.Random(seed)
    return lambda n: r.randbytes(n)


def _seal(files=(), message="hello", chunk_size=1024, seed=1, **kw):  # type: ignore[no-untyped-def]
    return fmt.seal(
        message, list(files), PW, now=NOW, rng=rng_for(seed), chunk_size=chunk_size, **kw
    )


@pytest.fixture(scope="module")
def sealed() -> bytes:
    files = [fmt.Attachment("a.bin", bytes(range(256)) * 10), fmt.Attachment("b.txt", b"B" * 3000)]
    return _seal(files, message="Grüße 🩺", sender="a@x.example", recipient="b@y.example")


def test_round_trip(sealed: bytes) -> None:
    c = fmt.parse(sealed)
    assert c.kind is fmt.Kind.ENVELOPE and c.iterations == 600_000 and c.chunk_size == 1024
    assert c.chunk_count == -(-(len(sealed) - len(c.prefix)) // 1040)
    out = fmt.open_container(c, PW)
    assert out.message == "Grüße 🩺"
    assert [(f.name, len(f.data)) for f in out.files] == [("a.bin", 2560), ("b.txt", 3000)]
    assert out.sender == "a@x.example" and out.recipient == "b@y.example"
    assert out.created == NOW.isoformat()


def test_deterministic_with_rng_and_password_normalised(sealed: bytes) -> None:
    files = [fmt.Attachment("a.bin", bytes(range(256)) * 10), fmt.Attachment("b.txt", b"B" * 3000)]
    again = _seal(files, message="Grüße 🩺", sender="a@x.example", recipient="b@y.example")
    assert again == sealed
    assert fmt.open_container(sealed, f"  {PW}\n").message == "Grüße 🩺"
    assert fmt.normalize_password("ﬁ") == b"fi"  # NFKC, as String.normalize('NFKC')


def test_wrong_password(sealed: bytes) -> None:
    with pytest.raises(BadPassword):
        fmt.open_container(sealed, PW.upper())


def test_empty_envelope_and_exact_chunk_multiple() -> None:
    out = fmt.open_container(_seal([], message=""), PW)
    assert out.message == "" and out.files == ()
    # plaintext of exactly 2 chunks: no empty trailing chunk, the second one is final
    manifest_len = len(json.dumps({}))  # any size; search for a file size that aligns
    for size in range(2048 - 400, 2048):
        data = _seal([fmt.Attachment("x", b"x" * size)])
        c = fmt.parse(data)
        if (len(c.body) - 2 * 16) == 2048:
            assert c.chunk_count == 2
            assert fmt.open_container(c, PW).files[0].data == b"x" * size
            break
    else:  # pragma: no cover
        raise AssertionError(f"no aligned size found ({manifest_len})")


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


def test_every_region_is_authenticated(sealed: bytes) -> None:
    c = fmt.parse(sealed)
    body_start = len(c.prefix)
    for i in (body_start, body_start + 500, body_start + 1040 + 3, len(sealed) - 1):
        with pytest.raises(TamperedMessage):
            fmt.open_container(_flip(sealed, i), PW)
    # a header change is seen as a key-check mismatch or a tag failure, never as success
    header = json.loads(c.prefix[12:])
    header["chunk_size"] = 2048
    raw = json.dumps(header, separators=(",", ":")).encode()
    forged = struct.pack(">8sBBH", fmt.MAGIC, 1, 1, len(raw)) + raw + c.body
    with pytest.raises((TamperedMessage, MalformedMessage)):
        fmt.open_container(forged, PW)
    kind_swapped = sealed[:9] + b"\x02" + sealed[10:]
    with pytest.raises(TamperedMessage):
        fmt.open_container(kind_swapped, PW)


def test_truncation_and_reordering_detected(sealed: bytes) -> None:
    c = fmt.parse(sealed)
    p, body = c.prefix, c.body
    chunks = [body[i : i + 1040] for i in range(0, len(body), 1040)]
    assert len(chunks) >= 4
    with pytest.raises(TamperedMessage):  # drop the final chunk
        fmt.open_container(p + b"".join(chunks[:-1]), PW)
    with pytest.raises(TamperedMessage):  # swap two chunks
        fmt.open_container(p + chunks[1] + chunks[0] + b"".join(chunks[2:]), PW)
    with pytest.raises(TamperedMessage):  # splice a chunk from another envelope
        other = fmt.parse(_seal([fmt.Attachment("a.bin", b"z" * 5000)], seed=2))
        fmt.open_container(p + other.body[:1040] + b"".join(chunks[1:]), PW)


def test_version_and_framing_errors(sealed: bytes) -> None:
    with pytest.raises(UnsupportedMessage):
        fmt.parse(sealed[:8] + b"\x02" + sealed[9:])
    for bad in (
        b"",
        b"\x89SMENV\r\n",
        b"nope" * 10,
        sealed[:20],
        sealed[: len(fmt.parse(sealed).prefix) + 5],
    ):
        with pytest.raises(MalformedMessage):
            fmt.parse(bad)


def test_limits_and_misuse() -> None:
    with pytest.raises(UsageError):
        fmt.seal("x", [], PW, now=NOW, rng=rng_for(1), iterations=1000)
    with pytest.raises(UsageError):
        fmt.seal("x", [fmt.Attachment("../evil", b"")], PW, now=NOW, rng=rng_for(1))
    with pytest.raises(UsageError):
        fmt.seal("x", [], "   ", now=NOW, rng=rng_for(1))
    with pytest.raises(UsageError):
        fmt.seal("x", [], PW, now=NOW, rng=lambda n: b"short")


def test_page_round_trip_and_csp(sealed: bytes) -> None:
    html = page.render(sealed)
    assert page.is_envelope_page(html)
    assert page.extract(html) == sealed
    text = html.decode()
    assert "default-src 'none'" in text and "'unsafe-inline'" not in text
    assert text.count("<script") == 2 and "http://" not in text and "https://" not in text
    # a browser-made reply is re-serialised; whitespace in the payload is tolerated
    spaced = html.replace(b'id="sealmail-payload">', b'id="sealmail-payload">\n  ')
    assert page.extract(spaced) == sealed
    with pytest.raises(MalformedMessage):
        page.extract(b"<html>nothing</html>")


# -- fuzz ---------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_fuzz_parse_random(data: bytes) -> None:
    for blob in (data, fmt.MAGIC + data, fmt.MAGIC + b"\x01\x01" + data):
        try:
            fmt.parse(blob)
        except SealmailError:
            pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_parse_mutations(sealed: bytes, data: st.DataObject) -> None:
    blob = bytearray(sealed)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, 200))
        blob[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    try:
        fmt.parse(bytes(blob[:cut]))
    except SealmailError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_fuzz_page_extract(data: bytes) -> None:
    html = page.MARKER + b'<script id="sealmail-payload">' + data + b"</script>"
    try:
        fmt.parse(page.extract(html))
    except SealmailError:
        pass


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=300))
def test_fuzz_manifest_never_crashes(manifest_tail: bytes) -> None:
    """Authenticated but hostile plaintext (a sender attacking a recipient)."""
    from client.envelope.format import _contents

    for plain in (manifest_tail, struct.pack(">I", len(manifest_tail)) + manifest_tail):
        try:
            _contents(fmt.Kind.ENVELOPE, plain)
        except SealmailError:
            pass
