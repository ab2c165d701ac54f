"""The lean FETCH path of a header sync: framing, the fast parser and its fallback."""

from __future__ import annotations

import imaplib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from client.errors import ConnectionFailed
from client.store.cache import Cache, header_fields
from client.transport.imap import (
    _HEADER_ITEM,
    HeaderRecord,
    content_type_of,
    header_items,
    parse_header_fetch,
    read_fetch_answer,
)

KEY = _HEADER_ITEM.replace(".PEEK", "").encode()
LIT = b"From: A <a@x.test>\r\nSubject: hi\r\nContent-Type: Multipart/Encrypted; p=1\r\n\r\n"


class _Conn:
    """What read_fetch_answer uses of an imaplib connection, over bytes in memory."""

    abort = imaplib.IMAP4.abort
    error = imaplib.IMAP4.error

    def __init__(self, wire: bytes) -> None:
        self.file = io.BytesIO(wire)
        self.tagged_commands: dict[bytes, Any] = {b"A1": None}
        self.untagged: list[tuple[str, bytes]] = []

    def read(self, n: int) -> bytes:
        return self.file.read(n)

    def _append_untagged(self, typ: str, dat: bytes) -> None:
        self.untagged.append((typ, dat))


def _line(uid: int, lit: bytes = LIT, modseq: bool = True) -> bytes:
    ms = b" MODSEQ (9)" if modseq else b""
    return (
        (
            b'* %d FETCH (UID %d FLAGS (\\Seen $Label) RFC822.SIZE 321 INTERNALDATE " 2-Mar-2024 '
            b'10:11:12 -0130"%s %s {%d}\r\n' % (uid, uid, ms, KEY, len(lit))
        )
        + lit
        + b")\r\n"
    )


def test_header_items_are_lean() -> None:
    assert "BODYSTRUCTURE" not in header_items(True)
    assert header_items(True)[-1] == "MODSEQ" and "MODSEQ" not in header_items(False)


def test_reader_frames_fetch_and_keeps_other_untagged_responses() -> None:
    wire = _line(1) + b"* 3 EXISTS\r\n" + _line(2) + b"A1 OK done\r\n"
    conn = _Conn(wire)
    status, data = read_fetch_answer(conn, b"A1")  # type: ignore[arg-type]
    assert status == "OK" and conn.tagged_commands == {}
    assert conn.untagged == [("EXISTS", b"3")]
    recs = parse_header_fetch(data, need_modseq=True)
    assert [r.uid for r in recs] == [1, 2]
    r = recs[0]
    assert r.flags == ("\\Seen", "$Label") and r.size == 321 and r.modseq == 9
    assert r.internaldate == datetime(
        2024, 3, 2, 10, 11, 12, tzinfo=timezone(-timedelta(minutes=90))
    )
    assert r.headers == LIT and r.content_type == "multipart/encrypted"


def test_reader_reports_no_and_refuses_bad_and_bye_and_eof() -> None:
    assert read_fetch_answer(_Conn(b"A1 NO [SERVERBUG] oops\r\n"), b"A1") == (  # type: ignore[arg-type]
        "NO",
        [b"[SERVERBUG] oops"],
    )
    with pytest.raises(imaplib.IMAP4.error):
        read_fetch_answer(_Conn(b"A1 BAD syntax\r\n"), b"A1")  # type: ignore[arg-type]
    with pytest.raises(imaplib.IMAP4.abort):
        read_fetch_answer(_Conn(b"* BYE shutting down\r\n"), b"A1")  # type: ignore[arg-type]
    with pytest.raises(imaplib.IMAP4.abort):
        read_fetch_answer(_Conn(_line(1)[:60]), b"A1")  # type: ignore[arg-type]


def test_other_shapes_fall_back_to_imapclients_parser() -> None:
    # header literal first, the rest after it, plus an unsolicited FLAGS update
    head = b"5 (%s {%d}" % (KEY, len(LIT))
    tail = b' UID 5 FLAGS () RFC822.SIZE 10 INTERNALDATE "02-Mar-2024 10:11:12 +0000")'
    data = [(head, LIT), tail, b"6 (FLAGS (\\Seen))"]
    (rec,) = parse_header_fetch(data)
    assert rec.uid == 5 and rec.flags == () and rec.size == 10
    assert rec.internaldate is not None and rec.internaldate.utcoffset() == timedelta(0)
    assert rec.content_type == "multipart/encrypted"
    # a missing MODSEQ where CONDSTORE is on is not accepted by the fast path either
    conn = _Conn(_line(7, modseq=False) + b"A1 OK\r\n")
    _s, data = read_fetch_answer(conn, b"A1")  # type: ignore[arg-type]
    (rec,) = parse_header_fetch(data, need_modseq=True)
    assert rec.uid == 7 and rec.modseq is None
    assert rec.internaldate is not None
    assert rec.internaldate.astimezone(UTC).hour == 11


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
