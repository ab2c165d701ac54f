"""Errors of the protection policy.

The branch below ``SealmailError`` (see :mod:`client.errors`)::

    SealmailError
    ├── UsageError
    │   └── InvalidLevel            an unknown level name was given (--level, a setting)
    └── PolicyError                 something about the protection policy
        ├── InvalidPolicy           the organisation policy file does not match its schema
        │                           (``.problems`` lists every problem with its JSON path)
        ├── PolicyBlocksSend        the message cannot be protected as required: held, not
        │                           sent (``.hold`` carries the reasons and the fixes)
        └── AuditLogBroken          the audit log's hash chain does not verify
                                    (``.problems`` says where)
"""

from __future__ import annotations

from typing import Any

from client.errors import SealmailError, UsageError

__all__ = ["AuditLogBroken", "InvalidLevel", "InvalidPolicy", "PolicyBlocksSend", "PolicyError"]


class InvalidLevel(UsageError):
    hint = "Use one of: tls, tls-required, signed, encrypted, encrypted+signed."


class PolicyError(SealmailError):
    hint = "Check the organisation policy (`sealmail policy validate FILE`)."
    exit_code = 12


class InvalidPolicy(PolicyError):
    hint = (
        "The organisation policy file is not valid; nothing is sent until IT fixes it "
        "(`sealmail policy validate FILE` lists every problem)."
    )

    def __init__(
        self, message: str, *, problems: tuple[str, ...] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems


class PolicyBlocksSend(PolicyError):
    hint = (
        "The message was not sent to anyone and stays where it was. Import the missing "
        "keys, allow a password envelope, or remove the recipients listed."
    )
    exit_code = 13

    def __init__(self, message: str, *, hold: Any = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.hold = hold

    @property
    def details(self) -> dict[str, Any] | None:
        """The hold as JSON (reason, fixes, plan) — what the outbox keeps with the message."""
        if self.hold is None:
            return None
        return {
            "reason": self.hold.reason,
            "fixes": [f.to_json() for f in self.hold.fixes],
            "plan": self.hold.to_json(),
        }


class AuditLogBroken(PolicyError):
    hint = (
        "The audit log was changed, truncated or reordered after it was written; "
        "keep a copy and tell IT."
    )
    exit_code = 14

    def __init__(
        self, message: str, *, problems: tuple[str, ...] = (), hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems
