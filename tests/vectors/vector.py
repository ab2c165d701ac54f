"""The shape of one corpus expectation row (see expectations.py) and how it is checked."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from client.mime.parse import OpenedMessage
from tests.vectors.profiles import CORPUS

__all__ = ["Sig", "Vector", "at", "check", "load", "view_text"]

Sig = tuple[str, str | None, str]  # (status, signer address, part)


@dataclass(frozen=True)
class Vector:
    """What opening one corpus message must give.

    ``path`` is relative to ``../shared/corpus`` (``file.mbx#N`` = N-th message of an
    mbox). Either ``error`` names the typed error it is refused with, or the message
    opens and: ``encrypted`` says whether a layer was decrypted, ``sigs`` lists every
    signature as (status, signer, part) in report order, ``marker`` must appear in the
    decoded view, ``absent`` must not, ``hp`` gives protected headers that must be
    reported (``scheme`` the header-protection scheme), ``warn`` a substring of a
    warning that must be given. ``xfail`` (with ``why``) marks what is not handled yet.
    """

    path: str
    profile: str
    now: datetime
    why: str
    error: str | None = None
    encrypted: bool = False
    sigs: tuple[Sig, ...] = ()
    marker: str | None = None
    absent: tuple[str, ...] = ()
    hp: dict[str, str] = field(default_factory=dict)
    scheme: str | None = None
    warn: str | None = None
    xfail: str | None = None

    @property
    def id(self) -> str:
        return self.path


def load(path: str) -> bytes:
    if "#" in path:  # the N-th message of an mbox (read-only; mailbox.mbox opens rb+)
        name, index = path.split("#")
        data = (CORPUS / name).read_bytes()
        starts = [m.start() for m in re.finditer(rb"(?m)^From ", data)]
        start = starts[int(index)]
        end = starts[int(index) + 1] if int(index) + 1 < len(starts) else len(data)
        return data[data.index(b"\n", start) + 1 : end]
    return (CORPUS / path).read_bytes()


def view_text(opened: OpenedMessage) -> str:
    """Everything a reader would show: headers and every decoded leaf part."""
    msg = email.message_from_bytes(opened.message, policy=email.policy.compat32)
    chunks = [opened.message.decode("utf-8", "replace")]
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                chunks.append(payload.decode(charset, "replace"))
            except LookupError:
                chunks.append(payload.decode("utf-8", "replace"))
    return "\n".join(chunks)


def check(v: Vector, opened: OpenedMessage) -> None:
    report = opened.report
    assert report.encrypted == v.encrypted, report
    got = tuple((s.status, s.signer, s.part) for s in report.signatures)
    assert got == v.sigs, f"signatures {got} != {v.sigs}: {report.signatures}"
    text = view_text(opened)
    if v.marker is not None:
        assert v.marker in text, f"{v.marker!r} not shown"
    for secret in v.absent:
        assert secret not in text, f"{secret!r} must not be shown"
    protected = dict(report.protected_headers)
    for name, value in v.hp.items():
        assert protected.get(name) == value, protected
    assert report.header_protection == v.scheme, report.header_protection
    if v.warn is not None:
        assert any(v.warn in w for w in report.warnings), report.warnings
    # a "good" signature is never reported for someone other than the From address
    for s in report.signatures:
        if s.status == "good" and s.part == "message":
            assert s.signer is not None


def at(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, 12, tzinfo=UTC)
