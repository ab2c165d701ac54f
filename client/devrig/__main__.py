"""``python -m client.devrig``: the mail rig in a process of its own.

Prints one JSON line (host, ports, CA file, users and passwords) when the servers are up,
then serves until standard input closes (or SIGTERM). Used where the rig must not share
the GIL with the program being measured (tests/ui/test_stalls.py: the in-process
submission server's LMTP relay held it for ~0.5 s per 47 MB message), and handy for
pointing a client at a throw-away Dovecot by hand.

    python -m client.devrig --user alice@example.test=secret --size-limit 83886080
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from client.devrig.rig import DEFAULT_USERS, MailRig

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m client.devrig", description=__doc__)
    ap.add_argument("--user", action="append", default=[], help="ADDRESS=PASSWORD (repeat)")
    ap.add_argument("--size-limit", type=int, default=32 << 20, help="SMTP SIZE in octets")
    args = ap.parse_args(argv)
    users = dict(u.split("=", 1) for u in args.user) or dict(DEFAULT_USERS)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with MailRig.start(users=users, size_limit=args.size_limit) as rig:
        facts = {
            "host": rig.host,
            "imap_port": rig.imap_port,
            "imaps_port": rig.imaps_port,
            "smtp_port": rig.smtp_port,
            "smtps_port": rig.smtps_port,
            "ca_file": str(rig.ca_file),
            "users": dict(rig.users),
        }
        print(json.dumps(facts), flush=True)

        def watch_stdin() -> None:
            sys.stdin.read()
            done.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        done.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
