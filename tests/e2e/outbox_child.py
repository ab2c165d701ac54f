"""Child process for the crash test: drive one profile's outbox until it is empty.

Usage: python -m tests.e2e.outbox_child PROFILE ACCOUNT_JSON (password in SM_TEST_PASSWORD).
Exit 0 when every message is done. The parent kills it with SIGKILL at random moments.
"""

from __future__ import annotations

import json
import os
import sys

from client.transport.accounts import Account
from client.transport.imap import connect
from client.transport.outbox import Outbox, transport_only_policy
from client.transport.outbox_state import State
from client.transport.smtp import submit_connect
from keystore.profile import open_profile


def main() -> int:
    profile = open_profile(sys.argv[1])
    acc = Account.from_json(json.loads(sys.argv[2]))
    pw = os.environ["SM_TEST_PASSWORD"]
    box = Outbox(profile, witness_wait=3.0)
    box.process(
        acc,
        smtp=lambda: submit_connect(
            acc.smtp_host,
            acc.smtp_port,
            security=acc.smtp_security,
            username=acc.username,
            password=pw,
            ca_file=acc.ca_file,
        ),
        imap=lambda: connect(
            acc.imap_host,
            acc.imap_port,
            security=acc.imap_security,
            username=acc.username,
            password=pw,
            ca_file=acc.ca_file,
        ),
        policy=transport_only_policy,
    )
    return 0 if all(e.state is State.DONE for e in box.entries()) else 3


if __name__ == "__main__":
    raise SystemExit(main())
