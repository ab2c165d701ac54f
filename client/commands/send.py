"""``sealmail send``: queue a message in the durable outbox, apply the protection policy, submit.

Exit 0 only when every protected copy was accepted by the submission server. Held by the
protection policy → exit 13 (``PolicyBlocksSend``) with the reason and the fixes; held for
another reason (5xx, TLS) → 11; queued for a retry → 75. The message stays in the outbox
(``sealmail outbox list``); ``sealmail outbox release ID`` plans it again after a fix.
New password-envelope passwords are printed once on stderr (JSON: ``envelope_passwords``)
so the sender can phone them; they are never in the mail.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from client.commands.common import print_json, read_input, session
from client.transport.outbox_state import ACCEPTED_STATES, State

__all__ = ["EXIT_HELD", "EXIT_NOT_SENT", "EXIT_POLICY_HOLD", "register", "report"]

EXIT_NOT_SENT = 75  # EX_TEMPFAIL: queued, will be retried
EXIT_HELD = 11
EXIT_POLICY_HOLD = 13  # == client.policy.errors.PolicyBlocksSend.exit_code

LEVELS = ["tls", "tls-required", "signed", "encrypted", "encrypted+signed"]


def entry_json(entry: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "message_id": entry.message_id,
        "state": entry.state.value,
        "reason": entry.reason,
        "copies": [
            {"recipients": c["rcpts"], "method": c.get("method"), "done": bool(c.get("done"))}
            for c in entry.copies
        ],
    }
    if entry.hold:
        out["hold"] = entry.hold
        out["fixes"] = entry.hold.get("fixes", [])
    new = {p["recipient"]: p["password"] for p in entry.envelope_passwords if p["new"]}
    out["envelope_passwords"] = new
    out["envelope_reused"] = [p["recipient"] for p in entry.envelope_passwords if not p["new"]]
    return out


def report(entry: Any, *, as_json: bool) -> int:
    """Print the outcome of one send/release and return the exit code."""
    if as_json:
        print_json(entry_json(entry))
    for p in entry.envelope_passwords:
        if p["new"]:
            sys.stderr.write(
                f"envelope password for {p['recipient']}: {p['password']}\n"
                "  tell it by phone or text message; it is not in the mail and is shown once\n"
            )
        else:
            sys.stderr.write(
                f"envelope for {p['recipient']}: uses the password you gave them before\n"
            )
    if entry.state in ACCEPTED_STATES:
        if not as_json:
            print(f"sent {entry.message_id} ({len(entry.copies) or 1} copies)")
        return 0
    sys.stderr.write(
        f"error: {entry.message_id} was not sent ({entry.state.value}): {entry.reason}\n"
    )
    if entry.hold:
        for fix in entry.hold.get("fixes", []):
            sys.stderr.write(f"fix: {fix['detail']}\n")
    sys.stderr.write(
        "hint: it stays in the outbox (`sealmail outbox list`); after fixing it, "
        "`sealmail outbox release ID`\n"
    )
    if entry.state is State.HELD:
        return EXIT_POLICY_HOLD if entry.hold else EXIT_HELD
    return EXIT_NOT_SENT


def cmd_send(args: argparse.Namespace) -> int:
    from client.policy.levels import Level

    raw = read_input(args.message_file)
    level = Level.parse(args.level) if args.level else None
    entry = session(args).send(raw, email=args.account, level=level)
    return report(entry, as_json=args.json)


def register(sub: Any) -> None:
    p = sub.add_parser("send", help="protect (per policy) and send a message through the outbox")
    p.add_argument("message_file", metavar="MESSAGE_FILE", help="RFC 5322 message ('-' = stdin)")
    p.add_argument("--account", metavar="ADDR")
    p.add_argument(
        "--level", choices=LEVELS, help="raise protection (never below the organisation policy)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_send)
