"""A linear pre-check of BER/DER headers, run before asn1crypto parses untrusted CMS.

Theory of operation
-------------------
asn1crypto reads a high tag number (identifier octet ``xxx11111`` followed by octets with
the top bit set) by multiplying a Python integer by 128 per octet: a tag field of *n*
octets costs O(n²). Fuzzing found that ~50 KB of ``0xFF`` after such an octet keeps
:func:`asn1crypto.core.Sequence.load` busy for many seconds (quadratic, so a few hundred
KB are minutes) — a denial of service from one received message.

:func:`check_headers` walks the identifier and length octets of every element the parser
would visit, flat and in one pass: a constructed element's children start right after
its header, a primitive element's content is skipped by its length, end-of-contents is
two octets. In valid BER this visits exactly the real headers, so valid input is never
refused; a tag number longer than :data:`MAX_TAG_OCTETS` octets (2**28: CMS uses tags
below 31) raises :class:`~client.errors.MalformedMessage`. Everything else (truncation,
bad lengths) is left to asn1crypto, which reports it itself. Cost: one step per element
(a malformed element is skipped to its parent's end, so every octet is visited at most
once).
"""

from __future__ import annotations

from client.errors import MalformedMessage

__all__ = ["MAX_TAG_OCTETS", "check_headers"]

#: Longest high-tag-number field accepted (4 octets = tag numbers below 2**28).
MAX_TAG_OCTETS = 4


def check_headers(data: bytes | bytearray | memoryview, what: str = "CMS structure") -> None:
    """Raise MalformedMessage if an element header has an absurdly long tag number."""
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    n = len(buf)
    pos = 0
    # The ends of the constructed elements we are inside (None: indefinite length, ended by
    # 00 00). asn1crypto parses a definite-length element's children within its contents
    # and its next sibling at its end, each when first needed: so the walk checks both,
    # and an element that overruns its parent resumes at the parent's end (the first
    # version walked flat and lost step there; fuzzing hid a long tag behind such a child).
    # Each entry carries the nearest definite end at or above it, so finding the current
    # limit is O(1) (a search down the stack was quadratic in deep indefinite nesting:
    # fuzz finding 11).
    stack: list[tuple[bool, int]] = []  # (indefinite?, end of the innermost definite)
    while True:
        limit = stack[-1][1] if stack else n
        if pos >= limit:
            if not stack:
                return
            while stack and stack[-1][0]:  # indefinite children ran into the end
                stack.pop()
            if not stack:
                return
            pos = limit  # after the last child: the parent's next sibling
            stack.pop()
            continue
        first = buf[pos]
        pos += 1
        if stack and stack[-1][0] and first == 0 and pos < limit and buf[pos] == 0:
            pos += 1  # end-of-contents: the indefinite-length element is closed
            stack.pop()
            continue
        if first & 0x1F == 0x1F:  # high tag number: base-128 octets follow
            start = pos
            while pos < n and buf[pos] & 0x80:
                pos += 1
                if pos - start >= MAX_TAG_OCTETS:
                    raise MalformedMessage(f"{what}: a tag number is absurdly long")
            pos += 1
        if pos >= limit:
            pos = limit  # a truncated header: asn1crypto reports it
            continue
        length = buf[pos]
        pos += 1
        if length == 0x80:
            if first & 0x20:
                stack.append((True, limit))
            else:
                pos = limit  # indefinite primitive: asn1crypto refuses this element
            continue
        if length & 0x80:
            count = length & 0x7F
            if pos + count > limit:
                pos = limit
                continue
            length = int.from_bytes(bytes(buf[pos : pos + count]), "big")
            pos += count
        end = pos + length
        if end > limit:
            pos = limit  # overruns its parent: asn1crypto refuses it, the siblings still count
            continue
        if first & 0x20:
            stack.append((False, end))  # its children follow the header directly
        else:
            pos = end
