"""The audit log's hash chain (pure): records, hashing, verification.

Theory of operation
-------------------
Each protection decision becomes one :class:`AuditRecord` — time, message id, sender,
recipients, level, decision, method per recipient and the reasons (rule, finding type
and position, never the value). Records are stored one per line as canonical JSON
(sorted keys, no spaces) with ``seq`` (0, 1, 2, ...), ``prev`` (the previous record's
hash; 64 zeros for the first) and ``hash`` = SHA-256 over ``prev`` and the canonical
JSON of the record without ``hash``.

:func:`verify_lines` recomputes the chain. It detects an edited record (its hash no longer
matches), a deleted or inserted record and reordering (``seq``/``prev`` break), and —
given the *head* (the last ``seq`` and ``hash``, which the shell keeps in a second file) —
truncation of the tail. What it cannot detect: someone who can write the profile and
rewrites the whole log *and* the head consistently, or deletes both files. Defending
against that needs an anchor outside the profile (the head sent to IT or a server, or a
MAC key the user cannot read); see :func:`chain_hash` ``key`` for the MAC variant.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "GENESIS",
    "AuditRecord",
    "Head",
    "VerifyResult",
    "chain_hash",
    "make_record",
    "record_line",
    "verify_lines",
]

GENESIS = "0" * 64


def _canonical(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def chain_hash(prev: str, body: Mapping[str, Any], *, key: bytes | None = None) -> str:
    """SHA-256 (or HMAC-SHA-256 with ``key``) over the previous hash and the record."""
    data = prev.encode("ascii") + b"\n" + _canonical(body)
    if key is not None:
        return hmac.new(key, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    message_id: str | None
    sender: str | None
    recipients: tuple[str, ...]
    level: str
    decision: str  # "send" | "hold"
    methods: Mapping[str, str | None]
    reasons: tuple[Mapping[str, Any], ...]
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "message_id": self.message_id,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "level": self.level,
            "decision": self.decision,
            "methods": dict(self.methods),
            "reasons": [dict(r) for r in self.reasons],
            "prev": self.prev,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash}


_FINDING_KEYS = ("rule", "level", "detail", "type", "start", "end", "confidence")


def make_record(
    *,
    head: Head | None,
    now: datetime,
    message_id: str | None,
    sender: str | None,
    recipients: Sequence[str],
    level: str,
    decision: str,
    methods: Mapping[str, str | None],
    reasons: Iterable[Mapping[str, Any]],
    key: bytes | None = None,
) -> AuditRecord:
    """The next record after ``head`` (None: the first). Reasons keep only known keys."""
    clean = tuple({k: r[k] for k in _FINDING_KEYS if k in r} for r in reasons)
    seq = 0 if head is None else head.seq + 1
    prev = GENESIS if head is None else head.hash
    draft = AuditRecord(
        seq=seq,
        time=now.isoformat(),
        message_id=message_id,
        sender=sender,
        recipients=tuple(recipients),
        level=level,
        decision=decision,
        methods=dict(methods),
        reasons=clean,
        prev=prev,
        hash="",
    )
    return AuditRecord(**{**draft.__dict__, "hash": chain_hash(prev, draft.body(), key=key)})


def record_line(record: AuditRecord) -> bytes:
    return _canonical(record.to_json()) + b"\n"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    count: int
    head: Head | None
    problems: tuple[str, ...]
    records: tuple[AuditRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.count,
            "head": self.head.to_json() if self.head else None,
            "problems": list(self.problems),
        }


def _parse(line: bytes, n: int) -> AuditRecord:
    obj = json.loads(line)
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    return AuditRecord(
        seq=int(obj["seq"]),
        time=str(obj["time"]),
        message_id=obj.get("message_id"),
        sender=obj.get("sender"),
        recipients=tuple(obj["recipients"]),
        level=str(obj["level"]),
        decision=str(obj["decision"]),
        methods=dict(obj["methods"]),
        reasons=tuple(obj["reasons"]),
        prev=str(obj["prev"]),
        hash=str(obj["hash"]),
    )


def verify_lines(
    lines: Iterable[bytes], *, head: Head | None = None, key: bytes | None = None
) -> VerifyResult:
    """Check the chain; with ``head`` (kept apart from the log) also truncation."""
    problems: list[str] = []
    records: list[AuditRecord] = []
    prev = GENESIS
    last: Head | None = None
    for n, line in enumerate(lines):
        if not line.strip():
            problems.append(f"line {n + 1}: empty line")
            continue
        try:
            rec = _parse(line, n)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"line {n + 1}: unreadable record ({type(exc).__name__})")
            prev = "?"
            continue
        if rec.seq != len(records):
            problems.append(
                f"line {n + 1}: sequence {rec.seq}, expected {len(records)} "
                "(a record was deleted, inserted or moved)"
            )
        if rec.prev != prev:
            problems.append(f"line {n + 1}: does not chain to the record before it")
        if chain_hash(rec.prev, rec.body(), key=key) != rec.hash:
            problems.append(f"line {n + 1}: record was changed after it was written")
        records.append(rec)
        prev = rec.hash
        last = Head(rec.seq, rec.hash)
    if head is not None:
        if last is None or last.seq < head.seq:
            problems.append(
                f"the log ends at record {last.seq if last else -1} but the head says "
                f"{head.seq}: records were removed from the end"
            )
        elif last.seq == head.seq and last.hash != head.hash:
            problems.append("the last record does not match the head")
        elif last.seq > head.seq + 1:
            problems.append(f"{last.seq - head.seq} records after the head")
        elif last.seq == head.seq + 1 and records[head.seq].hash != head.hash:
            problems.append("the head does not match the log")
    return VerifyResult(not problems, len(records), last, tuple(problems), tuple(records))
