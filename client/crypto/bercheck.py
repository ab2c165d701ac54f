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
bad lengths) is left to asn1crypto, which reports it itself. Cost: one step per element.
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
    while pos < n:
        first = buf[pos]
        pos += 1
        if first & 0x1F == 0x1F:  # high tag number: base-128 octets follow
            start = pos
            while pos < n and buf[pos] & 0x80:
                pos += 1
                if pos - start >= MAX_TAG_OCTETS:
                    raise MalformedMessage(f"{what}: a tag number is absurdly long")
            pos += 1
        if pos >= n:
            return
        length = buf[pos]
        pos += 1
        if first & 0x20:  # constructed: its children follow the header directly
            if length & 0x80 and length != 0x80:
                pos += length & 0x7F
            continue
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or pos + count > n:
                return  # malformed: asn1crypto will say so
            length = int.from_bytes(bytes(buf[pos : pos + count]), "big")
            pos += count
        pos += length
