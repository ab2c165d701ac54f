"""Recognise vendor portal envelopes that cannot be opened offline -- sans I/O.

Theory of operation
-------------------
Portal envelopes (Proofpoint, Cisco Secure Email Encryption Service, Microsoft Purview
Message Encryption, Zix, Virtru) are HTML attachments or opaque blobs whose content is
only decryptable by the vendor's service after the recipient signs in. Sealmail cannot
open them; it names the vendor and says how to open them. :func:`recognise` looks at the
attachment's file name and at content markers (case-insensitive, in the first 256 KiB);
a rule needs a content marker, except for the few file names that are specific on their
own (``message.rpmsg``). Nothing here is trusted for security: a match only changes the
error message the user sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["VENDORS", "Vendor", "recognise"]

_SCAN = 256 * 1024
# Microsoft's compressed RPMSG (Rights Management) container starts with these octets.
_RPMSG_MAGIC = b"\x76\xe8\x04\x60\xc4\x11\xe3\x86"


@dataclass(frozen=True, slots=True)
class Vendor:
    key: str
    name: str
    how_to_open: str
    markers: tuple[bytes, ...]
    file_names: tuple[str, ...] = ()  # regular expressions on the lower-cased name


VENDORS: tuple[Vendor, ...] = (
    Vendor(
        "proofpoint",
        "Proofpoint Encryption (secure message)",
        "Open the attachment (SecureMessageAtt.html) in a web browser with internet access, "
        "press 'Click to read message' and sign in to the sender's Proofpoint portal "
        "(register with your email address the first time).",
        (b"proofpoint", b"securemessageatt", b"ppencrypt"),
        (r"securemessageatt.*\.html?$",),
    ),
    Vendor(
        "cisco",
        "Cisco Secure Email Encryption Service (Registered Envelope)",
        "Open securedoc_*.html in a web browser with internet access, press 'Open Online' "
        "and sign in to your Cisco Registered Envelope Service account (res.cisco.com).",
        (b"res.cisco.com", b"registered envelope", b"cisco secure email encryption"),
        (r"securedoc_.*\.html?$",),
    ),
    Vendor(
        "microsoft",
        "Microsoft Purview Message Encryption (Office 365)",
        "Open the message in Outlook or Outlook on the web signed in with the address it was "
        "sent to, or open message.html in a browser and choose 'Sign in' or 'Sign in with a "
        "one-time passcode'.",
        (
            b"office 365 message encryption",
            b"microsoft purview message encryption",
            b"outlook.office365.com/encryption",
            b"rpmsg",
            b"microsoft.com/en-us/microsoft-365",
            b"protection.outlook.com",
        ),
        (r"^message\.rpmsg$", r"\.rpmsg$"),
    ),
    Vendor(
        "zix",
        "Zix / Zix Secure Message Center",
        "Open the attachment in a web browser with internet access and sign in to the "
        "sender's Zix Secure Message Center (register the first time).",
        (b"zixcorp", b"zixmessagecenter", b"zixmail", b"secure message center", b"zix"),
    ),
    Vendor(
        "virtru",
        "Virtru (Trusted Data Format)",
        "Open the attachment in a web browser with internet access, or open the message in "
        "Gmail/Outlook with the Virtru extension, and verify your email address.",
        (b"virtru", b"tdf3", b"trusted data format"),
        (r"\.tdf(\.html?)?$",),
    ),
)

_WORD = {
    v.key: [re.compile(rb"(?<![a-z0-9])" + re.escape(m) + rb"(?![a-z])") for m in v.markers]
    for v in VENDORS
}


def recognise(data: bytes, filename: str | None = None) -> Vendor | None:
    """The portal vendor whose envelope ``data`` is, or None."""
    name = (filename or "").rsplit("/", 1)[-1].lower()
    head = data[:_SCAN]
    if head.startswith(_RPMSG_MAGIC):
        return VENDORS[2]
    lowered = head.lower()
    looks_html = b"<html" in lowered or b"<!doctype html" in lowered or b"<form" in lowered
    for vendor in VENDORS:
        named = any(re.search(p, name) for p in vendor.file_names)
        marked = looks_html and any(p.search(lowered) for p in _WORD[vendor.key])
        if marked or (named and (looks_html or name.endswith(".rpmsg"))):
            return vendor
    return None
