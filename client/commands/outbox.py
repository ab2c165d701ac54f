"""``sealmail outbox``: list queued, held and sent messages; retry them; release held ones."""

from __future__ import annotations

import argparse
from typing import Any

from client.commands.common import print_json, session

__all__ = ["register"]


def _json(e: Any) -> dict[str, Any]:
    out = {
        "message_id": e.message_id,
        "account": e.account,
        "state": e.state.value,
        "reason": e.reason,
        "attempts": e.attempts,
        "recipients": e.rcpts,
        "copies": [
            {"recipients": c["rcpts"], "method": c.get("method"), "done": bool(c.get("done"))}
            for c in e.copies
        ],
    }
    if e.hold:
        out["hold"] = e.hold
        out["fixes"] = e.hold.get("fixes", [])
    return out


def cmd_list(args: argparse.Namespace) -> int:
    entries = session(args).outbox_list()
    if args.json:
        print_json([_json(e) for e in entries])
    else:
        for e in entries:
            print(f"{e.state.value:10} {e.message_id}  {e.reason or ''}")
            for fix in (e.hold or {}).get("fixes", []):
                print(f"{'':10} fix: {fix['detail']}")
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    entries = session(args).outbox_process(args.account)
    if args.json:
        print_json([_json(e) for e in entries])
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    from client.commands.send import report

    entry = session(args).outbox_release(args.message_id)
    return report(entry, as_json=args.json)


def register(sub: Any) -> None:
    p = sub.add_parser("outbox", help="the outbox of messages being sent")
    ps = p.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    lst = ps.add_parser("list", help="list outbox messages with state, reason and fixes")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    f = ps.add_parser("flush", help="retry due messages and resume interrupted ones")
    f.add_argument("--account", metavar="ADDR")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_flush)
    r = ps.add_parser("release", help="plan a held message again (after a fix) and send it")
    r.add_argument("message_id", metavar="ID", help="the Message-ID (`sealmail outbox list`)")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_release)
