"""``sealmail account``: add and list mail accounts (passwords go to the keystore)."""

from __future__ import annotations

import argparse
from typing import Any

from client.commands.common import passphrase, print_json, read_fd, session
from client.errors import UsageError

__all__ = ["register"]


def cmd_add(args: argparse.Namespace) -> int:
    from client.transport.accounts import Account, parse_hostport

    imap_default = 993 if args.security == "tls" else 143
    smtp_default = 465 if args.security == "tls" else 587
    imap_host, imap_port = parse_hostport(args.imap, default_port=imap_default)
    smtp_host, smtp_port = parse_hostport(args.smtp, default_port=smtp_default)
    if args.password_fd is not None:
        password: bytes | None = read_fd(args.password_fd)
    else:
        password = passphrase(args, f"Password for {args.email}: ", required=True)
    if not password:
        raise UsageError("an empty password was given")
    account = Account(
        email=args.email,
        imap_host=imap_host,
        imap_port=imap_port,
        imap_security=args.security,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=args.security,
        username=args.username or args.email,
        ca_file=args.ca_file,
    )
    s = session(args)
    s.account_add(account, password)
    if args.json:
        print_json(account.to_json())
    else:
        print(f"added account {account.email}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    s = session(args)
    accounts = s.account_list()
    if args.json:
        print_json([a.to_json() for a in accounts])
    else:
        for a in accounts:
            print(f"{a.email}  imap {a.imap_host}:{a.imap_port}  smtp {a.smtp_host}:{a.smtp_port}")
    return 0


def register(sub: Any) -> None:
    acc = sub.add_parser("account", help="mail accounts (IMAP and SMTP settings)")
    acs = acc.add_subparsers(dest="account_command", required=True, metavar="ACTION")
    a = acs.add_parser("add", help="add or update an account")
    a.add_argument("--email", required=True)
    a.add_argument("--imap", required=True, metavar="HOST:PORT")
    a.add_argument("--smtp", required=True, metavar="HOST:PORT")
    a.add_argument("--username")
    a.add_argument("--password-fd", type=int, metavar="N", help="read the password from fd N")
    a.add_argument("--security", choices=["tls", "starttls"], default="tls")
    a.add_argument("--ca-file", metavar="PEM", help="trust only this CA for the servers")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_add)
    lst = acs.add_parser("list", help="list accounts")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
