"""``sealmail audit``: verify and export the hash-chained protection audit log."""

from __future__ import annotations

import argparse
from typing import Any

from client.commands.common import print_json, session

__all__ = ["register"]


def cmd_verify(args: argparse.Namespace) -> int:
    from client.policy.errors import AuditLogBroken

    result = session(args).audit_verify()
    if args.json:
        print_json(result.to_json())
    elif result.ok:
        print(f"ok: {result.count} records, chain intact")
    if not result.ok:
        raise AuditLogBroken(
            f"the audit log does not verify: {result.problems[0]}", problems=result.problems
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    result = session(args).audit_verify()
    records = [r.to_json() for r in result.records]
    if args.json:
        print_json({"verified": result.ok, "problems": list(result.problems), "records": records})
    else:
        for r in records:
            methods = ", ".join(f"{a}={m}" for a, m in r["methods"].items())
            print(f"{r['seq']}\t{r['time']}\t{r['decision']}\t{r['level']}\t{methods}")
    return 0


def register(sub: Any) -> None:
    au = sub.add_parser("audit", help="the protection decisions audit log")
    aus = au.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    ve = aus.add_parser("verify", help="check the hash chain (edits, deletions, reordering)")
    ve.add_argument("--json", action="store_true")
    ve.set_defaults(func=cmd_verify)
    ex = aus.add_parser("export", help="print every record")
    ex.add_argument("--json", action="store_true")
    ex.set_defaults(func=cmd_export)
