"""Regression cases for what the long fuzz runs found (see docs/ATTACKS.md, "Fuzzing").

cms, 2026-11-23 long run: a high tag number whose base-128 field runs on for many KB
(``0x1F`` then ``0xFF`` octets) made asn1crypto spend O(n²) in its tag loop — 15 s for the
300 KB fuzz input, minutes for a few MB: a denial of service from one received message.
Every CMS entry point now runs :func:`client.crypto.bercheck.check_headers` first. Each
case runs under the fuzz harness's per-input guard, so a regression shows up as ``hang``.

pgp, same run: a packet pile with a packet tag pysequoia cannot name (15) made
``pgpsig.signature_issuers`` leak pysequoia's ``RuntimeError`` ("Unknown packet tag: 15")
from ``packet.tag``; such a packet is now skipped (it is no signature). The fuzzer's input
is ``regressions/pgp-unknown-packet-tag-15.bin``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from client.crypto import bercheck, cms, pgpsig
from client.errors import MalformedMessage, MessageTooLarge
from tests.fuzz.harness import Stats, run_one
from tests.fuzz.targets import TARGETS, keys

LONG_TAG = b"\x30\x80" + b"\x1f" + b"\xff" * 400_000 + b"\x01\x00" + b"\x00\x00"


ENTRIES = [
    "content_info_type",
    "verify",
    "decrypt",
    "decrypt-password",
    "decompress",
    "describe_recipients",
    "extract_certificates",
]


def _cms_calls() -> dict[str, object]:
    with warnings.catch_warnings():  # the corpus PKCS#12 file is legacy-encrypted
        warnings.simplefilter("ignore")
        ident = keys().smime_identities()[0]
    return {
        "content_info_type": cms.content_info_type,
        "verify": cms.verify,
        "decrypt": lambda d: cms.decrypt(d, cert=ident.certificate, key=ident.private_key),
        "decrypt-password": lambda d: cms.decrypt(d, password=b"pw"),
        "decompress": cms.decompress,
        "describe_recipients": cms.describe_recipients,
        "extract_certificates": cms.extract_certificates,
    }


@pytest.mark.parametrize("entry", ENTRIES)
@pytest.mark.parametrize(
    "where", ["top", "inside-content"], ids=["long-tag-top", "long-tag-inside-content"]
)
def test_cms_long_tag_number_is_refused_fast(entry: str, where: str) -> None:
    data = LONG_TAG
    if where == "inside-content":  # inside a SignedData ContentInfo, as the fuzzer had it
        data = (
            b"\x30\x80\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02\xa0\x80"
            + LONG_TAG
            + b"\x00\x00\x00\x00"
        )
    stats = Stats("cms-regression")
    func = _cms_calls()[entry]
    outcome = run_one(func, data, stats, time_limit=10.0)  # type: ignore[arg-type]
    assert outcome == "refused", [f.summary for f in stats.findings.values()]


def test_check_headers_accepts_every_cms_seed() -> None:
    seeds = TARGETS["cms"].seeds()
    assert len(seeds) > 50
    for s in seeds:
        bercheck.check_headers(s)  # valid BER is never refused


@pytest.mark.parametrize(
    "data",
    [b"", b"\x30", b"\x30\x84\xff\xff", b"\x04\x85\x01\x02", b"\x1f\x81", b"\x30\x80\x00\x00"],
)
def test_check_headers_leaves_other_damage_to_the_parser(data: bytes) -> None:
    bercheck.check_headers(data)  # truncation and bad lengths: asn1crypto reports them


def test_check_headers_refuses_a_long_tag_anywhere() -> None:
    with pytest.raises(MalformedMessage):
        bercheck.check_headers(b"\x30\x06\x04\x01x" + b"\x3f\x81\x82\x83\x84\x05\x00")
    bercheck.check_headers(b"\x30\x06\x04\x01x" + b"\x3f\x81\x82\x03\x00")  # 3 octets: fine


REGRESSIONS = Path(__file__).parent / "regressions"


def test_pgp_unknown_packet_tag_is_not_a_crash() -> None:
    data = (REGRESSIONS / "pgp-unknown-packet-tag-15.bin").read_bytes()
    assert pgpsig.signature_issuers(data) == []  # a PKESK and an unnamed packet: no signature
    stats = Stats("pgp-regression")
    assert run_one(TARGETS["pgp"].func, data, stats, time_limit=10.0) in ("ok", "refused")


def test_mime_content_type_of_semicolons_is_refused_fast() -> None:
    """mime, same day: a 60 KB Content-Type (an open quote, then ``;`` x 54,000) kept the
    email package's parameter parser (O(n²), called by its own feed parser for the
    boundary) busy for > 10 s. Such fields are now refused before that parser runs."""
    data = (REGRESSIONS / "mime-content-type-semicolons.bin").read_bytes()
    stats = Stats("mime-regression")
    assert run_one(TARGETS["mime"].func, data, stats, time_limit=10.0) == "refused"
    assert stats.errors["MalformedMessage"] == 1


def test_envelope_with_deep_nesting_and_bare_crs_is_refused_fast() -> None:
    """envelope, same day: ~300 nested multiparts over ~70,000 bare CRs took the feed
    parser ~6 s (each line is tested against every open boundary: depth x lines). A tree
    declaring more than ``raw.MAX_BOUNDARIES`` boundaries is now refused before parsing."""
    from client.mime import raw

    data = (REGRESSIONS / "envelope-hang-bare-cr.bin").read_bytes()
    stats = Stats("envelope-regression")
    assert run_one(TARGETS["envelope"].func, data, stats, time_limit=10.0) == "refused"
    with pytest.raises(MessageTooLarge, match="boundaries"):
        raw.parse_tree(data)
    # at the limit a tree still parses
    nested = b"".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n".encode()
        for i in range(raw.MAX_BOUNDARIES)
    )
    assert raw.parse_tree(b"From: a\r\n" + nested + b"\r\nhi\r\n").is_multipart()


def test_pgp_many_cleartext_markers_stay_linear() -> None:
    """pgp, second long run: 1,096 ``BEGIN PGP SIGNED MESSAGE`` markers and no signature
    block. The cleartext regex (a lazy body per marker) was quadratic: 3.9 s for this
    215 KB input, 9 s for 2,000 short frames. The frame is now found with plain searches
    and at most a few markers are tried."""
    data = (REGRESSIONS / "pgp-cleartext-markers.bin").read_bytes()
    stats = Stats("pgp-regression")
    assert run_one(TARGETS["pgp"].func, data, stats, time_limit=2.0) in ("ok", "refused")
    frames = b"".join(
        b"-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\n" + b"x" * 100 + b"\r\n"
        for _ in range(20_000)
    )
    stats = Stats("pgp-regression")
    outcome = run_one(pgpsig.split_cleartext, frames, stats, time_limit=2.0)
    assert outcome == "refused"  # MalformedMessage: no signature block, in well under 2 s


def test_cms_long_tag_behind_an_overrunning_child_is_refused_fast() -> None:
    """cms, re-run after the first bercheck: a 78 KB tag number sat after a constructed
    element whose child overran it. asn1crypto parses that element's next sibling at the
    element's end; the flat pre-check walked into the broken child, lost step and never
    saw the tag (13 s per input). The walk now follows element ends."""
    data = (REGRESSIONS / "cms-long-tag-after-overrun.bin").read_bytes()
    with pytest.raises(MalformedMessage, match="tag number"):
        bercheck.check_headers(data)
    stats = Stats("cms-regression")
    assert run_one(cms.describe_recipients, data, stats, time_limit=2.0) == "refused"
    # the shape, small: SEQUENCE { SEQUENCE(len 2) { OCTET STRING len 9 (overruns) }, long tag }
    inner = b"\x30\x02\x04\x09"
    sibling = b"\x1f" + b"\xff" * 8 + b"\x01\x00"
    outer = b"\x30" + bytes([len(inner) + len(sibling)]) + inner + sibling
    with pytest.raises(MalformedMessage, match="tag number"):
        bercheck.check_headers(outer)


def test_cms_deep_indefinite_nesting_is_walked_in_linear_time() -> None:
    """cms, re-run after finding 10: the pre-check found the current limit by searching
    down its stack for the nearest definite-length end; ~10,000 nested indefinite-length
    elements (``30 80`` repeated, the fuzzer's 890 KB input) made each step walk them
    all — quadratic, over 10 s. Each stack entry now carries that end."""
    depth = 200_000
    nested = b"\x30\x80" * depth + b"\x1f" + b"\xff" * 8 + b"\x01\x00"
    data = b"\x30\x84" + len(nested).to_bytes(4, "big") + nested
    stats = Stats("cms-regression")
    assert run_one(bercheck.check_headers, data, stats, time_limit=5.0) == "refused"
    # and the same depth closed properly is valid BER that the pre-check lets through
    closed = b"\x30\x80" * depth + b"\x05\x00" + b"\x00\x00" * depth
    assert run_one(bercheck.check_headers, closed, stats, time_limit=5.0) == "ok"


def test_envelope_detect_with_8bit_octets_in_a_base64_payload() -> None:
    """envelope, 2026-11-23 short run: an application/pkcs7-mime part whose base64 body
    holds octets above 127 crashed ``detect`` with UnicodeEncodeError (``get_payload()``
    hands them back as U+FFFD). Now the stdlib's lenient decoding answers instead."""
    from client.envelope import open as env_open
    from client.mime.raw import decoded_payload, parse_tree

    data = (Path(__file__).parent / "regressions" / "envelope-8bit-base64-payload.bin").read_bytes()
    assert any(b > 127 for b in data)
    assert env_open.detect(data, "SecureMessage.html") is env_open.OpenKind.SMIME
    msg = parse_tree(data)
    assert decoded_payload(msg) == msg.get_payload(decode=True)
    stats = Stats("envelope-regression")
    assert run_one(TARGETS["envelope"].func, data, stats, time_limit=10.0) in ("ok", "refused")


@pytest.mark.parametrize("kind", [b"text/plain", b"multipart/mixed"])
@pytest.mark.parametrize("junk", [b"\xf3" * 30, b"\xf3" * 90, b"x" * 90])
def test_protect_refuses_parameters_the_email_folder_cannot_fold(kind: bytes, junk: bytes) -> None:
    """protect, 2026-11-23 guided run (seconds in): a Content-Type whose parameter name was
    a run of 8-bit octets made the email package's RFC 2231 folder loop forever (in
    prepare() and in the streaming path alike) or raise UnicodeEncodeError. Protection now
    refuses such fields with MalformedMessage, at once."""
    import random
    from datetime import UTC, datetime

    from client.mime import compose

    data = (
        b"From: a@example.org\r\nTo: b@example.net\r\nContent-Type: " + kind + b"; " + junk
        + b'boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nh\xc3\xa9llo\r\n--x--\r\n'
    )  # fmt: skip
    with pytest.raises(MalformedMessage):
        compose.prepare(data, encrypt=True, now=datetime.now(UTC), rng=random.Random(1).randbytes)
    stats = Stats("protect-regression")
    assert run_one(TARGETS["protect"].func, data, stats, time_limit=10.0) in ("ok", "refused")


PROTECT_FINDINGS = sorted((Path(__file__).parent / "regressions").glob("protect-*.bin"))


@pytest.mark.parametrize("path", PROTECT_FINDINGS, ids=lambda p: p.name)
def test_protect_findings_replay_cleanly(path: Path) -> None:
    """Every input the guided protect run saved (docs/ATTACKS.md, findings 13-17): the
    email folder's endless loop on a long parameter name, also inside a message/rfc822
    part; a CR in a parameter value and the address parser's AttributeError, both leaking
    out of prepare(); and two differences between the streaming path and prepare(). Each
    now returns or is refused (MalformedMessage) at once, and both paths agree."""
    stats = Stats("protect-regression")
    outcome = run_one(TARGETS["protect"].func, path.read_bytes(), stats, time_limit=10.0)
    assert outcome in ("ok", "refused"), stats.findings


def test_protect_findings_are_saved() -> None:
    assert len(PROTECT_FINDINGS) >= 9


def test_protect_bounds_the_header_it_refolds() -> None:
    """protect, mutation run (--seed 2411): a 4 MB message whose header held a huge
    non-ASCII field kept the email package's encoded-word folder busy for 89 s (it grows
    faster than linearly: 0.8 s for 64 KB). prepare() and the streaming path now refuse a
    header section over 256 KiB, or one field over 128 KiB, with MessageTooLarge at once;
    a 100 KB Subject and a message to 1,000 recipients with names are still protected."""
    import random
    from datetime import UTC, datetime

    from client.mime import compose

    def message(header: bytes) -> bytes:
        return b"From: a@example.org\r\nTo: b@example.net\r\n" + header + b"\r\n\r\nhello\r\n"

    def protect(data: bytes) -> bytes:
        return compose.prepare(
            data, encrypt=True, now=datetime.now(UTC), rng=random.Random(1).randbytes
        ).inner

    huge = message(b"Subject: " + "Grüße ".encode() * 200_000)  # 1.6 MB
    with pytest.raises(MessageTooLarge):
        protect(huge)
    many = message(
        b"Cc: " + ", ".join(f"Pätient {i} <p{i}@example.org>" for i in range(998)).encode()
    )
    assert b"p997@example.org" in protect(many)
    long_subject = protect(message(b"Subject: " + "Grüße ".encode() * 14_000))  # 112 KB
    assert long_subject.count(b"=?utf-8?") > 100  # folded into encoded words, not refused
    for data in (huge, many):
        stats = Stats("protect-regression")
        assert run_one(TARGETS["protect"].func, data, stats, time_limit=10.0) in ("ok", "refused")


def test_protect_bounds_non_ascii_in_address_fields() -> None:
    """protect, mutation run (--seed 2412): 43 KB of 8-bit octets inside a From address
    took the email package minutes to fold (~4 ms per octet; ~2 ms per character for
    valid UTF-8 in an address). Header fields that are not UTF-8 are now refused, and the
    address fields may hold at most 4,096 non-ASCII octets; 1,000 recipients named with
    umlauts are still protected."""
    import random
    from datetime import UTC, datetime

    from client.mime import compose

    def protect(header: bytes) -> bytes:
        data = b"From: a@example.org\r\n" + header + b"\r\n\r\nhello\r\n"
        return compose.prepare(
            data, encrypt=True, now=datetime.now(UTC), rng=random.Random(1).randbytes
        ).inner

    with pytest.raises(MalformedMessage, match="not UTF-8"):
        protect(b'To: "Al' + b"\x80" * 40 + b'" <al@example.org>')
    with pytest.raises(MessageTooLarge):
        protect(
            b"To: " + ", ".join(f"Müßig-Äöü {i} <m{i}@example.org>" for i in range(900)).encode()
        )
    named = protect(
        b"To: " + ", ".join(f"Müller {i} <m{i}@example.org>" for i in range(999)).encode()
    )
    assert b"m998@example.org" in named


def test_open_opaque_signed_data_of_another_content_type_goes_in_memory() -> None:
    """open, 2026-11-24 guided run (seed 20261130, input 15,908; docs/ATTACKS.md finding
    21): an opaque signed message whose eContentType OID had one octet changed. In memory
    asn1crypto reads such content with its segment headers; the streaming reader gave the
    segments' octets, so the two opened different messages. Only id-data streams now."""
    data = Path(__file__).parent / "regressions/open-opaque-econtent-type-not-id-data.bin"
    stats = Stats("open-regression")
    outcome = run_one(TARGETS["open"].func, data.read_bytes(), stats, time_limit=10.0)
    assert outcome in ("ok", "refused"), stats.findings
