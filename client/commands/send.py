"""``sealmail send``: queue a message in the durable outbox and submit it.

Exit 0 only when the submission server accepted the message; otherwise the message stays
in the outbox (``sealmail outbox list``) with its state and reason.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from client.commands.common import print_json, read_input, session
from client.transport.outbox_state import ACCEPTED_STATES, State

__all__ = ["EXIT_NOT_SENT", "register"]

EXIT_NOT_SENT = 75  # EX_TEMPFAIL: queued, will be retried
EXIT_HELD = 11


def cmd_send(args: argparse.Namespace) -> int:
    raw = read_input(args.message_file)
    s = session(args)
    entry = s.send(raw, email=args.account)
    if args.json:
        print_json(
            {"message_id": entry.message_id, "state": entry.state.value, "reason": entry.reason}
        )
    elif entry.state in ACCEPTED_STATES:
        print(f"sent {entry.message_id}")
    if entry.state in ACCEPTED_STATES:
        return 0
    sys.stderr.write(
        f"error: {entry.message_id} was not sent ({entry.state.value}): {entry.reason}\n"
        "hint: it stays in the outbox (`sealmail outbox list`)\n"
    )
    return EXIT_HELD if entry.state is State.HELD else EXIT_NOT_SENT


def register(sub: Any) -> None:
    p = sub.add_parser("send", help="send a message through the outbox")
    p.add_argument("message_file", metavar="MESSAGE_FILE", help="RFC 5322 message ('-' = stdin)")
    p.add_argument("--account", metavar="ADDR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_send)
