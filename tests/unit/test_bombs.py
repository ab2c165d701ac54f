"""Bombs: hostile sizes end in a clear SealmailError (or succeed) within bounded time and memory.

Each case runs in a fresh subprocess (``python -m tests.unit.test_bombs CASE``) that builds
its input, records ``ru_maxrss``, runs the operation, and prints JSON: the outcome (the
SealmailError class name, or ``ok``), the wall time of the operation and the growth of
peak RSS over the baseline taken after the input was built. The parent asserts the bounds.

========================  =======================================================
case                      input
========================  =======================================================
pgp-compressed-1g         1 GiB of zeros in a literal packet, zlib-compressed (~1 MB),
                          encrypted with ``pgpstream.encrypt`` to a test key, opened
                          with ``pgpstream.decrypt`` (limit 256 MiB by default)
pgp-mime-compressed-1g    the same as a PGP/MIME message through ``open_raw``
pgp-nested-compressed     compressed-in-compressed-... 64 levels deep
cms-compressed-1g         CMS CompressedData (RFC 3274) of 1 GiB of zeros, ``cms.decompress``
mime-nested-10000         multipart/mixed nested 10,000 levels, ``open_raw`` and the
                          reader's ``readable``
base64-huge-declared      a base64 part declaring a 100 GB size (Content-Length,
                          Content-Disposition size) with 16 MiB of real content
header-lines-100000       100,000 header lines (short, under the 1 MiB header limit)
header-bytes-100000       100,000 header lines of 40 octets (over the 1 MiB limit)
recipients-10000          10,000 recipients through ``compose.prepare``: refused at once
recipients-1000           1,000 recipients (the limit) through ``prepare`` and policy ``plan``
quoted-header-200k        a Content-Type of 200,000 ``"`` through open_raw, the reader,
                          envelope detect/open (email.policy.default is quadratic on it)
policy-deep-json          a policy file nested 100,000 levels deep
========================  =======================================================
"""

from __future__ import annotations

import base64
import json
import os
import resource
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2020, 6, 1, 12, tzinfo=UTC)
GIB = 1 << 30
WALL_LIMIT = 20.0  # seconds per case: generous for a loaded CI machine


def _zeros_deflated(total: int, *, wbits: int = 15) -> bytes:
    """``total`` zero octets compressed with zlib, built 1 MiB at a time (never in memory)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = bytes(1 << 20)
    out = [comp.compress(chunk) for _ in range(total // len(chunk))]
    out.append(comp.flush())
    return b"".join(out)


def _new_packet(tag: int, body: bytes) -> bytes:
    return bytes([0xC0 | tag, 0xFF]) + struct.pack(">I", len(body)) + body


def _pgp_bomb(size: int = GIB) -> bytes:
    """Encrypted(Compressed(Literal(size zeros))), binary."""
    from client.crypto import pgpstream

    literal_header = (
        bytes([0xC0 | 11, 0xFF]) + struct.pack(">I", size + 6) + b"b\x00\x00\x00\x00\x00"
    )
    comp = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = [comp.compress(literal_header)]
    parts += [comp.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(comp.flush())
    compressed = _new_packet(8, b"\x02" + b"".join(parts))  # algorithm 2 = ZLIB
    pub = (
        REPO.parent
        / "shared/corpus/covert-content-attacks/assets/secret-keys"
        / "manager@bigcorporation-pub.asc"
    ).read_bytes()
    return pgpstream.encrypt(compressed, recipients=[pub], rng=os.urandom, now=NOW)


def _tsk() -> bytes:
    return (
        REPO.parent
        / "shared/corpus/covert-content-attacks/assets/secret-keys"
        / "manager@bigcorporation-sec.asc"
    ).read_bytes()


# -- the cases: each returns (input builder, operation on the input) --------------------------


def _case_pgp_compressed() -> tuple[bytes, Callable[[bytes], object]]:
    from client.crypto import pgpstream

    tsk = _tsk()
    return _pgp_bomb(), lambda d: pgpstream.decrypt(d, secret_keys=[tsk])


def _case_pgp_mime_compressed() -> tuple[bytes, Callable[[bytes], object]]:
    from client.crypto.pgparmor import enarmor
    from client.crypto.recipes import open_raw
    from tests.fuzz.targets import keys

    armored = enarmor(_pgp_bomb())
    raw = (
        b"From: a@example.org\r\nTo: manager@bigcorporation.de\r\nSubject: bomb\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; "
        b'protocol="application/pgp-encrypted"; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n\r\n" + armored + b"\r\n--b--\r\n"
    )
    return raw, lambda d: open_raw(d, keys(), now=NOW)


def _case_pgp_nested_compressed() -> tuple[bytes, Callable[[bytes], object]]:
    from client.crypto import pgpstream

    inner = _new_packet(11, b"b\x00\x00\x00\x00\x00hello")
    for _ in range(64):
        inner = _new_packet(8, b"\x02" + zlib.compress(inner))
    pub = (
        REPO.parent
        / "shared/corpus/covert-content-attacks/assets/secret-keys"
        / "manager@bigcorporation-pub.asc"
    ).read_bytes()
    data = pgpstream.encrypt(inner, recipients=[pub], rng=os.urandom, now=NOW)
    tsk = _tsk()
    return data, lambda d: pgpstream.decrypt(d, secret_keys=[tsk])


def _case_cms_compressed() -> tuple[bytes, Callable[[bytes], object]]:
    from asn1crypto import cms as acms

    from client.crypto import cms

    ci = acms.ContentInfo(
        {
            "content_type": "compressed_data",
            "content": acms.CompressedData(
                {
                    "version": "v0",
                    "compression_algorithm": {"algorithm": "zlib"},
                    "encap_content_info": {
                        "content_type": "data",
                        "content": _zeros_deflated(GIB),
                    },
                }
            ),
        }
    )
    return ci.dump(), lambda d: cms.decompress(d)


def _case_mime_nested() -> tuple[bytes, Callable[[bytes], object]]:
    from client.crypto.recipes import open_raw
    from client.mime.render import readable
    from tests.fuzz.targets import keys

    depth = 10_000
    head = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        for i in range(depth)
    )
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    raw = b"From: a@example.org\r\nMIME-Version: 1.0\r\n" + head + b"\r\nhello" + tail

    def op(d: bytes) -> object:
        # every way a received message or attachment is parsed must refuse it
        from client.envelope.open import open_bytes
        from client.errors import MessageTooLarge, SealmailError

        calls: list[Callable[[], object]] = [
            lambda: open_raw(d, keys(), now=NOW),
            lambda: readable(d),
            lambda: open_bytes(d, keys=keys(), password=lambda: None, now=NOW, filename="a.eml"),
        ]
        got = []
        for call in calls:
            try:
                call()
                got.append("ok")
            except SealmailError as exc:
                got.append(type(exc).__name__)
        if set(got) != {"MessageTooLarge"}:
            raise AssertionError(got)
        raise MessageTooLarge("every parser refused the nesting")

    return raw, op


def _case_base64_huge() -> tuple[bytes, Callable[[bytes], object]]:
    from client.crypto.recipes import open_raw
    from client.mime.render import readable
    from tests.fuzz.targets import keys

    payload = base64.encodebytes(os.urandom(16 << 20)).replace(b"\n", b"\r\n")
    raw = (
        b"From: a@example.org\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Length: 100000000000\r\n"
        b'Content-Disposition: attachment; filename="x.bin"; size=100000000000\r\n\r\n'
        + payload
        + b"\r\n--b--\r\n"
    )

    def op(d: bytes) -> object:
        opened = open_raw(d, keys(), now=NOW)
        return readable(opened.message)

    return raw, op


def _case_header_lines(width: int) -> tuple[bytes, Callable[[bytes], object]]:
    from client.crypto.recipes import open_raw
    from tests.fuzz.targets import keys

    line = b"X-H: " + b"v" * (width - 7) + b"\r\n"
    raw = b"From: a@example.org\r\n" + line * 100_000 + b"\r\nbody\r\n"
    return raw, lambda d: open_raw(d, keys(), now=NOW)


def _case_recipients(n: int = 10_000) -> tuple[bytes, Callable[[bytes], object]]:
    from client.mime.compose import prepare
    from client.policy.orgpolicy import DEFAULT_POLICY
    from client.policy.plan import Draft, KeyStatus, RecipientKeyStatus, plan

    addrs = [f"patient{i}@clinic{i % 97}.example" for i in range(n)]
    raw = (
        b"From: doc@hospital.example\r\nTo: "
        + ",\r\n ".join(addrs).encode()
        + b"\r\nSubject: results\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain\r\n\r\nhello\r\n"
    )
    status = KeyStatus({a: RecipientKeyStatus(a, smime=i % 2 == 0) for i, a in enumerate(addrs)})

    def op(d: bytes) -> object:
        prepared = prepare(d, encrypt=True, now=NOW, rng=os.urandom)
        assert len(prepared.recipients) == n
        p = plan(
            Draft("results", "doc@hospital.example"),
            prepared.recipients,
            status,
            DEFAULT_POLICY,
            NOW,
        )
        assert len(p.recipients) == n
        return p

    return raw, op


def _case_quoted_header() -> tuple[bytes, Callable[[bytes], object]]:
    """200,000 quote characters in a Content-Type: email.policy.default is quadratic on it
    (8 s for 25 KB, found by tests/fuzz); every received-mail parser must stay linear."""
    from client.crypto.recipes import open_raw
    from client.envelope.open import detect, open_bytes
    from client.mime.render import readable
    from tests.fuzz.targets import keys

    raw = (
        b"From: a@example.org\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; a"
        + b'"' * 200_000
        + b"\r\n\r\nbody\r\n"
    )

    def op(d: bytes) -> object:
        from client.errors import SealmailError

        first: SealmailError | None = None
        for call in (
            lambda: open_raw(d, keys(), now=NOW),
            lambda: readable(d),
            lambda: detect(d, "a.eml"),
            lambda: open_bytes(d, keys=keys(), password=lambda: None, now=NOW, filename="a.eml"),
        ):
            try:
                call()
            except SealmailError as exc:
                first = first or exc
        if first is not None:
            raise first
        return None

    return raw, op


def _case_policy_deep_json() -> tuple[bytes, Callable[[bytes], object]]:
    from client.policy.orgpolicy import parse_policy

    raw = b'{"version": 1, "name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    return raw, parse_policy


CASES: dict[str, Callable[[], tuple[bytes, Callable[[bytes], object]]]] = {
    "quoted-header-200k": _case_quoted_header,
    "policy-deep-json": _case_policy_deep_json,
    "pgp-compressed-1g": _case_pgp_compressed,
    "pgp-mime-compressed-1g": _case_pgp_mime_compressed,
    "pgp-nested-compressed": _case_pgp_nested_compressed,
    "cms-compressed-1g": _case_cms_compressed,
    "mime-nested-10000": _case_mime_nested,
    "base64-huge-declared": _case_base64_huge,
    "header-lines-100000": lambda: _case_header_lines(10),
    "header-bytes-100000": lambda: _case_header_lines(40),
    "recipients-10000": _case_recipients,
    "recipients-1000": lambda: _case_recipients(1000),
}

# (allowed outcomes, peak RSS growth bound in MiB)
EXPECT: dict[str, tuple[set[str], int]] = {
    "quoted-header-200k": ({"UnsupportedMessage", "MalformedMessage"}, 100),
    "policy-deep-json": ({"InvalidPolicy"}, 100),
    # the decompression limit is 256 MiB (pgpstream/cms DEFAULT_*): a bomb is refused at it
    "pgp-compressed-1g": ({"MessageTooLarge"}, 320),
    "pgp-mime-compressed-1g": ({"MessageTooLarge"}, 320),
    "pgp-nested-compressed": ({"MessageTooLarge", "MalformedMessage", "UnsupportedMessage"}, 64),
    "cms-compressed-1g": ({"MessageTooLarge"}, 320),
    "mime-nested-10000": ({"MessageTooLarge"}, 256),
    "base64-huge-declared": ({"ok"}, 200),
    "header-lines-100000": ({"ok", "MessageTooLarge"}, 200),
    "header-bytes-100000": ({"MessageTooLarge"}, 64),
    # more than 1,000 addresses is refused before the (slow) address parser runs; the limit
    # itself is protected and planned normally
    "recipients-10000": ({"TooManyRecipients"}, 64),
    "recipients-1000": ({"ok"}, 128),
}


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _child(case: str) -> None:
    import warnings

    from client.errors import SealmailError

    warnings.simplefilter("ignore")
    data, op = CASES[case]()
    base = _maxrss_mib()
    start = time.perf_counter()
    try:
        op(data)
        outcome, message = "ok", ""
    except SealmailError as exc:
        outcome, message = type(exc).__name__, str(exc)
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "case": case,
                "outcome": outcome,
                "message": message[:200],
                "seconds": round(seconds, 3),
                "rss_growth_mib": round(_maxrss_mib() - base, 1),
                "input_bytes": len(data),
            }
        )
    )


def run_case(case: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.unit.test_bombs", case],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=WALL_LIMIT * 6 + 60,  # building the 1 GiB inputs takes a few seconds too
        env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _param(case: str) -> object:
    return pytest.param(case, id=case)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bomb(case: str) -> None:
    result = run_case(case)
    outcomes, rss_bound = EXPECT[case]
    assert result["outcome"] in outcomes, result
    assert float(result["seconds"]) < WALL_LIMIT, result  # type: ignore[arg-type]
    assert float(result["rss_growth_mib"]) < rss_bound, result  # type: ignore[arg-type]


if __name__ == "__main__":
    _child(sys.argv[1])
