"""``sealmail envelope``: create password envelopes, open encrypted attachments."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from client.commands.common import now, print_json, read_fd, read_input, session, write_output
from client.errors import UsageError

__all__ = ["register"]


def _password(args: argparse.Namespace, *, required: bool) -> bytes | None:
    if args.password_fd is not None:
        return read_fd(args.password_fd)
    env = os.environ.get("SEALMAIL_PASSPHRASE")
    if env is not None:
        return env.encode("utf-8")
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass("Envelope password: ").encode("utf-8")
    if required:
        raise UsageError("a password is needed", hint="Give it with --password-fd N.")
    return None


def cmd_create(args: argparse.Namespace) -> int:
    if args.message_fd is not None:
        message = read_fd(args.message_fd).decode("utf-8", "replace")
    elif args.message is not None:
        message = read_input(args.message).decode("utf-8", "replace")
    else:
        message = ""
    password = _password(args, required=True)
    assert password is not None
    files = [(Path(f).name, read_input(f)) for f in args.files]
    created = session(args).envelope_create(
        message,
        files,
        password,
        to=args.to,
        sender=args.sender,
        subject=args.subject,
        output=args.format,
        remember=args.remember,
        now=now(),
        rng=os.urandom,
    )
    write_output(args.output, created.data)
    if args.output not in (None, "-"):
        sys.stderr.write(
            f"wrote {args.output}. Attach it to your mail and give the password to the "
            "recipient by phone or SMS, never in the same mail.\n"
        )
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    data = read_input(args.file)
    sess = session(args)
    opened = sess.envelope_open(
        data,
        password=lambda: _password(args, required=args.correspondent is None),
        filename=Path(args.file).name,
        correspondent=args.correspondent,
        now=now(),
    )
    written = [p.name for p in sess.envelope_save(opened, args.output)] if args.output else []
    if args.json:
        doc: dict[str, Any] = {
            "kind": str(opened.kind),
            "files": [
                {"name": f.name, "size": len(f.data), "sha256": hashlib.sha256(f.data).hexdigest()}
                for f in opened.files
            ],
            "message": opened.message,
        }
        if written:
            doc["written"] = written
        doc["details"] = opened.details
        print_json(doc)
        return 0
    print(f"kind: {opened.kind}")
    if opened.message is not None:
        print("message:")
        print(opened.message)
    for f in opened.files:
        print(f"file: {f.name} ({len(f.data)} bytes)")
    if args.output:
        print(f"saved into {args.output}: {', '.join(written) or '(nothing)'}")
    return 0


def cmd_password(args: argparse.Namespace) -> int:
    from client.envelope.passwords import generate

    pw = generate(os.urandom)
    if args.remember:
        session(args).envelope_remember_password(args.remember, pw.encode("utf-8"))
    if args.json:
        print_json({"password": pw})
    else:
        print(pw)
        sys.stderr.write(
            "Give this password to the recipient by phone or SMS; it is shown only once.\n"
        )
    return 0


def register(sub: Any) -> None:
    env = sub.add_parser("envelope", help="password envelopes and encrypted attachments")
    es = env.add_subparsers(dest="envelope_command", required=True, metavar="ACTION")

    cr = es.add_parser("create", help="make a password envelope (HTML) from files and a text")
    cr.add_argument("files", nargs="*", metavar="FILE")
    group = cr.add_mutually_exclusive_group()
    group.add_argument("--message-fd", type=int, metavar="N", help="read the text from fd N")
    group.add_argument("--message", metavar="TEXT_FILE", help="read the text from a file")
    cr.add_argument("--password-fd", type=int, metavar="N", help="read the password from fd N")
    cr.add_argument("--to", metavar="ADDR", help="the recipient (shown inside the envelope)")
    cr.add_argument("--from", dest="sender", metavar="ADDR", help="you (replies go here)")
    cr.add_argument("--subject", help="shown inside the envelope")
    cr.add_argument(
        "--format",
        choices=["html", "gpg", "cms"],
        default="html",
        help="html: Sealmail envelope (default); gpg: for `gpg -d`; cms: for openssl cms",
    )
    cr.add_argument("--remember", action="store_true", help="remember the password for --to")
    cr.add_argument("-o", "--output", required=True, metavar="OUT")
    cr.set_defaults(func=cmd_create)

    op = es.add_parser("open", help="open an envelope or any encrypted attachment")
    op.add_argument("file", metavar="FILE")
    op.add_argument("--password-fd", type=int, metavar="N", help="read the password from fd N")
    op.add_argument(
        "--from", dest="correspondent", metavar="ADDR", help="use the password remembered for ADDR"
    )
    op.add_argument("-o", "--output", metavar="DIR", help="save the message and files here")
    op.add_argument("--json", action="store_true")
    op.set_defaults(func=cmd_open)

    pw = es.add_parser("password", help="propose a strong, speakable password")
    pw.add_argument("--remember", metavar="ADDR", help="remember it for this recipient")
    pw.add_argument("--json", action="store_true")
    pw.set_defaults(func=cmd_password)
