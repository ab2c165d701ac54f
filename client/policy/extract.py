"""The text the scanner reads: from plain text or an RFC 5322 message (in memory only).

Theory of operation
-------------------
:func:`message_text` parses a message with the standard library and concatenates, in
order, the Subject, every ``text/*`` part (HTML with its tags stripped) and every
text-bearing attachment — text, CSV, HTML, PDF (text layer, via ``pypdf``) and DOCX
(``word/document.xml`` via ``zipfile`` + ElementTree) — separated by blank lines.
Offsets of findings are into that decoded text; :class:`ScanText` keeps where each
segment starts so a finding can be traced to its part. Nothing is written anywhere.
A part that cannot be read (encrypted PDF, broken DOCX, size limits) is listed in
``unreadable`` so the planner can fail closed.
"""

from __future__ import annotations

import email
import email.policy
import html
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from email.message import Message
from xml.etree import ElementTree as ET

from client.mime.raw import decode_text, filename_of, headers_of, leaves

__all__ = ["MAX_PART_TEXT", "ScanText", "Segment", "html_to_text", "message_text", "plain_text"]

log = logging.getLogger(__name__)

MAX_PART_TEXT = 20 * 1024 * 1024  # characters of text taken from one part
_MAX_DOCX_XML = 50 * 1024 * 1024  # uncompressed document.xml (zip bombs)
_MAX_PDF_PAGES = 2000


@dataclass(frozen=True)
class Segment:
    name: str  # "subject", "body", "attachment report.pdf", ...
    start: int
    end: int


@dataclass(frozen=True)
class ScanText:
    text: str
    segments: tuple[Segment, ...]
    unreadable: tuple[str, ...] = ()
    subject: str = ""


_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[^>]*>", re.S | re.I)
_BLOCK = re.compile(r"<(?:br|/p|/div|/tr|/li|/h[1-6]|/td|/th)\b[^>]*>", re.I)


def html_to_text(markup: str) -> str:
    """Visible text of HTML (tags, scripts, styles and comments removed, entities decoded)."""
    text = _BLOCK.sub("\n", markup)
    text = _TAG.sub(" ", text)
    return html.unescape(text)


def plain_text(data: bytes) -> ScanText:
    text = data.decode("utf-8", "replace")
    return ScanText(text, (Segment("text", 0, len(text)),))


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


def _docx_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo("word/document.xml")
        if info.file_size > _MAX_DOCX_XML:
            raise ValueError("document.xml too large")
        root = ET.fromstring(z.read(info))  # noqa: S314 (expat: no external entities)
    paras: list[str] = []
    for p in root.iter(_W + "p"):
        paras.append(
            "".join(
                (t.text or "") if t.tag == _W + "t" else "\t" if t.tag == _W + "tab" else ""
                for t in p.iter()
            )
        )
    return "\n".join(paras)


def _pdf_text(data: bytes) -> str:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise ValueError("encrypted PDF")
    out: list[str] = []
    for i, page in enumerate(reader.pages):
        if i >= _MAX_PDF_PAGES:
            raise ValueError("too many pages")
        out.append(page.extract_text() or "")
    return "\n".join(out)


_TEXT_EXT = (".txt", ".csv", ".tsv", ".htm", ".html", ".xml", ".json", ".md", ".log")


_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _text_kind(part: Message, filename: str) -> str | None:
    """How a leaf's text is read: "html", "text", "pdf", "docx", or None when it carries
    no text we read (images, archives...). Decided from type and name before the body is
    decoded: a 25 MB image or scan is never base64-decoded just to be skipped."""
    ctype, filename = part.get_content_type(), filename.lower()
    if ctype == "text/html" or filename.endswith((".htm", ".html")):
        return "html"
    if ctype.startswith("text/") or filename.endswith(_TEXT_EXT):
        return "text"
    if ctype == "application/pdf" or filename.endswith(".pdf"):
        return "pdf"
    if ctype == _DOCX or filename.endswith(".docx"):
        return "docx"
    return None


def _part_text(part: Message, payload: bytes, kind: str) -> str:
    """The text of a leaf of ``kind`` (see :func:`_text_kind`)."""
    if kind == "html":
        return html_to_text(decode_text(part, payload))
    if kind == "text":
        return decode_text(part, payload)
    if kind == "pdf":
        return _pdf_text(payload)
    return _docx_text(payload)


def message_text(raw: bytes) -> ScanText:
    """Subject + every text part + text-bearing attachments, as one decoded text.

    The leaves come from :func:`client.mime.raw.leaves` (linear, in windows) rather than
    the ``email`` feed parser: the composer rescans on every pause in typing, and with a
    25 MB attachment the feed parser cost seconds per scan and long GIL holds (issue 8).
    An unnamed part is called "part N" (N counts the leaves from 1).
    """
    head = headers_of(raw, email.policy.default)
    pieces: list[str] = []
    segments: list[Segment] = []
    unreadable: list[str] = []
    pos = 0

    def add(name: str, text: str) -> None:
        nonlocal pos
        text = text[:MAX_PART_TEXT]
        if pieces:
            pieces.append("\n\n")
            pos += 2
        pieces.append(text)
        segments.append(Segment(name, pos, pos + len(text)))
        pos += len(text)

    subject = str(head.get("Subject", "") or "")
    add("subject", subject)
    for i, leaf in enumerate(leaves(raw), start=1):
        part = leaf.headers
        filename = filename_of(part)
        name = filename or f"part {i}"
        kind = _text_kind(part, filename or "")
        try:
            text = None if kind is None else _part_text(part, leaf.decoded_body(), kind)
        except Exception as exc:  # pypdf, zipfile, expat, damaged base64: any broken part
            log.debug("cannot read the text of a part: %s", type(exc).__name__)  # no name: PHI
            unreadable.append(name)
            continue
        if text is None:
            if part.get_content_maintype() not in ("image", "audio", "video"):
                unreadable.append(name)
            continue
        disposition = part.get_content_disposition()
        add(f"attachment {name}" if disposition == "attachment" else "body", text)
    return ScanText("".join(pieces), tuple(segments), tuple(unreadable), subject)
