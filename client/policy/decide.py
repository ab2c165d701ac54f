"""What the send path calls: scan → plan → protect each group → audit.

Theory of operation
-------------------
:func:`decide_and_protect` takes the user's RFC 5322 message and returns either a list of
:class:`ProtectedCopy` — one per recipient group of the plan, each to be sent as its own
SMTP transaction to exactly ``copy.recipients`` (``require_tls`` asks the transport for
REQUIRETLS / a verified-TLS partner) — or a :class:`Hold` that says why nothing may be sent
and what would fix it. Either way one audit record is appended through the session.

The outbox (transport issue) plugs in like this::

    result = decide_and_protect(raw, session, org_policy, now=now, rng=os.urandom)
    if isinstance(result, Hold):
        outbox.hold(item, reason=result.to_json())    # stays, nothing leaves
    else:
        for copy in result:                           # queued together, sent per copy
            outbox.enqueue(copy.message, rcpt_to=copy.recipients,
                           require_tls=copy.require_tls)

Bcc recipients never share a copy: each one gets a copy of their own (encrypted to them
alone, so no recipient list in the ciphertext names them), and no copy carries a Bcc
field. Password envelopes are per recipient (each has their own password), so each
envelope recipient gets a copy of their own too. Envelopes are made by an
:class:`EnvelopeMaker` passed in; without one, recipients that need an envelope make
the message a Hold.
This module does no I/O itself: keys come from ``session``'s keystore, the audit append is
the session's shell, time and randomness are parameters.

Facts the planner needs beyond the message come from the session as data: the TLS
knowledge about the recipients' domains (``session.tls_knowledge``: MTA-STS records and
user-added partner domains from the profile) and, for a reply or forward, how the original
message arrived (``session.policy_original``: looked up by :func:`original_reference` in the
local cache and classified by :func:`classify_original`). Without a cached original there
is no reply/forward fact: the content rules (scanner, tags) still apply.
"""

from __future__ import annotations

import email
import email.header
import email.parser
import email.policy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any, Protocol

from client.crypto.recipes import protect
from client.mime.raw import headers_of
from client.policy.extract import message_text
from client.policy.levels import Level
from client.policy.orgpolicy import OrgPolicy
from client.policy.plan import Draft, Fix, Method, Original, Plan, RecipientPlan, plan
from client.policy.scan import scan_text

if TYPE_CHECKING:
    from client.services import Session

__all__ = [
    "LEVEL_HEADER",
    "EnvelopeMaker",
    "Hold",
    "ProtectedCopy",
    "classify_original",
    "decide_and_protect",
    "message_bcc",
    "message_facts",
    "original_reference",
    "replace_subject",
    "requested_level",
    "strip_transport_fields",
]

#: A transport-only field the composer/CLI stores with a queued message: the level the
#: sender chose (raise only). Never sent: removed from every copy.
LEVEL_HEADER = "X-Sealmail-Level"

Rng = Callable[[int], bytes]


class EnvelopeMaker(Protocol):
    def __call__(
        self, raw: bytes, recipients: Sequence[str], *, now: datetime, rng: Rng
    ) -> bytes: ...


@dataclass(frozen=True)
class ProtectedCopy:
    method: Method
    level: Level
    recipients: tuple[str, ...]
    message: bytes
    require_tls: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "level": self.level.value,
            "recipients": list(self.recipients),
            "require_tls": self.require_tls,
            "size": len(self.message),
        }


@dataclass(frozen=True)
class Hold:
    plan: Plan

    @property
    def reason(self) -> str:
        blocked = [r for r in self.plan.recipients if r.method is None]
        who = "; ".join(f"{r.address}: {r.why}" for r in blocked)
        return f"cannot protect at {self.plan.level.value} ({self.plan.reason}): {who}"

    @property
    def fixes(self) -> tuple[Fix, ...]:
        return self.plan.fixes

    def to_json(self) -> dict[str, Any]:
        return {**self.plan.to_json(), "decision": "hold", "hold_reason": self.reason}


def message_facts(raw: bytes) -> tuple[str | None, tuple[str, ...], str | None]:
    """(sender, recipients in To/Cc/Bcc, Message-ID) of ``raw``."""
    msg = headers_of(raw)

    def addrs(*names: str) -> list[str]:
        values = [str(v) for n in names for v in (msg.get_all(n) or [])]
        out: list[str] = []
        for _, a in getaddresses(values):
            a = a.strip().lower()
            if a and "@" in a and a not in out:
                out.append(a)
        return out

    senders = addrs("From")
    mid = msg.get("Message-ID")
    return (
        (senders[0] if senders else None),
        tuple(addrs("To", "Cc", "Bcc")),
        (str(mid).strip() if mid else None),
    )


def message_bcc(raw: bytes) -> tuple[str, ...]:
    """The Bcc addresses of ``raw`` (lower case)."""
    msg = headers_of(raw)
    values = [str(v) for v in (msg.get_all("Bcc") or [])]
    return tuple(dict.fromkeys(a.strip().lower() for _, a in getaddresses(values) if "@" in a))


_MSGID = re.compile(r"<[^<>\s]+>")
_ENCRYPTED_TYPES = ("multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime")


def original_reference(raw: bytes) -> tuple[str, str] | None:
    """("forward" | "reply", Message-ID) of the message ``raw`` forwards or replies to.

    A forward is marked by ``X-Forwarded-Message-Id`` (as Thunderbird writes it), a reply by
    ``In-Reply-To`` (else the last ``References`` entry).
    """
    msg = headers_of(raw)
    for field, relation in (
        ("X-Forwarded-Message-Id", "forward"),
        ("In-Reply-To", "reply"),
        ("References", "reply"),
    ):
        ids = _MSGID.findall(str(msg.get(field) or ""))
        if ids:
            return relation, ids[0] if field != "References" else ids[-1]
    return None


def classify_original(content_type: str, body: bytes | None) -> tuple[Level, bool]:
    """(level it arrived at, whether it was a password envelope) of a cached message."""
    ctype = content_type.lower()
    if ctype in _ENCRYPTED_TYPES:
        return Level.ENCRYPTED, False
    if body is not None and ctype.startswith("multipart/"):
        from client.policy.envelopemail import ENVELOPE_FILENAME

        msg = email.message_from_bytes(body, policy=email.policy.compat32)
        for part in msg.walk():
            if part.get_filename() == ENVELOPE_FILENAME:
                return Level.ENCRYPTED, True
    if ctype == "multipart/signed":
        return Level.SIGNED, False
    return Level.TLS, False


def requested_level(raw: bytes) -> Level | None:
    """The level stored in :data:`LEVEL_HEADER`, if any (an unknown name raises)."""
    value = headers_of(raw).get(LEVEL_HEADER)
    return Level.parse(str(value).strip()) if value else None


_TRANSPORT_FIELD = re.compile(
    rb"(?im)^(?:bcc|resent-bcc|x-sealmail-level):[^\n]*\n(?:[ \t][^\n]*\n)*"
)


def strip_transport_fields(raw: bytes) -> bytes:
    """``raw`` without Bcc, Resent-Bcc and :data:`LEVEL_HEADER` (other bytes untouched)."""
    m = _HEADER_END.search(raw)
    split = m.end(1) if m else len(raw)
    head = raw[:split]
    stripped = _TRANSPORT_FIELD.sub(b"", head)
    if stripped == head:
        return raw  # nothing to strip: no copy of a large body
    return b"".join((stripped, memoryview(raw)[split:]))  # one copy, not two


_HEADER_END = re.compile(rb"(\r?\n)\r?\n")
_SUBJECT = re.compile(rb"(?im)^subject:[^\n]*\n(?:[ \t][^\n]*\n)*")


def replace_subject(raw: bytes, subject: str) -> bytes:
    """``raw`` with its Subject field replaced (other bytes untouched)."""
    m = _HEADER_END.search(raw)
    split = m.end(1) if m else len(raw)
    head, body = raw[:split], raw[split:]
    if not head.endswith(b"\n"):
        head += b"\n"
    eol = b"\r\n" if b"\r\n" in head else b"\n"
    try:
        value = subject.encode("ascii")
    except UnicodeEncodeError:
        value = email.header.Header(subject, "utf-8").encode().encode("ascii")
    field = b"Subject: " + value + eol
    new_head, n = _SUBJECT.subn(lambda _m: field, head, count=1)
    if n == 0:
        new_head = head + field
    return new_head + body


def _audit(
    session: Session,
    p: Plan,
    *,
    decision: str,
    sender: str | None,
    message_id: str | None,
    now: datetime,
) -> None:
    session.audit_append(
        now=now,
        message_id=message_id,
        sender=sender,
        recipients=[r.address for r in p.recipients],
        level=p.level.value,
        decision=decision,
        methods={r.address: r.method for r in p.recipients},
        reasons=[r.to_json() for r in p.reasons],
    )


def decide_and_protect(
    raw_message: bytes,
    session: Session,
    org_policy: OrgPolicy,
    *,
    level: Level | None = None,
    now: datetime,
    rng: Rng,
    envelope: EnvelopeMaker | None = None,
) -> list[ProtectedCopy] | Hold:
    """Scan, plan, protect per recipient group and audit; a :class:`Hold` sends nothing."""
    sender, recipients, message_id = message_facts(raw_message)
    scanned = message_text(raw_message)
    enabled = [t for t, r in org_policy.detectors.items() if r.enabled]
    findings = scan_text(scanned.text, types=enabled)
    original: Original | None = session.policy_original(raw_message)
    draft = Draft.from_scan(
        scanned,
        findings,
        sender=sender,
        user_level=level,
        message_id=message_id,
        original=original,
    )
    status = session.policy_key_status(recipients, sender=sender, now=now)
    p = plan(draft, recipients, status, org_policy, now, tls=session.tls_knowledge(recipients))
    if not p.hold and envelope is None and any(g.method == "envelope" for g in p.groups):
        p = replace(
            p,
            recipients=tuple(
                RecipientPlan(
                    r.address,
                    r.level,
                    None,
                    "needs a password envelope, which is not available here",
                    (
                        Fix("use-envelope", r.address, "send a password envelope instead"),
                        Fix("import-key", r.address, "import the recipient's key"),
                        Fix("remove-recipient", r.address, "remove the recipient"),
                    ),
                )
                if r.method == "envelope"
                else r
                for r in p.recipients
            ),
        )
    if p.hold:
        _audit(session, p, decision="hold", sender=sender, message_id=message_id, now=now)
        return Hold(p)
    to_send = replace_subject(raw_message, p.subject) if p.tags else raw_message
    to_send = strip_transport_fields(to_send)
    bcc = set(message_bcc(raw_message))
    copies: list[ProtectedCopy] = []
    for g in p.groups:
        shared = tuple(a for a in g.recipients if a not in bcc)
        batches = [shared] if shared else []
        batches += [(a,) for a in g.recipients if a in bcc]
        if g.method == "envelope":  # one password per recipient: one copy each
            batches = [(a,) for a in g.recipients]
        for rcpts in batches:
            if g.method in ("tls", "tls-required"):
                message = to_send
            elif g.method == "envelope":
                assert envelope is not None
                message = envelope(to_send, rcpts, now=now, rng=rng)
            else:
                message = protect(
                    to_send,
                    session.keys,
                    encrypt_to=rcpts if g.level.encrypts else (),
                    sender=sender,
                    sign=g.level.signs,
                    encrypt=g.level.encrypts,
                    method=g.method,
                    now=now,
                    rng=rng,
                ).message
            copies.append(
                ProtectedCopy(g.method, g.level, rcpts, message, g.method == "tls-required")
            )
    _audit(session, p, decision="send", sender=sender, message_id=message_id, now=now)
    return copies
