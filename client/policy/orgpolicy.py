"""The organisation policy: what IT decides and users cannot lower.

Theory of operation
-------------------
IT ships one JSON file (searched at ``/etc/sealmail/policy.json``; the shell reads it, this
module only parses bytes). :data:`SCHEMA` is its JSON Schema (draft 2020-12), published as
``client/policy/policy.schema.json`` (a test keeps the two equal).
:func:`parse_policy` validates with ``jsonschema`` — every problem, with its JSON path, in
one :class:`~client.policy.errors.InvalidPolicy` — then builds a frozen
:class:`OrgPolicy`. Omitted fields take the defaults of :data:`DEFAULT_POLICY` (which is
also what applies when no file is installed). A policy that does not validate is never
half-applied: the caller fails closed.

User settings are merged by :meth:`OrgPolicy.effective_level`: a user may raise the level,
never lower it below ``minimum_level``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from client.policy.errors import InvalidPolicy
from client.policy.levels import Level
from client.policy.scan import DETECTOR_TYPES, Confidence

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "DEFAULT_POLICY",
    "SCHEMA",
    "SCHEMA_ID",
    "DetectorRule",
    "OrgPolicy",
    "ReplyRules",
    "UserOverrides",
    "parse_policy",
]

SCHEMA_ID = "https://sealmail.invalid/schemas/policy-1.json"
_LEVELS = [m.value for m in Level]
_CONFIDENCES = [c.value for c in Confidence]
_METHODS = ["smime", "pgp", "envelope"]
_DOMAIN = {
    "type": "string",
    "pattern": r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Sealmail organisation policy",
    "description": "Managed by IT; users cannot lower what it sets.",
    "type": "object",
    "additionalProperties": False,
    "required": ["version"],
    "properties": {
        "$schema": {"type": "string"},
        "version": {"const": 1, "description": "Schema version of this file."},
        "name": {"type": "string", "maxLength": 200},
        "internal_domains": {
            "type": "array",
            "items": _DOMAIN,
            "uniqueItems": True,
            "description": "The organisation's own domains (mail stays on its servers).",
        },
        "partner_tls_domains": {
            "type": "array",
            "items": _DOMAIN,
            "uniqueItems": True,
            "description": "Partners with a TLS agreement (verified TLS): meet tls-required.",
        },
        "minimum_level": {"enum": _LEVELS, "description": "Floor for every message."},
        "sensitive_level": {
            "enum": ["encrypted", "encrypted+signed"],
            "description": "Level a finding at or above its threshold raises the message to.",
        },
        "default_threshold": {"enum": _CONFIDENCES},
        "detectors": {
            "type": "object",
            "propertyNames": {"enum": list(DETECTOR_TYPES)},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enabled": {"type": "boolean"},
                    "threshold": {"enum": _CONFIDENCES},
                    "level": {"enum": _LEVELS},
                },
            },
        },
        "allowed_methods": {
            "type": "array",
            "items": {"enum": _METHODS},
            "uniqueItems": True,
            "minItems": 1,
        },
        "method_preference": {
            "type": "array",
            "items": {"enum": ["smime", "pgp"]},
            "uniqueItems": True,
            "minItems": 1,
        },
        "password_envelopes": {"type": "boolean"},
        "unscannable_attachments": {
            "enum": ["raise", "ignore"],
            "description": "An attachment that could not be read: raise to sensitive_level.",
        },
        "subject_tags": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 40},
            "uniqueItems": True,
        },
        "reply_forward": {
            "type": "object",
            "additionalProperties": False,
            "description": (
                "Replies to and forwards of mail that arrived protected (encrypted or as a "
                "password envelope) are always at least encrypted."
            ),
            "properties": {
                "envelope_replies": {
                    "enum": ["sender", "sender-domain", "internal", "any"],
                    "description": (
                        "Who a reply to protected mail may go to: its sender only; its "
                        "sender's domain; its sender and the internal domains; anyone."
                    ),
                },
                "forward_envelopes": {
                    "type": "boolean",
                    "description": (
                        "Whether a message that arrived as a password envelope may be "
                        "forwarded outside the internal domains."
                    ),
                },
            },
        },
        "user_may": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "raise_level": {"type": "boolean"},
                "use_subject_tags": {"type": "boolean"},
                "use_envelopes": {"type": "boolean"},
                "add_partner_domains": {
                    "type": "boolean",
                    "description": (
                        "Whether partner domains a user adds (`sealmail policy partner add`) "
                        "count as verified TLS for tls-required."
                    ),
                },
            },
        },
    },
}


@dataclass(frozen=True)
class DetectorRule:
    enabled: bool = True
    threshold: Confidence = Confidence.MEDIUM
    level: Level = Level.ENCRYPTED


@dataclass(frozen=True)
class ReplyRules:
    envelope_replies: Literal["sender", "sender-domain", "internal", "any"] = "sender-domain"
    forward_envelopes: bool = False


@dataclass(frozen=True)
class UserOverrides:
    raise_level: bool = True
    use_subject_tags: bool = True
    use_envelopes: bool = True
    add_partner_domains: bool = False


@dataclass(frozen=True)
class OrgPolicy:
    name: str = "built-in defaults"
    internal_domains: frozenset[str] = frozenset()
    partner_tls_domains: frozenset[str] = frozenset()
    minimum_level: Level = Level.TLS
    sensitive_level: Level = Level.ENCRYPTED
    detectors: Mapping[str, DetectorRule] = field(
        default_factory=lambda: {t: DetectorRule() for t in DETECTOR_TYPES}
    )
    allowed_methods: frozenset[str] = frozenset(_METHODS)
    method_preference: tuple[str, ...] = ("smime", "pgp")
    password_envelopes: bool = True
    unscannable_attachments: Literal["raise", "ignore"] = "raise"
    subject_tags: tuple[str, ...] = ("[secure]", "[encrypt]")
    reply_forward: ReplyRules = ReplyRules()
    user_may: UserOverrides = UserOverrides()

    def effective_level(self, user_level: Level | None) -> Level:
        """The floor after a user's choice: raised if allowed, never lowered."""
        if user_level is None or not self.user_may.raise_level:
            return self.minimum_level
        return self.minimum_level.raise_to(user_level)

    @staticmethod
    def _in(domain: str, domains: frozenset[str]) -> bool:
        domain = domain.lower()
        return any(domain == d or (d.startswith("*.") and domain.endswith(d[1:])) for d in domains)

    def is_internal(self, address: str) -> bool:
        return self._in(address.rsplit("@", 1)[-1], self.internal_domains)

    def has_verified_tls(self, address: str) -> bool:
        domain = address.rsplit("@", 1)[-1]
        return self._in(domain, self.internal_domains) or self._in(domain, self.partner_tls_domains)

    @property
    def envelopes_allowed(self) -> bool:
        return self.password_envelopes and "envelope" in self.allowed_methods

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "name": self.name,
            "internal_domains": sorted(self.internal_domains),
            "partner_tls_domains": sorted(self.partner_tls_domains),
            "minimum_level": self.minimum_level.value,
            "sensitive_level": self.sensitive_level.value,
            "detectors": {
                t: {"enabled": r.enabled, "threshold": r.threshold.value, "level": r.level.value}
                for t, r in self.detectors.items()
            },
            "allowed_methods": sorted(self.allowed_methods),
            "method_preference": list(self.method_preference),
            "password_envelopes": self.password_envelopes,
            "unscannable_attachments": self.unscannable_attachments,
            "subject_tags": list(self.subject_tags),
            "reply_forward": {
                "envelope_replies": self.reply_forward.envelope_replies,
                "forward_envelopes": self.reply_forward.forward_envelopes,
            },
            "user_may": {
                "raise_level": self.user_may.raise_level,
                "use_subject_tags": self.user_may.use_subject_tags,
                "use_envelopes": self.user_may.use_envelopes,
                "add_partner_domains": self.user_may.add_partner_domains,
            },
        }


DEFAULT_POLICY = OrgPolicy()


def _path(error: jsonschema.ValidationError) -> str:
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return "$" + parts


def parse_policy(data: bytes | str | Mapping[str, Any]) -> OrgPolicy:
    """Validate and build an :class:`OrgPolicy`; :class:`InvalidPolicy` lists every problem."""
    if isinstance(data, Mapping):
        doc: Any = dict(data)
    else:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # deep nesting: fuzz
            raise InvalidPolicy(
                f"the policy is not valid JSON: {exc}", problems=(f"$: not JSON: {exc}",)
            ) from exc
    import jsonschema  # ~0.2 s to import: only when a policy is really read

    validator = jsonschema.Draft202012Validator(SCHEMA)
    try:
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    except RecursionError as exc:  # a Mapping nested deeper than the stack (found by fuzzing)
        raise InvalidPolicy(
            "the policy is nested too deeply", problems=("$: nested too deeply",)
        ) from exc
    if errors:
        problems = tuple(f"{_path(e)}: {e.message}" for e in errors)
        raise InvalidPolicy(
            f"the policy has {len(problems)} problem(s): {problems[0]}", problems=problems
        )
    d = DEFAULT_POLICY
    default_threshold = Confidence(doc.get("default_threshold", "medium"))
    sensitive = Level(doc.get("sensitive_level", d.sensitive_level.value))
    detectors: dict[str, DetectorRule] = {}
    given = doc.get("detectors", {})
    for t in DETECTOR_TYPES:
        rule = given.get(t, {})
        detectors[t] = DetectorRule(
            enabled=bool(rule.get("enabled", True)),
            threshold=Confidence(rule.get("threshold", default_threshold.value)),
            level=Level(rule.get("level", sensitive.value)),
        )
    rf = doc.get("reply_forward", {})
    um = doc.get("user_may", {})
    du = d.user_may
    return OrgPolicy(
        name=str(doc.get("name", "organisation policy")),
        internal_domains=frozenset(x.lower() for x in doc.get("internal_domains", [])),
        partner_tls_domains=frozenset(x.lower() for x in doc.get("partner_tls_domains", [])),
        minimum_level=Level(doc.get("minimum_level", d.minimum_level.value)),
        sensitive_level=sensitive,
        detectors=detectors,
        allowed_methods=frozenset(doc.get("allowed_methods", sorted(d.allowed_methods))),
        method_preference=tuple(doc.get("method_preference", d.method_preference)),
        password_envelopes=bool(doc.get("password_envelopes", d.password_envelopes)),
        unscannable_attachments=doc.get("unscannable_attachments", d.unscannable_attachments),
        subject_tags=tuple(doc.get("subject_tags", d.subject_tags)),
        reply_forward=ReplyRules(
            envelope_replies=rf.get("envelope_replies", d.reply_forward.envelope_replies),
            forward_envelopes=bool(rf.get("forward_envelopes", d.reply_forward.forward_envelopes)),
        ),
        user_may=UserOverrides(
            raise_level=bool(um.get("raise_level", du.raise_level)),
            use_subject_tags=bool(um.get("use_subject_tags", du.use_subject_tags)),
            use_envelopes=bool(um.get("use_envelopes", du.use_envelopes)),
            add_partner_domains=bool(um.get("add_partner_domains", du.add_partner_domains)),
        ),
    )
