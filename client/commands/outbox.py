"""``sealmail outbox``: list queued, held and sent messages; retry them."""

from __future__ import annotations

import argparse
from typing import Any

from client.commands.common import print_json, session

__all__ = ["register"]


def _json(e: Any) -> dict[str, Any]:
    return {
        "message_id": e.message_id,
        "account": e.account,
        "state": e.state.value,
        "reason": e.reason,
        "attempts": e.attempts,
        "recipients": e.rcpts,
    }


def cmd_list(args: argparse.Namespace) -> int:
    entries = session(args).outbox_list()
    if args.json:
        print_json([_json(e) for e in entries])
    else:
        for e in entries:
            print(f"{e.state.value:10} {e.message_id}  {e.reason or ''}")
    return 0


def cmd_flush(args: argparse.Namespace) -> int:
    entries = session(args).outbox_process(args.account)
    if args.json:
        print_json([_json(e) for e in entries])
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("outbox", help="the outbox of messages being sent")
    ps = p.add_subparsers(dest="outbox_command", required=True, metavar="ACTION")
    lst = ps.add_parser("list", help="list outbox messages with state and reason")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    f = ps.add_parser("flush", help="retry due messages and resume interrupted ones")
    f.add_argument("--account", metavar="ADDR")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=cmd_flush)
