"""The cache's fast header path gives exactly what the old one gave, and stores it in bulk.

:func:`client.store.cache.list_fields` replaced reading :func:`header_fields` into a dict
and decoding From, To + Cc and Subject. ``_reference`` below is that old code, frozen
(the same lines as before the change), and every tricky header block here — RFC 2047 in
several charsets, broken encoded words, unknown charsets, folding in odd places,
duplicate and oddly-cased names, Latin-1 bytes, CR-only and LF-only line ends, Unicode
whitespace — plus a few thousand random blocks built from those pieces must come out
identical. ``put_headers`` then stores in multi-row INSERTs; the rows must be the ones the
old per-row ``executemany`` wrote, however the batch is split into statements.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from client.errors import UsageError
from client.store.cache import BATCH, Cache, CachedMessage, header_fields, list_fields
from client.transport.imap import HeaderRecord, content_type_of

_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _old_header_fields(raw: bytes) -> dict[str, list[str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "\n " in text or "\n\t" in text:
        text = _FOLD.sub("", text)
    out: dict[str, list[str]] = {}
    for line in text.split("\n"):
        name, sep, value = line.partition(":")
        name = name.rstrip(" \t")
        if not sep or not name or " " in name or "\t" in name:
            continue
        key = name.lower()
        values = out.get(key)
        if values is None:
            out[key] = [value.strip()]
        else:
            values.append(value.strip())
    return out


def _old_decode(value: str | None) -> str:
    if not value:
        return ""
    if "=?" not in value:
        return value.replace("\r", "").replace("\n", " ")
    try:
        return str(make_header(decode_header(value))).replace("\r", "").replace("\n", " ")
    # the one deliberate change: HeaderParseError (bad base64 in an encoded word) used to
    # escape and abort the whole sync; now the value is kept raw like other bad words
    except (ValueError, LookupError, UnicodeError, HeaderParseError):
        return value


def _reference(raw: bytes) -> tuple[str, ...]:
    """The listing fields exactly as ``Cache.put_headers`` computed them before."""
    h = _old_header_fields(raw)
    get = h.get
    none: list[str] = []
    return (
        _old_decode((get("from") or none or [""])[0]),
        _old_decode(", ".join((get("to") or none) + (get("cc") or none))),
        _old_decode((get("subject") or none or [""])[0]),
        (get("date") or none or [""])[0],
        (get("message-id") or none or [""])[0],
        (get("in-reply-to") or none or [""])[0],
    )


TRICKY: list[bytes] = [
    b"",
    b"\r\n",
    b"From: A <a@x.test>\r\nTo: b@x.test\r\nSubject: plain\r\n\r\n",
    # RFC 2047: Q and B, several charsets, adjacent words, mixed with plain text
    b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n",
    b"Subject: =?utf-8?B?0J/RgNC40LLQtdGC?= =?utf-8?B?INC80LjRgA==?=\r\n",
    b"From: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>\r\n",
    b"Subject: =?koi8-r?B?8NLJ18XU?=\r\n",
    b"Subject: =?windows-1252?Q?=80uro_=93quoted=94?=\r\n",
    b"Subject: =?iso-2022-jp?B?GyRCJEckOSEjGyhC?=\r\n",
    b"Subject: =?x-unknown-charset?Q?abc?=\r\n",
    b"Subject: =?utf-8?Q?broken=ZZ?= and =?utf-8?B?not base64!!?=\r\n",
    b"Subject: =?utf-8?Q?line=0D=0Abreak?=\r\n",
    b"Subject: half =? an encoded word ?= here\r\n",
    b"Subject: =?utf-8?q?a?=\r\n =?utf-8?q?b?=\r\n",
    b"To: =?utf-8?Q?J=C3=B6rg?= <j@x.test>\r\nCc: =?utf-8?Q?=C3=85sa?= <a@x.test>\r\n",
    # folding: values, tabs, before the colon, across names, at the very start
    b"Subject: a long\r\n\tsubject\r\n  continued\r\nFrom: x\r\n",
    b"From\r\n : folded before the colon\r\n",
    b"Subj\r\n ect: not a subject\r\nSubject: real\r\n",
    b" Subject: leading space line\r\nSubject: second\r\n",
    b"\tFrom: leading tab\r\n",
    # names: case, duplicates (first wins; To/Cc all), spaces, no colon, empty
    b"SUBJECT: upper\r\nsubject: lower\r\nSubject: mixed\r\n",
    b"Message-Id: <a@x>\r\nMESSAGE-ID: <b@x>\r\nIn-reply-to: <c@x>\r\n",
    b"To: a@x\r\nCC: c@x\r\nTo: b@x\r\ncc: d@x\r\n",
    b"Cc: only-cc@x\r\n",
    b"To:\r\nCc: after-empty-to@x\r\n",
    b"Subject : space before colon\r\nFrom\t: tab before colon\r\n",
    b"Bad line\r\nno colon here\r\n: empty name\r\nSub ject: spaced name\r\nDate: ok\r\n",
    b"Subject:\r\nFrom:   \r\nDate: \t \r\n",
    b"Subject: a: b: c\r\nFrom: x:y\r\n",
    # bytes: Latin-1 (invalid UTF-8), raw UTF-8 (RFC 6532), mixed
    b"Subject: caf\xe9\r\nFrom: \xc4ngstr\xf6m <a@x>\r\n",
    "Subject: Grüße, 日本語\r\nFrom: Jörg <j@x.test>\r\n".encode(),
    "Subject: ok ü\r\n".encode() + b"From: bad \xff\r\n",
    b"Subject: trailing nbsp\xa0\r\nFrom: \x85next line char\r\n",
    "Subject: unicode space\u2003\r\nTo: \u2028sep\r\n".encode(),
    "\u212aey: kelvin\r\n\u0130n-Reply-To: <dotted@x>\r\nSubject: after\r\n".encode(),
    # line ends: LF only, CR only, lone CR inside, no final newline, NUL and controls
    b"From: lf@x\nSubject: lf only\nDate: d\n\n",
    b"From: cr@x\rSubject: cr only\r",
    b"Subject: inner\rcarriage\r\nFrom: a\r\r\n",
    b"Subject: no final newline",
    b"Subject: nul\x00 and \x1b escape\r\n",
    b"Subject:\x1cfile separator\x1d\r\n",
    b"References: <r@x>\r\nContent-Type: multipart/encrypted; protocol=x\r\n\r\n",
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID:   <spaced@x>  \r\n"
    b"In-Reply-To: <p@x>\r\n <q@x>\r\n",
]


def _random_blocks(n: int, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    names = [
        b"From",
        b"FROM",
        b"To",
        b"tO",
        b"Cc",
        b"CC",
        b"Subject",
        b"subject",
        b"Date",
        b"Message-ID",
        b"Message-Id",
        b"In-Reply-To",
        b"References",
        b"Content-Type",
        b"X-Other",
        b"Sub ject",
        b"",
        b" From",
    ]
    seps = [b":", b": ", b" :", b"\t: ", b"", b"::"]
    values = [
        b"plain",
        b"=?utf-8?q?J=C3=B6rg?=",
        b"=?iso-8859-1?b?4+T1?=",
        b"=?bogus?q?x?=",
        b"=?utf-8?b?!!?=",
        b"caf\xe9",
        "ü日".encode(),
        b"a\r\n b",
        b"a\n\tb",
        b"x\ry",
        b"  padded  ",
        b"\xa0nb\xa0",
        b"",
        b"=?",
        b"?=",
    ]
    ends = [b"\r\n", b"\n", b"\r", b"\r\n ", b"\r\n\t"]
    for _ in range(n):
        parts = []
        for _line in range(rng.randint(0, 8)):
            parts.append(
                rng.choice(names) + rng.choice(seps) + rng.choice(values) + rng.choice(ends)
            )
        if rng.random() < 0.2:
            parts.insert(rng.randint(0, len(parts)), rng.choice(values) + rng.choice(ends))
        yield b"".join(parts)


@pytest.mark.parametrize("raw", TRICKY, ids=range(len(TRICKY)))
def test_list_fields_equals_the_old_path_on_tricky_headers(raw: bytes) -> None:
    assert list_fields(raw) == _reference(raw)
    assert header_fields(raw) == _old_header_fields(raw)


def test_list_fields_equals_the_old_path_on_random_blocks() -> None:
    blocks = list(_random_blocks(4000, seed=5))
    assert sum(b"=?" in b for b in blocks) > 500  # the RFC 2047 path is exercised
    mismatches = [b for b in blocks if list_fields(b) != _reference(b)]
    assert mismatches == []


def test_tricky_fields_really_are_decoded() -> None:
    # guards the reference itself: the equivalence above is not between two no-ops
    assert list_fields(TRICKY[3])[2] == "Grüße aus Köln"
    assert list_fields(TRICKY[5])[0] == "André Pirard <PIRARD@vm1.ulg.ac.be>"
    assert list_fields(TRICKY[14])[1] == "Jörg <j@x.test>, Åsa <a@x.test>"
    assert list_fields(TRICKY[20])[2] == "upper"
    assert list_fields(TRICKY[22])[1] == "a@x, b@x, c@x, d@x"
    assert list_fields(TRICKY[15])[2] == "a long\tsubject  continued"
    assert list_fields(TRICKY[29])[2] == "café"
    # bad base64 in an encoded word: kept as received (it used to abort the sync)
    assert list_fields(TRICKY[10])[2] == "=?utf-8?Q?broken=ZZ?= and =?utf-8?B?not base64!!?="


def _records(blocks: list[bytes]) -> Iterator[HeaderRecord]:
    tz = timezone(timedelta(hours=2))
    for uid, raw in enumerate(blocks, 1):
        yield HeaderRecord(
            uid,
            ("\\Seen", "$Label") if uid % 2 else (),
            len(raw) + 100,
            datetime(2024, 3, 2, 10, 11, uid % 60, tzinfo=tz).isoformat() if uid % 7 else None,
            uid * 3 if uid % 5 else None,
            raw,
            content_type_of(raw),
        )


def _old_rows(account: str, folder: str, blocks: list[bytes]) -> list[tuple[object, ...]]:
    """The rows the old ``put_headers`` wrote (one ``executemany`` tuple per record)."""
    return [
        (
            account,
            folder,
            r.uid,
            " ".join(r.flags),
            r.modseq,
            r.size,
            r.internaldate,
            *_reference(r.headers),
            r.content_type,
            r.headers,
        )
        for r in _records(blocks)
    ]


@pytest.mark.parametrize("param_limit", [None, 40])
def test_put_headers_writes_the_old_rows(tmp_path: Path, param_limit: int | None) -> None:
    # more than one batch, a partial last batch, and (with a tiny host-parameter limit,
    # two rows per statement) many statements per transaction
    blocks = [*TRICKY, *_random_blocks(BATCH + 300 - len(TRICKY), seed=9)]
    cache = Cache(tmp_path / "c.sqlite")
    if param_limit is not None:
        cache.db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, param_limit)
    assert cache.put_headers("a@x.test", "INBOX", _records(blocks)) == len(blocks)
    got = cache.db.execute("SELECT * FROM messages ORDER BY uid").fetchall()
    assert got == _old_rows("a@x.test", "INBOX", blocks)
    listed = cache.list("a@x.test", "INBOX", limit=3)
    assert [m.uid for m in listed] == [len(blocks), len(blocks) - 1, len(blocks) - 2]
    # the same UIDs again replace, never duplicate
    assert cache.put_headers("a@x.test", "INBOX", _records(blocks[:150])) == 150
    assert cache.count("a@x.test", "INBOX") == len(blocks)
    cache.close()


def test_cache_is_wal_and_bodies_only_as_received(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    assert cache.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert cache.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    raw = b"Content-Type: application/pkcs7-mime\r\n"
    cache.put_headers("a@x.test", "INBOX", _records([raw]))
    with pytest.raises(UsageError):  # not the size the server reported: e.g. a plaintext
        cache.put_body("a@x.test", "INBOX", 1, b"decrypted text")
    body = b"x" * (len(raw) + 100)
    cache.put_body("a@x.test", "INBOX", 1, body)
    assert cache.body("a@x.test", "INBOX", 1) == body
    cache.close()


def test_list_reads_rows_as_before_including_nulls(tmp_path: Path) -> None:
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_headers("a@x.test", "INBOX", _records(TRICKY[:6]))
    cache.db.execute(  # a row with every optional column NULL (as older caches may hold)
        "INSERT INTO messages (account, folder, uid) VALUES ('a@x.test', 'INBOX', 99)"
    )
    old_sql = (
        "SELECT uid, flags, modseq, size, sender, recipients, subject, date, message_id,"
        " in_reply_to, content_type FROM messages WHERE account=? AND folder=?"
        " ORDER BY uid DESC"
    )
    expected = [
        CachedMessage(
            r[0],
            tuple((r[1] or "").split()),
            r[2],
            r[3] or 0,
            *(v or "" for v in r[4:]),
        )
        for r in cache.db.execute(old_sql, ("a@x.test", "INBOX"))
    ]
    got = cache.list("a@x.test", "INBOX")
    assert got == expected and len(got) == 7
    assert got[0] == CachedMessage(99, (), None, 0, "", "", "", "", "", "", "")
    assert got[-1].flags == ("\\Seen", "$Label") and got[-1].sender == ""
    assert cache.list("a@x.test", "INBOX", limit=2) == expected[:2]
    cache.close()
