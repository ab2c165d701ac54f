"""Reading the managed organisation policy file (the I/O half of :mod:`client.policy.orgpolicy`).

Searched at ``/etc/sealmail/policy.json`` (``SEALMAIL_POLICY`` overrides the path, for
tests and for IT staging a new file). No file: the built-in defaults. A file that exists
but cannot be read or does not validate is an error — never silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from client.policy.errors import InvalidPolicy
from client.policy.orgpolicy import DEFAULT_POLICY, OrgPolicy, parse_policy

__all__ = ["SYSTEM_POLICY_PATH", "load_org_policy", "policy_path"]

SYSTEM_POLICY_PATH = Path("/etc/sealmail/policy.json")


def policy_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    override = env.get("SEALMAIL_POLICY")
    return Path(override) if override else SYSTEM_POLICY_PATH


def load_org_policy(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> OrgPolicy:
    target = path or policy_path(env)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        if path is not None:
            raise InvalidPolicy(f"{target}: no such file") from None
        return DEFAULT_POLICY
    except OSError as exc:
        raise InvalidPolicy(f"{target}: cannot read: {exc.strerror}") from exc
    return parse_policy(data)
