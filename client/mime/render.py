"""What a reader shows of an opened message: text, sanitised HTML, inline images, files.

Theory of operation
-------------------
:func:`readable` walks the *opened* message (crypto layers already removed by
:func:`client.mime.parse.open_message`) once and sorts its leaves: the first text/plain
body, the first text/html body, inline images addressed by ``Content-ID`` and everything
else as attachments. Plain text is preferred by the reader when both exist.

:func:`sanitize_html` is the only way HTML reaches a view: nh3 with a short allow-list of
tags; every URL-bearing attribute is dropped except ``img src`` that is a ``cid:``
reference, so no remote URL survives (Efail, tracking pixels). Links keep their text but
lose their target. Nothing here touches the network or the disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nh3

from client.envelope.open import OpenKind, detect
from client.errors import MalformedMessage
from client.mime.raw import decode_text, filename_of, leaves

__all__ = ["Attachment", "Readable", "readable", "sanitize_html"]

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "div",
    "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li",
    "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub", "sup", "table", "tbody",
    "td", "tfoot", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ATTRS = {
    "*": {"align", "title", "dir", "lang"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "valign"},
    "th": {"colspan", "rowspan", "valign"},
    "font": {"color", "size"},
}


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "src":
        return value if tag == "img" and value.strip().lower().startswith("cid:") else None
    return value


def sanitize_html(html: str) -> str:
    """HTML safe to show: no scripts, no styles, no remote URL of any kind."""
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head"},
        attributes=_ATTRS,
        attribute_filter=_attribute_filter,
        url_schemes={"cid"},
        link_rel=None,
        strip_comments=True,
    )


@dataclass(frozen=True)
class Attachment:
    name: str
    media_type: str
    data: bytes = field(repr=False)
    envelope: str | None = None  # an OpenKind value when it is an encrypted envelope

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Readable:
    text: str | None
    html: str | None  # already sanitised
    images: dict[str, bytes] = field(repr=False)  # content-id (no brackets) -> bytes
    attachments: tuple[Attachment, ...] = ()

    @property
    def has_envelope(self) -> bool:
        return any(a.envelope for a in self.attachments)


def _envelope_kind(data: bytes, name: str) -> str | None:
    try:
        kind = detect(data, name)
    except Exception:  # detection is a hint only; never fail the reader on it
        return None
    return None if kind is OpenKind.UNKNOWN else kind.value


def readable(message: bytes) -> Readable:
    """Sort the leaves of an opened message (bytes from ``OpenedMessage.message``).

    Leaves come from :func:`client.mime.raw.leaves` (our splitter, linear and windowed), not
    the stdlib feed parser: the app calls this off the GUI thread, and any long C call here
    holds the GIL the GUI thread needs (issue 8: no stall over 50 ms on a 20 MB message).
    """
    text: str | None = None
    html: str | None = None
    images: dict[str, bytes] = {}
    files: list[Attachment] = []
    for leaf in leaves(message):
        part = leaf.headers
        try:
            data = leaf.decoded_body()
        except MalformedMessage:  # damaged base64: show what arrived, as the feed parser did
            data = leaf.body
        ctype = part.get_content_type()
        filename = filename_of(part)
        disposition = part.get_content_disposition()
        if filename is None and disposition != "attachment":
            if ctype == "text/plain" and text is None:
                text = decode_text(part, data)
                continue
            if ctype == "text/html" and html is None:
                html = sanitize_html(decode_text(part, data))
                continue
        cid = (part.get("Content-ID") or "").strip().strip("<>")
        if cid and ctype.startswith("image/") and disposition != "attachment":
            images[cid] = data
            continue
        name = filename or ("message.html" if ctype == "text/html" else f"part-{len(files) + 1}")
        files.append(Attachment(name, ctype, data, _envelope_kind(data, name)))
    return Readable(text, html, images, tuple(files))
