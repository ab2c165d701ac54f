"""The audit log's file shell: append-only ``audit.log`` plus ``audit.head`` in the profile.

Theory of operation
-------------------
The hash chain is pure (:mod:`client.policy.audit`); this shell only moves bytes. An append
takes the profile lock, reads the head, builds the next record, appends one line to
``audit.log`` (``O_APPEND``, mode 0600, fsync) and then replaces ``audit.head`` atomically
(temp file, fsync, rename). A crash between the two leaves the head one record behind,
which :func:`client.policy.audit.verify_lines` accepts; a head *ahead* of the log means
records were removed from the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from client.policy.audit import AuditRecord, Head, VerifyResult, make_record, record_line
from client.policy.audit import verify_lines as _verify
from keystore.profile import Profile, atomic_write

__all__ = ["AuditLog"]

LOG_NAME = "audit.log"
HEAD_NAME = "audit.head"


class AuditLog:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.path: Path = profile.file(LOG_NAME)
        self.head_path: Path = profile.file(HEAD_NAME)

    def _lines(self) -> Iterator[bytes]:
        try:
            with open(self.path, "rb") as f:
                yield from f
        except FileNotFoundError:
            return

    def head(self) -> Head | None:
        try:
            obj = json.loads(self.head_path.read_bytes())
            return Head(int(obj["seq"]), str(obj["hash"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return Head(-1, "unreadable")

    def _last(self) -> Head | None:
        result = _verify(self._lines())
        return result.head

    def append(self, now: datetime, **fields: Any) -> AuditRecord:
        with self.profile.lock():
            last = self._last()
            record = make_record(head=last, now=now, **fields)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, record_line(record))
                os.fsync(fd)
            finally:
                os.close(fd)
            atomic_write(
                self.head_path,
                json.dumps(Head(record.seq, record.hash).to_json()).encode(),
                mode=0o600,
            )
        return record

    def verify(self) -> VerifyResult:
        head = self.head()
        if head is None and self.path.exists():
            result = _verify(self._lines())
            return VerifyResult(
                False,
                result.count,
                result.head,
                (*result.problems, "the head file is missing"),
                result.records,
            )
        return _verify(self._lines(), head=head)
