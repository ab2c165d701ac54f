"""The envelope page: a self-contained HTML file carrying a container -- sans I/O.

Theory of operation
-------------------
``page.html`` (the skeleton), ``page.css`` and ``page.js`` are resource files of this
package. :func:`render` inlines the style and the script, computes their SHA-256 hashes
for the Content-Security-Policy meta tag (``default-src 'none'``: no network, no images,
no frames, no forms), and puts the container in a non-executed data block
(``<script type="application/octet-stream" id="sealmail-payload">``) as base64.
:func:`extract` finds that block again (in our pages and in the reply pages the browser
makes from them) and returns the container bytes; it never runs or trusts anything else
in the file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from functools import cache
from importlib import resources

from client.errors import MalformedMessage

__all__ = ["MARKER", "csp", "extract", "is_envelope_page", "peek", "render"]

MARKER = b'<meta name="sealmail-envelope" content="1">'
_OPEN_TAG = re.compile(rb'<script\b[^>]{0,200}\bid="sealmail-payload"[^>]{0,200}>', re.IGNORECASE)
_WHITESPACE = b" \t\r\n\f\v"
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="


@cache
def _resource(name: str) -> str:
    text = resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
    return text.replace("\r\n", "\n")


def _hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def csp(script: str, style: str) -> str:
    return (
        f"default-src 'none'; script-src {_hash(script)}; style-src {_hash(style)}; "
        "img-src 'none'; connect-src 'none'; font-src 'none'; media-src 'none'; "
        "object-src 'none'; frame-src 'none'; worker-src 'none'; manifest-src 'none'; "
        "form-action 'none'; base-uri 'none'"
    )


@cache
def _skeleton() -> tuple[str, str]:
    """The page up to and after the payload, with style, script and CSP filled in."""
    script = _resource("page.js").strip("\n")
    style = _resource("page.css").strip("\n")
    html = _resource("page.html")
    html = html.replace("@@CSP@@", csp(script, style)).replace("@@STYLE@@", style)
    head, tail = html.split("@@PAYLOAD@@")
    return head, tail.replace("@@SCRIPT@@", script)


def render(container: bytes) -> bytes:
    """The HTML envelope page carrying ``container``."""
    head, tail = _skeleton()
    step = 3 << 18  # whole base64 groups per call: one call on 25 MB held the GIL 70 ms
    pieces = [head.encode("utf-8")]
    pieces += (base64.b64encode(container[i : i + step]) for i in range(0, len(container), step))
    pieces.append(tail.encode("utf-8"))
    return b"".join(pieces)


def is_envelope_page(data: bytes) -> bool:
    return MARKER in data[:8192] and b'id="sealmail-payload"' in data


def extract(data: bytes) -> bytes:
    """The container inside an envelope page. Raises MalformedMessage if there is none."""
    if MARKER not in data[:8192]:
        raise MalformedMessage("not a Sealmail envelope page")
    tags = list(_OPEN_TAG.finditer(data))
    if len(tags) != 1:
        raise MalformedMessage("the envelope page holds no (or more than one) secure message")
    start = tags[0].end()
    end = data.find(b"</script>", start)
    if end < 0:
        raise MalformedMessage("the envelope page's secure message is truncated")
    payload = data[start:end].translate(None, _WHITESPACE)
    if payload.translate(None, _B64_ALPHABET) or len(payload) % 4 or b"=" in payload[:-2]:
        raise MalformedMessage("the envelope page's secure message is damaged")
    try:
        return binascii.a2b_base64(payload)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage("the envelope page's secure message is damaged") from exc


def peek(data: bytes, size: int = 12) -> bytes:
    """The first ``size`` octets of the container (to tell its kind) without decoding it all."""
    if MARKER not in data[:8192]:
        raise MalformedMessage("not a Sealmail envelope page")
    tag = _OPEN_TAG.search(data)
    if tag is None:
        raise MalformedMessage("the envelope page holds no secure message")
    head = data[tag.end() : tag.end() + 4 * size].translate(None, _WHITESPACE)
    head = head[: len(head) - len(head) % 4]
    try:
        return binascii.a2b_base64(head)[:size]
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage("the envelope page's secure message is damaged") from exc
