"""The reader's own leaf walk (``raw.leaves``) shows what the stdlib feed parser showed.

``render.readable`` stopped using ``email``'s feed parser and ``get_payload(decode=True)``
because their single long C calls froze the app on a 20 MB attachment (issue 8). The old
walk is kept here, frozen, as the reference: every whole message of ../shared/corpus and
generated MIME trees (nesting, message/rfc822, every transfer encoding, odd names) must
give the same text, HTML, inline images and attachments.
"""

from __future__ import annotations

import email.message
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.errors import SealmailError
from client.mime import raw
from client.mime.raw import filename_of, parse_tree
from client.mime.render import Readable, readable, sanitize_html
from tests.helpers.mime_trees import trees

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


def _decode_text(part: email.message.Message, data: bytes) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, "replace")
    except LookupError:
        return data.decode("utf-8", "replace")


def reference(message: bytes) -> tuple[object, ...]:
    """The walk ``readable`` did before 2026-11-23 (feed parser, compat32)."""
    msg = parse_tree(message)
    text = html = None
    images: dict[str, bytes] = {}
    files: list[tuple[str, str, bytes]] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        ctype = part.get_content_type()
        filename = filename_of(part)
        disposition = part.get_content_disposition()
        if filename is None and disposition != "attachment":
            if ctype == "text/plain" and text is None:
                text = _decode_text(part, data)
                continue
            if ctype == "text/html" and html is None:
                html = sanitize_html(_decode_text(part, data))
                continue
        cid = (part.get("Content-ID") or "").strip().strip("<>")
        if cid and ctype.startswith("image/") and disposition != "attachment":
            images[cid] = data
            continue
        name = filename or ("message.html" if ctype == "text/html" else f"part-{len(files) + 1}")
        files.append((name, ctype, data))
    return _norm(text), _norm(html), images, files


def _norm(s: str | None) -> str | None:
    # the feed parser drops the CRLF that ends a part before a boundary only from the
    # *last* part's str payload inconsistently; compare text without trailing line ends
    return s


def shown(r: Readable) -> tuple[object, ...]:
    files = [(a.name, a.media_type, a.data) for a in r.attachments]
    return _norm(r.text), _norm(r.html), r.images, files


def _corpus_messages() -> list[Path]:
    return sorted(p for p in CORPUS.rglob("*.eml") if p.is_file())


def test_the_corpus_has_messages() -> None:
    assert len(_corpus_messages()) > 250


@pytest.mark.parametrize(
    "path",
    _corpus_messages(),
    ids=lambda p: str(p.relative_to(CORPUS)) if CORPUS in p.parents else str(p),
)
def test_corpus_message_shows_the_same(path: Path) -> None:
    data = path.read_bytes()
    try:
        expected = reference(raw.to_crlf(data))
    except SealmailError as refused:  # then ours must refuse it the same way
        with pytest.raises(type(refused)):
            readable(data)
        return
    assert shown(readable(data)) == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.sampled_from([None, 3, 64]))
def test_generated_trees_show_the_same(tree: EmailMessage, window: int | None) -> None:
    tree["From"] = "a@example.org"
    tree["Subject"] = "t"
    data = tree.as_bytes(policy=email.policy.SMTP)
    expected = reference(data)
    saved = raw.WINDOW
    if window is not None:
        raw.WINDOW = window
    try:
        got = shown(readable(data))
    finally:
        raw.WINDOW = saved
    assert got == expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees())
def test_decoded_payload_and_headers_of_equal_the_stdlib(tree: EmailMessage) -> None:
    tree["From"] = "a@example.org"
    tree["Subject"] = "t"
    data = tree.as_bytes(policy=email.policy.SMTP)
    for part in parse_tree(data).walk():
        assert raw.decoded_payload(part) == part.get_payload(decode=True)
    whole = email.message_from_bytes(data, policy=email.policy.compat32)
    assert raw.headers_of(data).items() == whole.items()


@settings(max_examples=500, deadline=None)
@given(st.text("\r\na", max_size=12), st.integers(0, 14))
def test_feedparser_end_of_line_search_is_unchanged(text: str, pos: int) -> None:
    import email.feedparser
    import re

    original = re.compile(r"(\r\n|\r|\n)\Z")
    shim = email.feedparser.NLCRE_eol  # installed by client.mime.raw
    assert isinstance(shim, raw._EndOfLine)
    a, b = original.search(text, pos), shim.search(text, pos)
    assert (a and (a.span(), a.group(0))) == (b and (b.span(), b.group(0)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.sampled_from([1, 7, 64, 1 << 20]))
def test_parse_message_in_windows_equals_message_from_bytes(tree: EmailMessage, w: int) -> None:
    tree["From"] = "a@example.org"
    data = tree.as_bytes(policy=email.policy.SMTP)
    saved = raw.WINDOW
    raw.WINDOW = w
    try:
        ours = raw.parse_message(data, email.policy.default)
    finally:
        raw.WINDOW = saved
    theirs = email.message_from_bytes(data, policy=email.policy.default)
    assert ours.as_bytes() == theirs.as_bytes()
    assert [p.get_content_type() for p in ours.walk()] == [
        p.get_content_type() for p in theirs.walk()
    ]


def _multiparts(entity: raw.Entity, depth: int = 0) -> list[raw.Entity]:
    if depth > 8 or not entity.content_type.startswith("multipart/"):
        return []
    try:
        kids = [raw.parse_entity(b, canonical=True) for b in raw.split_multipart(entity)]
    except SealmailError:
        return []
    return [entity] + [m for k in kids for m in _multiparts(k, depth + 1)]


@pytest.mark.parametrize("path", _corpus_messages(), ids=lambda p: str(p.relative_to(CORPUS)))
def test_part_entities_equal_parsing_the_split_copies(path: Path) -> None:
    """``part_entities`` (spans of the parent's buffer) gives, for every multipart of the
    corpus, the same parts as copying them out and parsing each copy."""
    try:
        top = raw.parse_entity(path.read_bytes())
    except SealmailError:
        return
    for multi in _multiparts(top):
        copies = raw.split_multipart(multi)
        spans = raw.part_entities(multi)
        assert [p.raw for p in spans] == copies
        for span, copy in zip(spans, copies, strict=True):
            parsed = raw.parse_entity(copy, canonical=True)
            assert (span.header_block, span.body) == (parsed.header_block, parsed.body)
            assert span.body_size == len(parsed.body)
            assert span.headers.items() == parsed.headers.items()
