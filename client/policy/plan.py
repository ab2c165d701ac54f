"""The planner: how strongly a message must be protected, and how to reach each recipient.

Theory of operation
-------------------
:func:`plan` is pure: it takes a :class:`Draft` (subject, sender, the scanner's findings,
the user's choice), the recipients, what the keystore knows about each of them at ``now``
(:class:`KeyStatus`) and the :class:`~client.policy.orgpolicy.OrgPolicy`, and returns a
:class:`Plan`.

1. The message level is the maximum of: the policy's ``minimum_level``; the user's level
   (raise only — a lower choice is ignored and says so); ``encrypted`` for a subject tag;
   each enabled detector's ``level`` for a finding at or above its threshold; the
   ``sensitive_level`` for an attachment that could not be read (fail closed). Every
   contribution is a :class:`Reason`.
2. Per recipient (:class:`RecipientPlan`), the strongest method that reaches them at that
   level: for ``encrypted``/``encrypted+signed``, S/MIME or OpenPGP (in the policy's
   preference order, only if a key is valid now and, when signing, the sender can sign
   with that method), else a password envelope if allowed, else nothing; for ``signed``,
   the sender's signing method; for ``tls-required``, verified TLS to an internal or
   partner domain (the organisation's list, or one the user added when the policy's
   ``user_may.add_partner_domains`` allows it), or a domain whose MTA-STS policy
   (:class:`TlsKnowledge`, passed in as data) is valid at ``now`` and in mode ``enforce``;
   else escalation to encryption; for ``tls``, the transport.
3. Replies and forwards (:attr:`Draft.original`, facts about the message replied to or
   forwarded): protected (encrypted or envelope) content keeps encryption — the level is
   raised to ``encrypted``; a reply to protected content may go only to the recipients
   ``reply_forward.envelope_replies`` allows (``sender``: the original sender;
   ``sender-domain``: the original sender's domain; ``internal``: the original sender and
   internal domains; ``any``), a forward of an envelope only to internal domains unless
   ``reply_forward.forward_envelopes``. The sender's own address is always allowed. A
   recipient outside the rule gets no method (hold) with the reason and the fix.
4. If any recipient has no method, the whole plan is ``hold`` (fail closed), with
   :class:`Fix` actions: import a key, use an envelope, remove the recipient.
5. Recipients are grouped by method (:class:`CopyGroup`): one protected copy per group.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from client.policy.extract import ScanText
from client.policy.levels import Level
from client.policy.mtasts import MtaStsRecord
from client.policy.orgpolicy import OrgPolicy
from client.policy.scan import Finding

__all__ = [
    "CopyGroup",
    "Draft",
    "Fix",
    "KeyStatus",
    "Method",
    "Original",
    "Plan",
    "Reason",
    "RecipientKeyStatus",
    "RecipientPlan",
    "TlsKnowledge",
    "find_subject_tags",
    "plan",
    "strip_subject_tags",
    "tls_basis",
]

Method = Literal["tls", "tls-required", "smime", "pgp", "envelope"]


@dataclass(frozen=True)
class Reason:
    """Why the level is what it is: a rule, or a finding (type and position, never value)."""

    rule: (
        str  # minimum-level | user-level | user-level-ignored | subject-tag | finding |
        # unreadable | reply-to-protected | forward-of-protected
    )
    level: Level
    detail: str = ""
    type: str | None = None
    start: int | None = None
    end: int | None = None
    confidence: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "level": self.level.value}
        if self.detail:
            out["detail"] = self.detail
        if self.type is not None:
            out.update(type=self.type, start=self.start, end=self.end, confidence=self.confidence)
        return out


@dataclass(frozen=True)
class Fix:
    action: Literal["import-key", "use-envelope", "remove-recipient", "create-own-key"]
    recipient: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"action": self.action, "recipient": self.recipient, "detail": self.detail}


@dataclass(frozen=True)
class RecipientKeyStatus:
    """What the keystore can do for one address at ``now`` (from ``recipient_keys``)."""

    email: str
    smime: bool = False
    pgp: bool = False
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyStatus:
    recipients: Mapping[str, RecipientKeyStatus]
    sender_can_sign: frozenset[str] = frozenset()  # {"smime", "pgp"}

    def of(self, address: str) -> RecipientKeyStatus:
        return self.recipients.get(address.lower(), RecipientKeyStatus(address.lower()))


@dataclass(frozen=True)
class TlsKnowledge:
    """What the profile knows about recipient domains' TLS (see client.store.tlsknowledge)."""

    mta_sts: Mapping[str, MtaStsRecord] = field(default_factory=dict)
    user_partners: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Original:
    """The message a draft replies to or forwards, as it arrived (from the local cache)."""

    relation: Literal["reply", "forward"]
    sender: str | None
    level: Level  # how it was protected when it arrived
    envelope: bool = False
    message_id: str | None = None

    @property
    def protected(self) -> bool:
        return self.envelope or self.level.encrypts


@dataclass(frozen=True)
class Draft:
    subject: str
    sender: str | None
    findings: tuple[Finding, ...] = ()
    unreadable: tuple[str, ...] = ()
    user_level: Level | None = None
    message_id: str | None = None
    original: Original | None = None

    @classmethod
    def from_scan(
        cls,
        scanned: ScanText,
        findings: Sequence[Finding],
        *,
        sender: str | None,
        user_level: Level | None = None,
        message_id: str | None = None,
        original: Original | None = None,
    ) -> Draft:
        return cls(
            subject=scanned.subject,
            sender=sender,
            findings=tuple(findings),
            unreadable=scanned.unreadable,
            user_level=user_level,
            message_id=message_id,
            original=original,
        )


@dataclass(frozen=True)
class RecipientPlan:
    address: str
    level: Level
    method: Method | None
    why: str
    fixes: tuple[Fix, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "level": self.level.value,
            "method": self.method,
            "why": self.why,
        }
        if self.fixes:
            out["fixes"] = [f.to_json() for f in self.fixes]
        return out


@dataclass(frozen=True)
class CopyGroup:
    method: Method
    level: Level
    recipients: tuple[str, ...]

    @property
    def sign(self) -> bool:
        return self.level.signs

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "level": self.level.value,
            "recipients": list(self.recipients),
        }


@dataclass(frozen=True)
class Plan:
    level: Level
    reasons: tuple[Reason, ...]
    recipients: tuple[RecipientPlan, ...]
    groups: tuple[CopyGroup, ...]
    subject: str  # the subject to send (tags removed)
    tags: tuple[str, ...] = ()
    created: datetime | None = field(default=None, compare=False)

    @property
    def hold(self) -> bool:
        return any(r.method is None for r in self.recipients) or not self.recipients

    @property
    def fixes(self) -> tuple[Fix, ...]:
        return tuple(f for r in self.recipients for f in r.fixes)

    @property
    def reason(self) -> str:
        top = [r for r in self.reasons if r.level == self.level]
        return "; ".join(_describe(r) for r in (top or self.reasons))

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": "hold" if self.hold else "send",
            "level": self.level.value,
            "reason": self.reason,
            "reasons": [r.to_json() for r in self.reasons],
            "recipients": [r.to_json() for r in self.recipients],
            "copies": [g.to_json() for g in self.groups],
            "fixes": [f.to_json() for f in self.fixes],
            "subject_tags_removed": list(self.tags),
        }


def _describe(r: Reason) -> str:
    if r.rule == "finding":
        return f"{r.type} found at {r.start}-{r.end} ({r.confidence} confidence)"
    return f"{r.rule}: {r.detail}" if r.detail else r.rule


# ------------------------------------------------------------------------ subject tags


def _tag_pattern(tags: Iterable[str]) -> re.Pattern[str] | None:
    alts = [re.escape(t) for t in tags if t]
    if not alts:
        return None
    return re.compile("|".join(alts), re.IGNORECASE)


def find_subject_tags(subject: str, tags: Iterable[str]) -> tuple[str, ...]:
    pattern = _tag_pattern(tags)
    return tuple(m.group() for m in pattern.finditer(subject)) if pattern else ()


def strip_subject_tags(subject: str, tags: Iterable[str]) -> str:
    """The subject without the tags (case-insensitive, anywhere), spaces tidied."""
    pattern = _tag_pattern(tags)
    if pattern is None:
        return subject
    out = pattern.sub(" ", subject)
    return re.sub(r"\s{2,}", " ", out).strip()


# ----------------------------------------------------------------------------- planner


def _message_level(draft: Draft, policy: OrgPolicy) -> tuple[Level, list[Reason], tuple[str, ...]]:
    reasons = [Reason("minimum-level", policy.minimum_level, "organisation minimum")]
    level = policy.minimum_level
    if draft.user_level is not None:
        if not policy.user_may.raise_level:
            reasons.append(
                Reason("user-level-ignored", level, "the policy does not let users choose")
            )
        elif draft.user_level < policy.minimum_level:
            reasons.append(
                Reason(
                    "user-level-ignored",
                    policy.minimum_level,
                    f"{draft.user_level.value} is below the organisation minimum",
                )
            )
        else:
            reasons.append(Reason("user-level", draft.user_level, "chosen by the sender"))
            level = level.raise_to(draft.user_level)
    orig = draft.original
    if orig is not None and orig.protected:
        what = "an envelope" if orig.envelope else f"a message that arrived {orig.level.value}"
        why = "reply-to-protected" if orig.relation == "reply" else "forward-of-protected"
        reasons.append(Reason(why, Level.ENCRYPTED, f"{orig.relation} of {what}"))
        level = level.raise_to(Level.ENCRYPTED)
    tags: tuple[str, ...] = ()
    if policy.user_may.use_subject_tags:
        tags = find_subject_tags(draft.subject, policy.subject_tags)
        if tags:
            reasons.append(Reason("subject-tag", Level.ENCRYPTED, ", ".join(tags)))
            level = level.raise_to(Level.ENCRYPTED)
    for f in draft.findings:
        rule = policy.detectors.get(f.type)
        if rule is None or not rule.enabled or f.confidence.rank < rule.threshold.rank:
            continue
        reasons.append(
            Reason(
                "finding",
                rule.level,
                type=f.type,
                start=f.start,
                end=f.end,
                confidence=f.confidence.value,
            )
        )
        level = level.raise_to(rule.level)
    if draft.unreadable and policy.unscannable_attachments == "raise":
        reasons.append(
            Reason(
                "unreadable",
                policy.sensitive_level,
                f"{len(draft.unreadable)} attachment(s) could not be scanned",
            )
        )
        level = level.raise_to(policy.sensitive_level)
    return level, reasons, tags


def _encryption_method(
    address: str, level: Level, keys: KeyStatus, policy: OrgPolicy
) -> tuple[Method | None, str]:
    status = keys.of(address)
    for method in policy.method_preference:
        if method not in policy.allowed_methods:
            continue
        has = status.smime if method == "smime" else status.pgp
        if not has:
            continue
        if level.signs and method not in keys.sender_can_sign:
            continue
        label = "S/MIME certificate" if method == "smime" else "OpenPGP key"
        return method, f"{label} valid now"  # type: ignore[return-value]
    if policy.envelopes_allowed and policy.user_may.use_envelopes:
        return "envelope", "no usable certificate or key: password envelope"
    why = "; ".join(status.reasons) or f"no usable certificate or OpenPGP key for {address}"
    if level.signs and (status.smime or status.pgp):
        why = "the sender has no signing key for the recipient's method"
    return None, why


def _fixes(address: str, level: Level, keys: KeyStatus, policy: OrgPolicy) -> tuple[Fix, ...]:
    fixes = [
        Fix(
            "import-key",
            address,
            f"import {address}'s S/MIME certificate or OpenPGP key (`sealmail keys import`)",
        )
    ]
    status = keys.of(address)
    if level.signs and (status.smime or status.pgp) and not keys.sender_can_sign:
        fixes.append(Fix("create-own-key", address, "create or import your own signing key"))
    if policy.envelopes_allowed:  # allowed, but not available where this plan ran
        fixes.append(Fix("use-envelope", address, "send a password envelope instead"))
    fixes.append(Fix("remove-recipient", address, f"remove {address} from the recipients"))
    return tuple(fixes)


def _domain(address: str | None) -> str:
    return (address or "").rsplit("@", 1)[-1].lower()


def _reply_forward_block(address: str, draft: Draft, policy: OrgPolicy) -> str | None:
    """Why ``address`` may not receive this reply/forward of protected content, or None."""
    orig = draft.original
    if orig is None or not orig.protected or address == (draft.sender or "").lower():
        return None
    sender = (orig.sender or "").lower()
    if orig.relation == "forward":
        if not orig.envelope or policy.reply_forward.forward_envelopes:
            return None
        if policy.is_internal(address):
            return None
        return "the policy allows forwarding an envelope only inside the organisation"
    rule = policy.reply_forward.envelope_replies
    if rule == "any":
        return None
    if rule == "sender" and address == sender:
        return None
    if rule == "sender-domain" and sender and _domain(address) == _domain(sender):
        return None
    if rule == "internal" and (address == sender or policy.is_internal(address)):
        return None
    allowed = {
        "sender": f"its sender ({sender or 'unknown'})",
        "sender-domain": f"its sender's domain ({_domain(sender) or 'unknown'})",
        "internal": f"its sender ({sender or 'unknown'}) and internal domains",
    }[rule]
    return f"the policy allows replies to protected mail only to {allowed}"


def tls_basis(address: str, policy: OrgPolicy, tls: TlsKnowledge, now: datetime) -> str | None:
    """Why ``address``'s domain meets ``tls-required``, or None."""
    domain = _domain(address)
    if policy.is_internal(address):
        return "internal domain"
    if policy.has_verified_tls(address):
        return "partner list"
    if policy.user_may.add_partner_domains and OrgPolicy._in(domain, tls.user_partners):
        return "partner list (added by you)"
    record = tls.mta_sts.get(domain)
    if record is not None and record.enforcing(now):
        return record.describe()
    return None


def _no_tls_basis(address: str, tls: TlsKnowledge, now: datetime) -> str:
    record = tls.mta_sts.get(_domain(address))
    if record is None:
        return "not a verified-TLS domain"
    if not record.valid(now):
        return f"not a verified-TLS domain ({record.describe()} has expired)"
    return f"not a verified-TLS domain ({record.describe()} does not enforce)"


def _recipient(
    address: str,
    level: Level,
    keys: KeyStatus,
    policy: OrgPolicy,
    tls: TlsKnowledge,
    now: datetime,
) -> RecipientPlan:
    if level.encrypts:
        method, why = _encryption_method(address, level, keys, policy)
        fixes = () if method is not None else _fixes(address, level, keys, policy)
        return RecipientPlan(address, level, method, why, fixes)
    if level is Level.SIGNED:
        for m in policy.method_preference:
            if m in keys.sender_can_sign and m in policy.allowed_methods:
                return RecipientPlan(address, level, m, f"signed with your {m} key")  # type: ignore[arg-type]
        return RecipientPlan(
            address,
            level,
            None,
            "you have no signing key",
            (Fix("create-own-key", address, "create or import your own signing key"),),
        )
    if level is Level.TLS_REQUIRED:
        basis = tls_basis(address, policy, tls, now)
        if basis is not None:
            return RecipientPlan(address, level, "tls-required", basis)
        method, why = _encryption_method(address, Level.ENCRYPTED, keys, policy)
        why = f"{_no_tls_basis(address, tls, now)}, escalated: {why}"
        fixes = () if method is not None else _fixes(address, Level.ENCRYPTED, keys, policy)
        return RecipientPlan(address, Level.ENCRYPTED, method, why, fixes)
    return RecipientPlan(address, level, "tls", "verified TLS to the submission server")


def _plan_one(
    address: str,
    draft: Draft,
    level: Level,
    keys: KeyStatus,
    policy: OrgPolicy,
    tls: TlsKnowledge,
    now: datetime,
) -> RecipientPlan:
    blocked = _reply_forward_block(address, draft, policy)
    if blocked is not None:
        fix = Fix("remove-recipient", address, f"remove {address}: {blocked}")
        return RecipientPlan(address, level, None, blocked, (fix,))
    return _recipient(address, level, keys, policy, tls, now)


def plan(
    draft: Draft,
    recipients: Sequence[str],
    key_status: KeyStatus,
    org_policy: OrgPolicy,
    now: datetime,
    *,
    tls: TlsKnowledge | None = None,
) -> Plan:
    """Decide the level, and per recipient the method; ``hold`` if anyone is unreachable."""
    tls = tls or TlsKnowledge()
    level, reasons, tags = _message_level(draft, org_policy)
    seen: list[str] = []
    for r in recipients:
        a = r.strip().lower()
        if a and a not in seen:
            seen.append(a)
    per = tuple(_plan_one(a, draft, level, key_status, org_policy, tls, now) for a in seen)
    groups: dict[tuple[Method, Level], list[str]] = {}
    for rp in per:
        if rp.method is not None:
            groups.setdefault((rp.method, rp.level), []).append(rp.address)
    subject = strip_subject_tags(draft.subject, org_policy.subject_tags) if tags else draft.subject
    return Plan(
        level=level,
        reasons=tuple(reasons),
        recipients=per,
        groups=tuple(CopyGroup(m, lv, tuple(rs)) for (m, lv), rs in groups.items()),
        subject=subject,
        tags=tags,
        created=now,
    )
