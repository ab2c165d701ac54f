"""``sealmail policy``: scan content, plan protection, validate an organisation policy."""

from __future__ import annotations

import argparse
import email.parser
import email.policy
from pathlib import Path
from typing import Any

from client.commands.common import now, print_json, read_input, session

__all__ = ["register"]


def _looks_like_message(data: bytes) -> bool:
    head = data[:8192].split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    if b"\n\n" not in data[:65536] and b"\r\n\r\n" not in data[:65536]:
        return False
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    names = {k.lower() for k in msg.keys()}
    return bool(names & {"from", "to", "subject", "mime-version", "content-type", "date"})


def _org_policy(args: argparse.Namespace) -> Any:
    from client.store.policyfile import load_org_policy

    return load_org_policy(Path(args.policy) if getattr(args, "policy", None) else None)


def cmd_scan(args: argparse.Namespace) -> int:
    from client.policy.extract import message_text, plain_text
    from client.policy.plan import Draft, plan
    from client.policy.scan import scan_text

    data = read_input(args.input)
    org = _org_policy(args)
    scanned = message_text(data) if _looks_like_message(data) else plain_text(data)
    enabled = [t for t, r in org.detectors.items() if r.enabled]
    findings = scan_text(scanned.text, types=enabled)
    draft = Draft.from_scan(scanned, findings, sender=None)
    level = plan(draft, [], _no_keys(), org, now()).level
    if args.json:
        print_json({"findings": [f.to_json() for f in findings], "level": level.value})
    else:
        for f in findings:
            print(f"{f.type}\t{f.start}-{f.end}\t{f.confidence.value}")
        print(f"level: {level.value}")
    return 0


def _no_keys() -> Any:
    from client.policy.plan import KeyStatus

    return KeyStatus({})


def cmd_plan(args: argparse.Namespace) -> int:
    from client.policy.errors import PolicyBlocksSend
    from client.policy.levels import Level

    raw = read_input(args.input)
    org = _org_policy(args)
    level = Level.parse(args.level) if args.level else None
    p = session(args).policy_plan(raw, org, level=level, now=now())
    if args.json:
        print_json(p.to_json())
    else:
        print(f"level: {p.level.value} ({p.reason})")
        for r in p.recipients:
            print(f"  {r.address}: {r.method or 'HOLD'} — {r.why}")
            for fix in r.fixes:
                print(f"    fix: {fix.detail}")
    return PolicyBlocksSend.exit_code if p.hold else 0


def cmd_validate(args: argparse.Namespace) -> int:
    from client.policy.errors import InvalidPolicy
    from client.policy.orgpolicy import parse_policy

    data = read_input(args.input)
    try:
        org = parse_policy(data)
    except InvalidPolicy as exc:
        if args.json:
            print_json({"valid": False, "problems": list(exc.problems)})
        else:
            for problem in exc.problems:
                print(f"invalid: {problem}")
        return InvalidPolicy.exit_code
    if args.json:
        print_json({"valid": True, "policy": org.to_json()})
    else:
        print(f"valid: {org.name}")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from client.policy.orgpolicy import SCHEMA

    print_json(SCHEMA)
    return 0


def register(sub: Any) -> None:
    pol = sub.add_parser("policy", help="protection policy: scan, plan, validate")
    ps = pol.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    sc = ps.add_parser("scan", help="find sensitive identifiers in a text file or message")
    sc.add_argument("input", metavar="FILE")
    sc.add_argument("--policy", metavar="FILE", help="organisation policy (default: managed)")
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_scan)
    pl = ps.add_parser("plan", help="how a message would be protected, per recipient")
    pl.add_argument("input", metavar="MESSAGE_FILE")
    pl.add_argument(
        "--level", choices=["tls", "tls-required", "signed", "encrypted", "encrypted+signed"]
    )
    pl.add_argument("--policy", metavar="FILE", help="organisation policy (default: managed)")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=cmd_plan)
    va = ps.add_parser("validate", help="check an organisation policy file against the schema")
    va.add_argument("input", metavar="FILE")
    va.add_argument("--json", action="store_true")
    va.set_defaults(func=cmd_validate)
    sh = ps.add_parser("schema", help="print the organisation policy's JSON Schema")
    sh.set_defaults(func=cmd_schema)
