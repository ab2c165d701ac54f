"""MTA-STS (RFC 8461) as TLS knowledge about a recipient domain — sans I/O.

Theory of operation
-------------------
A domain that publishes MTA-STS says "my MX hosts have valid certificates; deliver only
over verified TLS". Two parts are fetched by the shell (:mod:`client.transport.tlsknowledge`)
and parsed here, strictly:

* :func:`parse_sts_txt` — the ``_mta-sts.DOMAIN`` TXT record set: exactly one record
  starting with ``v=STSv1``, with ``id=`` (1-32 letters/digits). Two STS records or none
  mean "no policy" (RFC 8461 §3.1).
* :func:`parse_sts_policy` — the policy file ``https://mta-sts.DOMAIN/.well-known/
  mta-sts.txt``: at most :data:`MAX_POLICY_BYTES`, UTF-8, ``key: value`` lines ended by
  CRLF or LF; ``version: STSv1``, ``mode`` (enforce / testing / none), ``max_age`` (0 to
  31557600 seconds) each exactly once, ``mx`` patterns (``*.`` matches one left-most label)
  at least once unless the mode is ``none``. Unknown keys are extensions and ignored.

:class:`MtaStsRecord` is what the profile keeps per domain (what was seen, when, until
when, and the id that tells a later check whether to fetch again). :meth:`MtaStsRecord.
enforcing` is the planner's question: a valid, unexpired policy in mode ``enforce``.
Every failure is a typed :class:`MtaStsError` with a hint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from client.policy.errors import PolicyError

__all__ = [
    "MAX_AGE_LIMIT",
    "MAX_POLICY_BYTES",
    "BadStsPolicy",
    "MtaStsError",
    "MtaStsRecord",
    "NoStsRecord",
    "StsFetchFailed",
    "StsPolicy",
    "StsTimeout",
    "StsTlsFailed",
    "StsTooLarge",
    "mx_matches",
    "parse_sts_policy",
    "parse_sts_txt",
]

MAX_POLICY_BYTES = 64 * 1024
MAX_AGE_LIMIT = 31_557_600  # RFC 8461 §3.2: about one year
Mode = Literal["enforce", "testing", "none"]

_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_FIELD = re.compile(r"([A-Za-z0-9_.-]{1,32})=([\x21-\x3a\x3c\x3e-\x7e]{1,200})")
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_MX = re.compile(rf"(?:\*\.)?(?:{_LABEL}\.)+{_LABEL}\.?")
_KEY = re.compile(r"[A-Za-z0-9_]{1,32}")


class MtaStsError(PolicyError):
    """MTA-STS for a domain could not be established; ``tls-required`` is not met by it."""

    hint = (
        "Without a valid MTA-STS policy in mode enforce, messages at tls-required to this "
        "domain are encrypted instead (or held). Ask the domain's administrator, or IT to "
        "add it to partner_tls_domains."
    )


class NoStsRecord(MtaStsError):
    hint = (
        "The domain publishes no usable _mta-sts TXT record (none, or more than one); it "
        "does not promise verified TLS. Ask IT to add it to partner_tls_domains if there "
        "is a TLS agreement."
    )


class BadStsPolicy(MtaStsError):
    hint = (
        "The domain's MTA-STS policy file does not follow RFC 8461; it is ignored. Tell the "
        "domain's administrator what is wrong (shown above)."
    )


class StsTooLarge(BadStsPolicy):
    hint = "The MTA-STS policy file is larger than 64 KiB and is refused (RFC 8461 §3.3)."


class StsTlsFailed(MtaStsError):
    hint = (
        "The MTA-STS policy host did not present a valid certificate for "
        "mta-sts.DOMAIN; the policy is never read over unverified TLS. Check the system "
        "clock and CA store, or tell the domain's administrator."
    )


class StsTimeout(MtaStsError):
    hint = "The DNS or HTTPS look-up timed out; check the network and try --refresh later."


class StsFetchFailed(MtaStsError):
    hint = (
        "The MTA-STS policy could not be fetched (the error is shown above); it must be "
        "served at https://mta-sts.DOMAIN/.well-known/mta-sts.txt with HTTP 200, "
        "Content-Type text/plain and no redirect."
    )


def parse_sts_txt(records: Sequence[str | bytes], domain: str = "") -> str:
    """The policy id from the ``_mta-sts`` TXT strings (each already joined)."""
    texts = [r.decode("ascii", "replace") if isinstance(r, bytes) else r for r in records]
    sts = [t for t in texts if t.startswith("v=STSv1")]
    where = f"_mta-sts.{domain}" if domain else "_mta-sts"
    if not sts:
        raise NoStsRecord(f"{where} has no v=STSv1 TXT record")
    if len(sts) > 1:
        raise NoStsRecord(f"{where} has {len(sts)} v=STSv1 TXT records (exactly one allowed)")
    fields = [f.strip(" \t") for f in sts[0].split(";")]
    if fields and fields[-1] == "":
        fields.pop()
    if fields[0] != "v=STSv1":
        raise NoStsRecord(f"{where}: the record must start with 'v=STSv1;'")
    found: dict[str, str] = {}
    for f in fields[1:]:
        m = _FIELD.fullmatch(f)
        if m is None:
            raise NoStsRecord(f"{where}: malformed field {f[:40]!r}")
        found.setdefault(m.group(1), m.group(2))
    ident = found.get("id")
    if ident is None or not _ID.fullmatch(ident):
        raise NoStsRecord(f"{where}: no valid id= (1-32 letters and digits)")
    return ident


@dataclass(frozen=True)
class StsPolicy:
    mode: Mode
    mx: tuple[str, ...]
    max_age: int
    version: str = "STSv1"


def parse_sts_policy(body: bytes) -> StsPolicy:
    """The policy file, strictly; :class:`BadStsPolicy` (or :class:`StsTooLarge`) if not."""
    if len(body) > MAX_POLICY_BYTES:
        raise StsTooLarge(f"policy file is {len(body)} bytes, more than {MAX_POLICY_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadStsPolicy(f"policy file is not UTF-8 (byte {exc.start})") from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    single: dict[str, str] = {}
    mx: list[str] = []
    for n, raw_line in enumerate(lines, 1):
        line = raw_line[:-1] if raw_line.endswith("\r") else raw_line
        if "\r" in line:
            raise BadStsPolicy(f"line {n}: stray carriage return")
        key, sep, value = line.partition(":")
        if not sep or not _KEY.fullmatch(key):
            raise BadStsPolicy(f"line {n}: not 'key: value'")
        value = value.strip(" \t")
        if key == "mx":
            pattern = value.lower()
            if not _MX.fullmatch(pattern):
                raise BadStsPolicy(f"line {n}: bad mx pattern {value[:60]!r}")
            mx.append(pattern.rstrip("."))
        elif key in ("version", "mode", "max_age"):
            if key in single:
                raise BadStsPolicy(f"line {n}: {key} given twice")
            single[key] = value
        # other keys: extensions (RFC 8461 §3.2), ignored
    for key in ("version", "mode", "max_age"):
        if key not in single:
            raise BadStsPolicy(f"the policy has no {key}")
    if single["version"] != "STSv1":
        raise BadStsPolicy(f"unknown version {single['version'][:20]!r} (expected STSv1)")
    mode = single["mode"]
    if mode not in ("enforce", "testing", "none"):
        raise BadStsPolicy(f"unknown mode {mode[:20]!r} (enforce, testing or none)")
    age = single["max_age"]
    if not age.isascii() or not age.isdigit() or len(age) > 10 or int(age) > MAX_AGE_LIMIT:
        raise BadStsPolicy(f"max_age {age[:20]!r} is not 0..{MAX_AGE_LIMIT} seconds")
    if mode != "none" and not mx:
        raise BadStsPolicy(f"mode {mode} needs at least one mx pattern")
    return StsPolicy(mode, tuple(dict.fromkeys(mx)), int(age))  # type: ignore[arg-type]


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: exact match, or ``*.`` standing for exactly one left-most label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, dot, rest = host.partition(".")
        return bool(head) and bool(dot) and rest == pattern[2:]
    return host == pattern


@dataclass(frozen=True)
class MtaStsRecord:
    """What the profile knows about one domain's MTA-STS (no secret, no message data)."""

    domain: str
    policy_id: str
    mode: Mode
    mx: tuple[str, ...]
    max_age: int
    fetched: datetime

    @property
    def expires(self) -> datetime:
        return self.fetched + timedelta(seconds=self.max_age)

    def valid(self, now: datetime) -> bool:
        return self.fetched <= now + timedelta(minutes=5) and now < self.expires

    def enforcing(self, now: datetime) -> bool:
        """Meets ``tls-required``: mode enforce, not expired, and names some MX."""
        return self.mode == "enforce" and bool(self.mx) and self.valid(now)

    def describe(self) -> str:
        until = self.expires.strftime("%Y-%m-%dT%H:%MZ")
        return f"MTA-STS {self.mode} (id {self.policy_id}, until {until})"

    @classmethod
    def from_policy(
        cls, domain: str, policy_id: str, policy: StsPolicy, fetched: datetime
    ) -> MtaStsRecord:
        return cls(domain.lower(), policy_id, policy.mode, policy.mx, policy.max_age, fetched)

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "domain": self.domain,
            "id": self.policy_id,
            "mode": self.mode,
            "mx": list(self.mx),
            "max_age": self.max_age,
            "fetched": self.fetched.isoformat(),
            "expires": self.expires.isoformat(),
        }
        if now is not None:
            out["valid"] = self.valid(now)
            out["meets_tls_required"] = self.enforcing(now)
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> MtaStsRecord:
        mode = doc["mode"]
        if mode not in ("enforce", "testing", "none"):
            raise ValueError(f"bad mode {mode!r}")
        return cls(
            str(doc["domain"]).lower(),
            str(doc["id"]),
            mode,
            tuple(str(x) for x in doc["mx"]),
            int(doc["max_age"]),
            datetime.fromisoformat(str(doc["fetched"])),
        )
