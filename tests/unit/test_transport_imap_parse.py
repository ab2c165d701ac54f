"""The header sync's parser: imaplib's FETCH data read directly, imapclient's parser as fallback.

The data here has the shape imaplib's ``uid("FETCH", ...)`` returns (a ``(head, literal)``
tuple and the closing line per message); the real wire is covered against Dovecot in
tests/e2e/test_mail_e2e.py::test_fetch_headers_matches_imapclient_and_stops_cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.errors import ConnectionFailed
from client.store.cache import Cache, header_fields
from client.transport.imap import (
    _HEADER_ITEM,
    HeaderRecord,
    content_type_of,
    header_items,
    parse_header_fetch,
)

KEY = _HEADER_ITEM.replace(".PEEK", "").encode()
LIT = b"From: A <a@x.test>\r\nSubject: hi\r\nContent-Type: Multipart/Encrypted; p=1\r\n\r\n"


def _answer(uid: int, lit: bytes = LIT, modseq: bool = True) -> list[object]:
    """One message of a FETCH answer as imaplib returns it (without ``* `` and ``FETCH``)."""
    ms = b" MODSEQ (9)" if modseq else b""
    head = (
        b'%d (UID %d FLAGS (\\Seen $Label) RFC822.SIZE 321 INTERNALDATE " 2-Mar-2024 '
        b'10:11:12 -0130"%s %s {%d}' % (uid, uid, ms, KEY, len(lit))
    )
    return [(head, lit), b")"]


def test_header_items_are_lean() -> None:
    assert "BODYSTRUCTURE" not in header_items(True)
    assert header_items(True)[-1] == "MODSEQ" and "MODSEQ" not in header_items(False)


def test_dovecots_shape_is_read_directly() -> None:
    data = [*_answer(1), *_answer(2)]
    recs = parse_header_fetch(data, need_modseq=True)
    assert [r.uid for r in recs] == [1, 2]
    r = recs[0]
    assert r.flags == ("\\Seen", "$Label") and r.size == 321 and r.modseq == 9
    assert r.internaldate == "2024-03-02T10:11:12-01:30"
    assert r.headers == LIT and r.content_type == "multipart/encrypted"
    assert parse_header_fetch([]) == []


def test_fast_path_and_imapclients_parser_agree() -> None:
    # an unsolicited FLAGS update in the answer sends the whole answer to imapclient's parser
    data = [*_answer(1), *_answer(2)]
    assert parse_header_fetch([*data, b"7 (FLAGS (\\Seen))"], need_modseq=True) == (
        parse_header_fetch(data, need_modseq=True)
    )


def test_other_shapes_fall_back_to_imapclients_parser() -> None:
    # header literal first, the rest after it, plus an unsolicited FLAGS update
    head = b"5 (%s {%d}" % (KEY, len(LIT))
    tail = b' UID 5 FLAGS () RFC822.SIZE 10 INTERNALDATE "02-Mar-2024 10:11:12 +0000")'
    data = [(head, LIT), tail, b"6 (FLAGS (\\Seen))"]
    (rec,) = parse_header_fetch(data)
    assert rec.uid == 5 and rec.flags == () and rec.size == 10
    assert rec.internaldate == "2024-03-02T10:11:12+00:00"
    assert rec.content_type == "multipart/encrypted"
    # a missing MODSEQ where CONDSTORE is on is not accepted by the fast path either
    (rec,) = parse_header_fetch(_answer(7, modseq=False), need_modseq=True)
    assert rec.uid == 7 and rec.modseq is None
    assert rec.internaldate is not None
    assert datetime.fromisoformat(rec.internaldate).astimezone(UTC).hour == 11


def test_content_type_and_header_fields() -> None:
    assert content_type_of(b"Subject: x\r\n\r\n") == "text/plain"
    assert content_type_of(b"content-type:application/pkcs7-mime;x=1\r\n") == (
        "application/pkcs7-mime"
    )
    h = header_fields(b"From: a\r\n b\r\nTo: x\r\nCc: y\r\nTo: z\r\nBad line\r\nSubject: \xff\r\n")
    assert h["from"] == ["a b"] and h["to"] == ["x", "z"] and h["cc"] == ["y"]
    assert h["subject"] == ["\xff"]


def test_put_headers_writes_in_batches_and_reports_errors(tmp_path: Path) -> None:
    def records(n: int, fail: bool) -> Iterator[HeaderRecord]:
        for uid in range(1, n + 1):
            yield HeaderRecord(uid, ("\\Seen",), 10, None, None, LIT, "multipart/encrypted")
        if fail:
            raise ConnectionFailed("lost")

    cache = Cache(tmp_path / "c.sqlite")
    assert cache.put_headers("a@x.test", "INBOX", records(2500, False)) == 2500
    with pytest.raises(ConnectionFailed):
        cache.put_headers("a@x.test", "Other", records(1500, True))
    assert cache.count("a@x.test", "Other") == 1000  # whole batches are kept; state is not
    (first, *_rest) = cache.list("a@x.test", "INBOX", limit=1)
    assert first.uid == 2500 and first.sender == "A <a@x.test>" and first.protected
    cache.close()


@settings(max_examples=400, deadline=None)
@given(st.text("a\r\n", max_size=30).map(str.encode))
def test_imaplib_line_mapping_shim_gives_the_same_bytes(message: bytes) -> None:
    """IMAP4.append canonicalises line ends with ``MapCRLF.sub``; the windowed stand-in
    installed by client.transport.imap must give exactly what the regex gave."""
    import imaplib
    import re

    from client.transport import imap as imap_module

    assert isinstance(imaplib.MapCRLF, imap_module._CanonicalLines)
    original = re.compile(rb"\r\n|\r|\n")
    assert imaplib.MapCRLF.sub(imaplib.CRLF, message) == original.sub(b"\r\n", message)
    assert imaplib.MapCRLF.sub(b"\n", message) == original.sub(b"\n", message)


_MONTH_NAMES = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@settings(max_examples=600, deadline=None)
@given(
    day=st.integers(1, 31),
    space_padded=st.booleans(),
    month=st.integers(1, 12),
    upper=st.booleans(),
    year=st.integers(1900, 2100),
    hms=st.tuples(st.integers(0, 25), st.integers(0, 61), st.integers(0, 61)),
    sign=st.sampled_from("+-"),
    zone=st.tuples(st.integers(0, 23), st.integers(0, 59)),
)
def test_internaldate_text_is_what_datetime_writes(
    day: int,
    space_padded: bool,
    month: int,
    upper: bool,
    year: int,
    hms: tuple[int, int, int],
    sign: str,
    zone: tuple[int, int],
) -> None:
    """INTERNALDATE -> ISO 8601 as datetime.isoformat() writes it, or refused as datetime
    refuses it; a day and zone seen before (remembered) must not let a bad time through."""
    from client.transport import imap as imap_module

    name = _MONTH_NAMES[month - 1].upper() if upper else _MONTH_NAMES[month - 1]
    raw = (
        (f"{day:2d}" if space_padded else f"{day:02d}")
        + f"-{name}-{year:04d} {hms[0]:02d}:{hms[1]:02d}:{hms[2]:02d} {sign}{zone[0]:02d}{zone[1]:02d}"
    )
    offset = timedelta(hours=zone[0], minutes=zone[1]) * (-1 if sign == "-" else 1)
    try:
        want: str | None = datetime(year, month, day, *hms, tzinfo=timezone(offset)).isoformat()
    except ValueError:
        want = None
    good_time = raw[:12] + "10:11:12" + raw[20:]
    for _ in range(2):  # the first call may fill the memo, the second may use it
        if want is None:
            with pytest.raises(imap_module._Unexpected):
                imap_module._idate(raw.encode())
        else:
            assert imap_module._idate(raw.encode()) == want
        try:  # the same day and zone with a valid time: remembered from here on
            imap_module._idate(good_time.encode())
        except imap_module._Unexpected:
            pass


_CTYPE_REFERENCE = __import__("re").compile(
    rb"^content-type[ \t]*:[ \t]*([!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+)", 2 | 8
)  # re.I | re.M: the first line, in any case, that names a type/subtype


@settings(max_examples=800, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"Content-Type",
                b"content-type",
                b"CONTENT-TYPE",
                b"X-Content-Type",
                b"Content-Typo",
                b":",
                b" ",
                b"\t",
                b"\r\n",
                b"\n",
                b"\r",
                b"text",
                b"/",
                b"Plain",
                b"multipart/signed",
                b";",
                b"x",
                b"\xc3\xa9",
            ]
        ),
        max_size=25,
    ).map(b"".join)
)
def test_content_type_is_the_first_line_naming_one(block: bytes) -> None:
    m = _CTYPE_REFERENCE.search(block)
    assert content_type_of(block) == (m.group(1).decode().lower() if m else "text/plain")


_FLAG_WORDS = ["\\Seen", "\\Answered", "\\Flagged", "\\Recent", "$Label1", "$Forwarded"]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(_FLAG_WORDS), max_size=3, unique=True),
            st.integers(1, 10**7),
            st.integers(1, 28),
            st.integers(1, 12),
            st.tuples(st.integers(0, 23), st.integers(0, 59), st.integers(0, 59)),
            st.sampled_from(["+0000", "-0130", "+0530", "+1400"]),
            st.one_of(st.none(), st.integers(1, 10**12)),
            st.binary(max_size=60).map(lambda b: b"Content-Type: a/b\r\nX: " + b + b"\r\n"),
        ),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_whole_answer_path_agrees_with_imapclients_parser(
    messages: list[tuple[list[str], int, int, int, tuple[int, int, int], str, int | None, bytes]],
    need_modseq: bool,
) -> None:
    """Answers in Dovecot's shape are read in one pass (_dovecot_records); imapclient's
    parser, given the same bytes, must find the same records."""
    from client.transport import imap as imap_module

    data: list[object] = []
    for uid, (flags, size, day, month, hms, zone, modseq, lit) in enumerate(messages, 1):
        idate = f"{day:02d}-{_MONTH_NAMES[month - 1]}-2024 {hms[0]:02d}:{hms[1]:02d}:{hms[2]:02d}"
        ms = b"" if modseq is None else b" MODSEQ (%d)" % modseq
        head = b'%d (UID %d FLAGS (%s) RFC822.SIZE %d INTERNALDATE "%s %s"%s %s {%d}' % (
            uid,
            uid,
            " ".join(flags).encode(),
            size,
            idate.encode(),
            zone.encode(),
            ms,
            KEY,
            len(lit),
        )
        data += [(head, lit), b")"]
    whole = imap_module._dovecot_records(data, need_modseq)
    all_modseq = all(m[6] is not None for m in messages)
    assert (whole is not None) == (all_modseq or not need_modseq)
    assert parse_header_fetch(data, need_modseq=need_modseq) == imap_module._slow_records(data)
