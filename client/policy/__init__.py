"""The protection policy: levels, the content scanner, the organisation policy, the
planner, the audit chain and the integration the send path calls.

Everything here is sans-I/O: no sockets, no files, no Qt; time and randomness are
parameters. The file shells (reading the managed policy file, appending to the audit log)
live in :mod:`client.store.audit` and the CLI/service layer.
"""

from __future__ import annotations

__all__: list[str] = []
