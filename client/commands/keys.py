"""``sealmail keys``: generate, import, list and export keys and certificates."""

from __future__ import annotations

import argparse
from typing import Any

from client.commands.common import (
    add_passphrase_option,
    now,
    passphrase,
    print_json,
    read_input,
    session,
    write_output,
)

__all__ = ["register"]


def cmd_generate(args: argparse.Namespace) -> int:
    s = session(args)
    info = s.keys_generate(args.email, name=args.name, kind=args.kind, now=now())
    if args.json:
        print_json({"fingerprint": info.fingerprint})
    else:
        print(f"generated {info.kind} key {info.fingerprint} for {', '.join(info.emails)}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    data = read_input(args.file)
    s = session(args)

    def ask() -> bytes | None:
        return passphrase(args, f"Passphrase for {args.file}: ", required=False)

    infos = s.keys_import(data, passphrase=ask, trust=args.trust, now=now())
    if args.json:
        print_json([s.key_json(i) for i in infos])
    else:
        for i in infos:
            print(f"imported {i.kind} {i.fingerprint} {', '.join(i.emails)}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    s = session(args)
    infos = s.keys_list()
    if args.json:
        print_json([s.key_json(i) for i in infos])
    else:
        for i in infos:
            flag = "sec" if i.secret else "pub"
            exp = i.expires.date().isoformat() if i.expires else "never"
            print(f"{flag} {i.kind:4} {i.fingerprint}  {', '.join(i.emails)}  expires {exp}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    s = session(args)
    write_output(args.output, s.keys_export(args.fingerprint))
    return 0


def register(sub: Any) -> None:
    keys = sub.add_parser("keys", help="manage keys and certificates")
    ks = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    g = ks.add_parser(
        "generate", help="generate an OpenPGP key or a self-signed S/MIME certificate"
    )
    g.add_argument("--email", required=True)
    g.add_argument("--name")
    g.add_argument("--kind", choices=["pgp", "smime"], required=True)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_generate)
    i = ks.add_parser("import", help="import OpenPGP keys, certificates or PKCS#12 files")
    i.add_argument("file")
    i.add_argument("--trust", action="store_true", help="mark a CA certificate as a trust anchor")
    i.add_argument("--json", action="store_true")
    add_passphrase_option(i)
    i.set_defaults(func=cmd_import)
    lst = ks.add_parser("list", help="list keys and certificates")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    e = ks.add_parser("export", help="export a public key or certificate")
    e.add_argument("fingerprint")
    e.add_argument("-o", "--output")
    e.set_defaults(func=cmd_export)
