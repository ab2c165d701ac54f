"""``sealmail account``: add and list mail accounts (passwords go to the keystore)."""

from __future__ import annotations

import argparse
from typing import Any

from client.commands.common import passphrase, print_json, read_fd, session
from client.errors import UsageError

__all__ = ["register"]


def _resolve(entries: list[str]) -> dict[str, tuple[str, int]]:
    """``--resolve HOST:ADDR:PORT`` (like curl's, with the address before the port)."""
    out: dict[str, tuple[str, int]] = {}
    for e in entries:
        host, sep, rest = e.partition(":")
        addr, sep2, port = rest.rpartition(":")
        if not sep or not sep2 or not host or not addr or not port.isdigit():
            raise UsageError(f"bad --resolve {e!r}; expected HOST:ADDRESS:PORT")
        out[host.lower()] = (addr.strip("[]"), int(port))
    return out


def _auto(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """(imap setting, smtp setting, security of each) found by autoconfiguration."""
    from client.errors import TlsRequired
    from client.transport.autoconfig import AutoconfigSources, discover

    resolve = _resolve(args.resolve or [])
    probe_resolve = {(h, p): a for h, a in resolve.items() for p in (993, 465, 587)}
    found = discover(
        args.email,
        AutoconfigSources(ca_file=args.ca_file, resolve=resolve, probe_resolve=probe_resolve),
    )
    if found.weaknesses and not args.allow_insecure:
        raise TlsRequired(
            "the configuration found for "
            f"{args.email} ({found.source}) is weaker than verified TLS: "
            + "; ".join(found.weaknesses),
            hint="Give the servers yourself with --imap/--smtp, or accept it explicitly with "
            "--allow-insecure (STARTTLS is then required before the password is sent).",
        )
    # plaintext offers are used only as STARTTLS, which the transport enforces before LOGIN
    imap_sec = "starttls" if found.imap.security == "plain" else found.imap.security
    smtp_sec = "starttls" if found.smtp.security == "plain" else found.smtp.security
    if not args.json:
        print(f"found settings for {args.email} at {found.source}")
        for w in found.weaknesses:
            print(f"warning: {w}; STARTTLS will be required before the password is sent")
    return found.imap, found.smtp, imap_sec, smtp_sec


def cmd_add(args: argparse.Namespace) -> int:
    from client.transport.accounts import Account, parse_hostport

    if args.auto:
        if args.imap or args.smtp:
            raise UsageError("give either --auto or --imap/--smtp, not both")
        imap_s, smtp_s, imap_sec, smtp_sec = _auto(args)
        imap_host, imap_port, smtp_host, smtp_port = (
            imap_s.host,
            imap_s.port,
            smtp_s.host,
            smtp_s.port,
        )
        username = args.username or imap_s.username
    else:
        if not args.imap or not args.smtp:
            raise UsageError("give --imap HOST:PORT and --smtp HOST:PORT, or --auto")
        imap_default = 993 if args.security == "tls" else 143
        smtp_default = 465 if args.security == "tls" else 587
        imap_host, imap_port = parse_hostport(args.imap, default_port=imap_default)
        smtp_host, smtp_port = parse_hostport(args.smtp, default_port=smtp_default)
        imap_sec = smtp_sec = args.security
        username = args.username or args.email
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
        imap_security=imap_sec,
        smtp_host=smtp_host,
        smtp_port=smtp_port,
        smtp_security=smtp_sec,
        username=username,
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
    a.add_argument("--imap", metavar="HOST:PORT")
    a.add_argument("--smtp", metavar="HOST:PORT")
    a.add_argument(
        "--auto",
        action="store_true",
        help="find the servers from the address (autoconfig XML over HTTPS, then imap./smtp.)",
    )
    a.add_argument(
        "--allow-insecure",
        action="store_true",
        help="accept an autoconfig offer without TLS (STARTTLS is still required before login)",
    )
    a.add_argument(
        "--resolve",
        action="append",
        metavar="HOST:ADDRESS:PORT",
        help="connect to ADDRESS:PORT for HOST during --auto (TLS still checks HOST)",
    )
    a.add_argument("--username")
    a.add_argument("--password-fd", type=int, metavar="N", help="read the password from fd N")
    a.add_argument("--security", choices=["tls", "starttls"], default="tls")
    a.add_argument("--ca-file", metavar="PEM", help="trust only this CA for the servers")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=cmd_add)
    lst = acs.add_parser("list", help="list accounts")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
