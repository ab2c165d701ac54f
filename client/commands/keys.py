"""``sealmail keys``: generate, import, list, export, revoke, expire, uid, gnupg, delete,
discover, status.

Also ``export-identity``/``import-identity`` (all own secret keys and certificates in one
passphrase-protected file, see :mod:`keystore.bundle`). Passphrases come from
``--passphrase-fd``, ``SEALMAIL_PASSPHRASE`` or a prompt, never argv.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
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


def cmd_revoke(args: argparse.Namespace) -> int:
    s = session(args)
    revocation = s.keys_revoke(args.fingerprint)
    if args.output:
        write_output(args.output, revocation)
    info = s.store.get(args.fingerprint)
    if args.json:
        print_json({**s.key_json(info), "revocation": revocation.decode("ascii")})
    elif not args.output:
        write_output(None, revocation)
    else:
        print(f"revoked {info.fingerprint}; revocation certificate in {args.output}")
    return 0


def cmd_expire(args: argparse.Namespace) -> int:
    s = session(args)
    when = None if args.never else now() + timedelta(days=args.days)
    info = s.keys_expire(args.fingerprint, when, now=now())
    if args.json:
        print_json(s.key_json(info))
    else:
        exp = info.expires.isoformat() if info.expires else "never"
        print(f"{info.fingerprint} expires {exp}")
    return 0


def cmd_uid(args: argparse.Namespace) -> int:
    s = session(args)
    if args.uid_command == "list":
        uids = s.keys_uid_list(args.fingerprint, now=now())
        if args.json:
            print_json([u.to_json() for u in uids])
        else:
            for u in uids:
                state = "valid" if u.valid else f"invalid: {u.reason}"
                print(f"uid {u.user_id}  ({state})")
        return 0
    if args.uid_command == "add":
        info = s.keys_uid_add(args.fingerprint, args.uid, now=now())
        done = "added"
    else:
        info = s.keys_uid_revoke(args.fingerprint, args.uid)
        done = "revoked"
    if args.json:
        print_json(s.key_json(info))
    else:
        print(f"{done} user id {args.uid!r} on {info.fingerprint}")
    return 0


def cmd_gnupg(args: argparse.Namespace) -> int:
    s = session(args)
    state = s.keys_gnupg(args.home, off=args.off)
    if args.json:
        print_json(state)
    elif state["gnupg_home"]:
        print(
            f"GnuPG backend on: {state['gnupg_home']} "
            f"({state['keys']} keys, {state['secret_keys']} secret)"
        )
    else:
        print("GnuPG backend off")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    s = session(args)
    info = s.keys_delete(args.fingerprint, secret=args.secret)
    if args.json:
        print_json({"deleted": info.fingerprint})
    else:
        print(f"deleted {info.kind} {info.fingerprint}")
    return 0


def cmd_discover(args: argparse.Namespace) -> int:
    s = session(args)
    res = s.keys_discover(
        args.address, now=now(), refresh=args.refresh, ca_file=args.ca_file, timeout=args.timeout
    )
    if args.json:
        print_json(res.to_json())
    else:
        cached = " (cached)" if res.from_cache else ""
        for fpr in res.fingerprints:
            print(f"discovered pgp {fpr} for {res.email} via WKD{cached}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    s = session(args)
    st = s.keys_status(args.address, now=now())
    if args.json:
        print_json(st.to_json())
        return 0
    for m in st.methods:
        how = "confirmed" if m.confirmed else m.origin
        print(f"{st.email}: {m.method} {m.fingerprint} ({how})")
    for r in st.reasons:
        print(f"{st.email}: {r}")
    if st.changed_key:
        print(f"{st.email}: WARNING the key changed (was {st.changed_from})")
    return 0


def cmd_export_identity(args: argparse.Namespace) -> int:
    s = session(args)
    secret = passphrase(args, "Passphrase for the identity file: ", required=True)
    assert secret is not None
    data = s.keys_export_identity(secret, now=now())
    write_output(args.output, data)
    return 0


def cmd_import_identity(args: argparse.Namespace) -> int:
    data = read_input(args.file)
    s = session(args)
    secret = passphrase(args, f"Passphrase for {args.file}: ", required=True)
    assert secret is not None
    infos = s.keys_import_identity(data, secret)
    if args.json:
        print_json([s.key_json(i) for i in infos])
    else:
        for i in infos:
            print(f"imported {i.kind} {i.fingerprint} {', '.join(i.emails)}")
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
    r = ks.add_parser("revoke", help="revoke an own OpenPGP key (prints the revocation)")
    r.add_argument("fingerprint")
    r.add_argument("-o", "--output", help="write the revocation certificate here")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_revoke)
    x = ks.add_parser("expire", help="set or change an own OpenPGP key's expiration")
    x.add_argument("fingerprint")
    when = x.add_mutually_exclusive_group(required=True)
    when.add_argument("--in", dest="days", type=int, metavar="DAYS", help="expire in DAYS days")
    when.add_argument("--never", action="store_true", help="remove the expiration")
    x.add_argument("--json", action="store_true")
    x.set_defaults(func=cmd_expire)
    u = ks.add_parser("uid", help="add, revoke or list the user ids of an own OpenPGP key")
    us = u.add_subparsers(dest="uid_command", required=True, metavar="ACTION")
    for action, text in (
        ("add", "bind a new user id, e.g. --uid 'Name <addr>'"),
        ("revoke", "revoke a user id (its address no longer maps to the key)"),
        ("list", "each user id and whether it is valid now"),
    ):
        ua = us.add_parser(action, help=text)
        ua.add_argument("fingerprint")
        if action != "list":
            ua.add_argument("--uid", required=True, help="the whole user id: 'Name <addr>'")
        ua.add_argument("--json", action="store_true")
        ua.set_defaults(func=cmd_uid)
    gp = ks.add_parser("gnupg", help="use the keys of a GnuPG home (python-gnupg, gpg-agent)")
    gsw = gp.add_mutually_exclusive_group()
    gsw.add_argument("--home", metavar="DIR", help="enable: use the keys of this GnuPG home")
    gsw.add_argument("--off", action="store_true", help="disable the GnuPG backend")
    gp.add_argument("--json", action="store_true")
    gp.set_defaults(func=cmd_gnupg)
    d = ks.add_parser("delete", help="delete a key or certificate")
    d.add_argument("fingerprint")
    d.add_argument("--secret", action="store_true", help="allow deleting an own secret key")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_delete)
    disc = ks.add_parser("discover", help="look up an OpenPGP key (Web Key Directory, cached)")
    disc.add_argument("address")
    disc.add_argument("--refresh", action="store_true", help="ignore the cache")
    disc.add_argument("--ca-file", help="trust only this CA file (default: the system store)")
    disc.add_argument("--timeout", type=float, help="seconds per network step (default 10)")
    disc.add_argument("--json", action="store_true")
    disc.set_defaults(func=cmd_discover)
    st = ks.add_parser("status", help="how mail to an address can be protected")
    st.add_argument("address")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    ei = ks.add_parser("export-identity", help="export all own secret keys, passphrase-protected")
    ei.add_argument("-o", "--output", required=True)
    add_passphrase_option(ei)
    ei.set_defaults(func=cmd_export_identity)
    ii = ks.add_parser("import-identity", help="import an identity file from export-identity")
    ii.add_argument("file")
    ii.add_argument("--json", action="store_true")
    add_passphrase_option(ii)
    ii.set_defaults(func=cmd_import_identity)
