"""The profile's TLS knowledge about other domains: ``tls-knowledge.json`` (a thin shell).

Theory of operation
-------------------
One JSON file in the profile (mode 0600, replaced atomically) holds, per recipient domain,
the last MTA-STS record seen (:class:`~client.policy.mtasts.MtaStsRecord`: id, mode, MX
patterns, max_age, when fetched, until when), the last failure to refresh it (message and
time, for ``sealmail policy tls``), and the partner domains the user added themself
(counted by the planner only when the organisation policy's ``user_may.
add_partner_domains`` allows it). Nothing here is secret or message data. An unreadable or
malformed file is treated as empty knowledge — which can only make the planner stricter.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from client.policy.mtasts import MtaStsRecord
from client.policy.plan import TlsKnowledge
from keystore.profile import atomic_write

__all__ = ["FILE_NAME", "TlsKnowledgeStore"]

FILE_NAME = "tls-knowledge.json"


class TlsKnowledgeStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            doc = {}
        if not isinstance(doc, dict) or doc.get("version") != 1:
            doc = {"version": 1}
        for key, empty in (("mta_sts", {}), ("errors", {}), ("user_partners", [])):
            if not isinstance(doc.get(key), type(empty)):
                doc[key] = empty
        return doc

    def _save(self, doc: dict[str, Any]) -> None:
        atomic_write(self.path, json.dumps(doc, indent=1, sort_keys=True).encode() + b"\n")

    def mta_sts(self, domain: str) -> MtaStsRecord | None:
        raw = self._load()["mta_sts"].get(domain.lower())
        try:
            return MtaStsRecord.from_json(raw) if raw else None
        except (KeyError, TypeError, ValueError):
            return None

    def last_error(self, domain: str) -> dict[str, str] | None:
        err = self._load()["errors"].get(domain.lower())
        return err if isinstance(err, dict) else None

    def put_mta_sts(self, record: MtaStsRecord) -> None:
        doc = self._load()
        doc["mta_sts"][record.domain] = record.to_json()
        doc["errors"].pop(record.domain, None)
        self._save(doc)

    def put_error(self, domain: str, error: BaseException, *, now: datetime) -> None:
        doc = self._load()
        doc["errors"][domain.lower()] = {
            "error": type(error).__name__,
            "message": str(error),
            "hint": str(getattr(error, "hint", "")),
            "when": now.isoformat(),
        }
        self._save(doc)

    def user_partners(self) -> frozenset[str]:
        return frozenset(str(d).lower() for d in self._load()["user_partners"])

    def set_user_partner(self, domain: str, *, present: bool) -> None:
        doc = self._load()
        domains = set(self.user_partners())
        (domains.add if present else domains.discard)(domain.lower())
        doc["user_partners"] = sorted(domains)
        self._save(doc)

    def knowledge(self, domains: set[str] | None = None) -> TlsKnowledge:
        """What the planner needs (for ``domains``, or every domain known)."""
        records = {}
        for d in self._load()["mta_sts"] if domains is None else domains:
            rec = self.mta_sts(d)
            if rec is not None:
                records[rec.domain] = rec
        return TlsKnowledge(mta_sts=records, user_partners=self.user_partners())
