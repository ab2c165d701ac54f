"""``sealmail policy``: scan content, plan protection, validate an organisation policy.

``sealmail policy tls DOMAIN [--refresh] --json`` shows what the profile knows about a
recipient domain's TLS (MTA-STS record, partner lists) and whether it meets
``tls-required``; ``sealmail policy partner add|remove|list`` manages the user's own
partner domains (only where the organisation policy's ``user_may.add_partner_domains``
allows adding).
"""

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


def _sts_sources(args: argparse.Namespace) -> Any:
    from client.commands.account import _resolve
    from client.errors import UsageError
    from client.transport.dns import DnsResolver
    from client.transport.tlsknowledge import StsSources

    dns = DnsResolver(timeout=args.timeout)
    if args.dns:
        host, sep, port = args.dns.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise UsageError(f"bad --dns {args.dns!r}; expected ADDRESS:PORT")
        dns = DnsResolver((host.strip("[]"),), int(port), timeout=args.timeout)
    return StsSources(
        dns=dns, ca_file=args.ca_file, resolve=_resolve(args.resolve or []), timeout=args.timeout
    )


def _mx_hosts(domain: str, record: Any, sources: Any) -> list[dict[str, Any]] | str:
    """The domain's MX hosts now, each matched against the policy (for information)."""
    from client.policy.mtasts import mx_matches
    from client.transport.dns import DnsError

    try:
        hosts = sources.dns.mx(domain)
    except DnsError as exc:
        return f"MX look-up failed: {exc}"
    return [
        {"host": h, "preference": p, "matches_policy": any(mx_matches(m, h) for m in record.mx)}
        for p, h in hosts
    ]


def cmd_tls(args: argparse.Namespace) -> int:
    from client.policy.plan import TlsKnowledge, tls_basis

    domain = args.domain.strip().lower().rstrip(".")
    org = _org_policy(args)
    when = now()
    s = session(args)
    store = s.tls_store()
    record = store.mta_sts(domain)
    mx_hosts = None
    if args.refresh or record is None:
        sources = _sts_sources(args)
        record = s.tls_refresh(domain, sources=sources, now=when, force=args.refresh)
        mx_hosts = _mx_hosts(domain, record, sources)
    knowledge = TlsKnowledge({domain: record}, store.user_partners())
    basis = tls_basis(f"x@{domain}", org, knowledge, when)
    out = {
        "domain": domain,
        "mta_sts": record.to_json(when),
        "last_error": store.last_error(domain),
        "meets_tls_required": basis is not None,
        "basis": basis,
    }
    if mx_hosts is not None:
        out["mx_hosts"] = mx_hosts
    if args.json:
        print_json(out)
    else:
        print(f"{domain}: {record.describe()}; MX {', '.join(record.mx) or '-'}")
        print(f"tls-required: {'met (' + basis + ')' if basis else 'not met (escalates)'}")
    return 0


def cmd_partner(args: argparse.Namespace) -> int:
    org = _org_policy(args)
    s = session(args)
    if args.action == "list":
        domains = s.tls_store().user_partners()
    else:
        if not args.domain:
            from client.errors import UsageError

            raise UsageError(f"`policy partner {args.action}` needs a DOMAIN")
        domains = s.tls_partner(args.domain, present=args.action == "add", org_policy=org)
    counted = org.user_may.add_partner_domains
    if args.json:
        print_json({"user_partner_domains": sorted(domains), "counted_by_policy": counted})
    else:
        for d in sorted(domains):
            print(d)
        if not counted:
            print("(the organisation policy does not count user-added partner domains)")
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
    tl = ps.add_parser("tls", help="what is known about a domain's TLS (MTA-STS, partners)")
    tl.add_argument("domain", metavar="DOMAIN")
    tl.add_argument("--refresh", action="store_true", help="fetch the MTA-STS policy again now")
    tl.add_argument("--policy", metavar="FILE", help="organisation policy (default: managed)")
    tl.add_argument("--dns", metavar="ADDRESS:PORT", help="ask this DNS server (default: system)")
    tl.add_argument(
        "--resolve", action="append", metavar="HOST:ADDRESS:PORT", help="connect HOST there"
    )
    tl.add_argument("--ca-file", metavar="PEM", help="trust only this CA for HTTPS")
    tl.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    tl.add_argument("--json", action="store_true")
    tl.set_defaults(func=cmd_tls)
    pa = ps.add_parser("partner", help="your own partner domains (if the policy allows)")
    pa.add_argument("action", choices=["add", "remove", "list"])
    pa.add_argument("domain", metavar="DOMAIN", nargs="?")
    pa.add_argument("--policy", metavar="FILE", help="organisation policy (default: managed)")
    pa.add_argument("--json", action="store_true")
    pa.set_defaults(func=cmd_partner)
