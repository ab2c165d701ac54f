"""``sealmail draft``: save a draft to the account's Drafts folder, list, open, delete.

``draft save FILE`` stores a new version (``--id`` replaces the version with that id);
a draft the policy would protect, or one with findings, is stored encrypted to your own
key, and refused (exit code of :class:`client.drafts.DraftNeedsOwnKey`) without one.
``draft open ID`` writes the draft as written (decrypted in memory) to ``-o`` or stdout.
"""

from __future__ import annotations

import argparse
from typing import Any

from client.commands.common import print_json, read_input, session, write_output

__all__ = ["register"]


def cmd_save(args: argparse.Namespace) -> int:
    saved = session(args).drafts_save(read_input(args.file), email=args.account, draft_id=args.id)
    if args.json:
        print_json(saved.to_json())
    else:
        how = "encrypted to your own key" if saved.encrypted else "as written"
        print(f"saved draft {saved.draft_id} in {saved.folder} ({how})")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    drafts = session(args).drafts_list(args.account)
    if args.json:
        print_json([d.to_json() for d in drafts])
    else:
        for d in drafts:
            subject = "(encrypted)" if d.encrypted else d.subject
            print(f"{d.uid:6} {d.draft_id or '-':32}  {subject}")
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    write_output(args.output, session(args).drafts_open(args.id, email=args.account))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    gone = session(args).drafts_delete(args.id, email=args.account)
    if args.json:
        print_json({"draft_id": args.id, "deleted": gone})
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("draft", help="drafts on the server (encrypted when protected)")
    ps = p.add_subparsers(dest="draft_command", required=True, metavar="ACTION")
    s = ps.add_parser("save", help="store a draft (a new version replaces the old one)")
    s.add_argument("file", metavar="FILE", help="the RFC 5322 draft ('-' for stdin)")
    s.add_argument("--id", metavar="ID", help="the draft id to replace (from `draft list`)")
    s.set_defaults(func=cmd_save)
    lst = ps.add_parser("list", help="list the drafts in the Drafts folder")
    lst.set_defaults(func=cmd_list)
    o = ps.add_parser("open", help="write a draft as written (decrypted) to stdout or -o")
    o.add_argument("id", metavar="ID")
    o.add_argument("-o", "--output", metavar="FILE")
    o.set_defaults(func=cmd_open)
    d = ps.add_parser("delete", help="delete a draft")
    d.add_argument("id", metavar="ID")
    d.set_defaults(func=cmd_delete)
    for q in (s, lst, o, d):
        q.add_argument("--account", metavar="ADDR")
        q.add_argument("--json", action="store_true")
