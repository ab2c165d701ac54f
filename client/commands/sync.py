"""``sealmail sync``: bring the local cache of folders and headers up to date."""

from __future__ import annotations

import argparse
from typing import Any

from client.commands.common import print_json, session

__all__ = ["register"]


def cmd_sync(args: argparse.Namespace) -> int:
    s = session(args)
    reports = s.sync(args.account)
    if args.json:
        print_json([r.to_json() for r in reports])
    else:
        for r in reports:
            print(f"{r.folder}: {r.action}, {r.new} new, {r.expunged} gone, {r.total} total")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("sync", help="synchronise folders and message headers")
    p.add_argument("--account", metavar="ADDR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sync)
