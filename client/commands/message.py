"""``sealmail message``: encrypt, sign, decrypt and verify RFC 5322 messages."""

from __future__ import annotations

import argparse
import os
from typing import Any

from client.commands.common import (
    file_pieces,
    now,
    print_json,
    read_input,
    session,
    write_output,
)
from client.errors import UsageError

__all__ = ["register"]

EXIT_UNVERIFIED = 8


def cmd_encrypt(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "to": args.to,
        "sender": args.sender,
        "method": args.method,
        "sign": args.sign,
        "now": now(),
        "rng": os.urandom,
    }
    if args.input != "-":  # a file can be read twice: stream it
        pieces = session(args).message_encrypt_stream(lambda: file_pieces(args.input), **options)
        write_output(args.output, pieces)
        return 0
    write_output(args.output, session(args).message_encrypt(read_input(args.input), **options))
    return 0


def cmd_sign(args: argparse.Namespace) -> int:
    raw = read_input(args.input)
    out = session(args).message_sign(
        raw, sender=args.sender, method=args.method, now=now(), rng=os.urandom
    )
    write_output(args.output, out)
    return 0


def cmd_decrypt(args: argparse.Namespace) -> int:
    if args.json and (args.output is None or args.output == "-"):
        raise UsageError("--json prints the report on stdout, so -o OUT is required")
    report = None
    if args.input != "-" and args.output not in (None, "-"):
        # a file can be read three times, and the output is written atomically: stream
        streamed = session(args).message_open_stream(lambda: file_pieces(args.input), now=now())
        if streamed is not None:
            write_output(args.output, streamed.pieces)
            report = streamed.report()
    if report is None:
        raw = read_input(args.input)
        opened = session(args).message_open(raw, now=now(), require="encrypted")
        write_output(args.output, opened.message)
        report = opened.report
    if args.json:
        print_json(report.to_json())
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    raw = read_input(args.input)
    opened = session(args).message_open(raw, now=now(), require="signed")
    if args.json:
        print_json(opened.report.to_json())
    else:
        for sig in opened.report.signatures:
            print(f"{sig.status}: {sig.signer or '?'} {sig.fingerprint or ''} (part {sig.part})")
    return 0 if opened.report.all_signatures_good else EXIT_UNVERIFIED


def register(sub: Any) -> None:
    msg = sub.add_parser("message", help="protect and open messages")
    ms = msg.add_subparsers(dest="message_command", required=True, metavar="ACTION")
    enc = ms.add_parser("encrypt", help="encrypt (and optionally sign) an RFC 5322 message")
    enc.add_argument("input", metavar="IN")
    enc.add_argument("--to", action="append", required=True, metavar="ADDR")
    enc.add_argument("--from", dest="sender", metavar="ADDR")
    enc.add_argument("--method", choices=["auto", "pgp", "smime"], default="auto")
    enc.add_argument("--sign", action="store_true")
    enc.add_argument("-o", "--output")
    enc.set_defaults(func=cmd_encrypt)
    sg = ms.add_parser("sign", help="sign an RFC 5322 message")
    sg.add_argument("input", metavar="IN")
    sg.add_argument("--from", dest="sender", required=True, metavar="ADDR")
    sg.add_argument("--method", choices=["pgp", "smime"], default="pgp")
    sg.add_argument("-o", "--output")
    sg.set_defaults(func=cmd_sign)
    dec = ms.add_parser("decrypt", help="decrypt a message and verify its inner signatures")
    dec.add_argument("input", metavar="IN")
    dec.add_argument("-o", "--output")
    dec.add_argument("--json", action="store_true")
    dec.set_defaults(func=cmd_decrypt)
    ver = ms.add_parser("verify", help="verify a signed message")
    ver.add_argument("input", metavar="IN")
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_verify)
