"""The ``sealmail`` command line: a thin shell over :mod:`client.services`.

Theory of operation
-------------------
Arguments are parsed with :mod:`argparse`; every sub-command builds a request for the
service layer (the same one the Qt app drives), and prints the result as text or, with
``--json``, as one JSON document on stdout. Errors from the ``SealmailError`` tree become a
one-line ``error: ...`` plus the hint on stderr and the class's exit code; anything else is
a bug, reported as such with exit code 70. Results are written to ``-o`` files only after
the whole operation succeeded (atomically), so a failure leaves nothing behind.

Passphrases never come from argv: ``--passphrase-fd N``, ``SEALMAIL_PASSPHRASE``, or an
interactive prompt. The profile passphrase (used only where no OS keyring is usable) comes
from ``SEALMAIL_PROFILE_PASSPHRASE`` or a prompt.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from client import __version__
from client.errors import SealmailError, UsageError

__all__ = ["main"]

log = logging.getLogger("sealmail")

EXIT_BUG = 70


def _read_fd(fd: int) -> bytes:
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UsageError(f"cannot read the passphrase from file descriptor {fd}: {exc}") from exc
    return data.rstrip(b"\r\n")


def _passphrase(args: argparse.Namespace, prompt: str, *, required: bool) -> bytes | None:
    fd = getattr(args, "passphrase_fd", None)
    if fd is not None:
        return _read_fd(fd)
    env = os.environ.get("SEALMAIL_PASSPHRASE")
    if env is not None:
        return env.encode("utf-8")
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt).encode("utf-8")
    if required:
        raise UsageError(
            "a passphrase is needed",
            hint="Give it with --passphrase-fd N or SEALMAIL_PASSPHRASE.",
        )
    return None


def _profile_passphrase() -> bytes:
    env = os.environ.get("SEALMAIL_PROFILE_PASSPHRASE")
    if env is not None:
        return env.encode("utf-8")
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass("Sealmail profile passphrase: ").encode("utf-8")
    from client.errors import SecretStoreUnavailable

    raise SecretStoreUnavailable("no OS keyring is usable and no profile passphrase was given")


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def _write_output(path: str | None, data: bytes) -> None:
    if path is None or path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    from keystore.profile import atomic_write

    try:
        atomic_write(Path(path), data, mode=0o600)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from exc


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def _now() -> datetime:
    return datetime.now(UTC)


def _session(args: argparse.Namespace) -> Any:
    from client.services import Session

    return Session.open(args.profile, profile_passphrase=_profile_passphrase)


# ---------------------------------------------------------------------------- keys


def cmd_keys_generate(args: argparse.Namespace) -> int:
    s = _session(args)
    info = s.keys_generate(args.email, name=args.name, kind=args.kind, now=_now())
    if args.json:
        _print_json({"fingerprint": info.fingerprint})
    else:
        print(f"generated {info.kind} key {info.fingerprint} for {', '.join(info.emails)}")
    return 0


def cmd_keys_import(args: argparse.Namespace) -> int:
    data = _read_input(args.file)
    s = _session(args)

    def ask() -> bytes | None:
        return _passphrase(args, f"Passphrase for {args.file}: ", required=False)

    infos = s.keys_import(data, passphrase=ask, trust=args.trust, now=_now())
    if args.json:
        _print_json([s.key_json(i) for i in infos])
    else:
        for i in infos:
            print(f"imported {i.kind} {i.fingerprint} {', '.join(i.emails)}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    s = _session(args)
    infos = s.keys_list()
    if args.json:
        _print_json([s.key_json(i) for i in infos])
    else:
        for i in infos:
            flag = "sec" if i.secret else "pub"
            exp = i.expires.date().isoformat() if i.expires else "never"
            print(f"{flag} {i.kind:4} {i.fingerprint}  {', '.join(i.emails)}  expires {exp}")
    return 0


def cmd_keys_export(args: argparse.Namespace) -> int:
    s = _session(args)
    _write_output(args.output, s.keys_export(args.fingerprint))
    return 0


# ------------------------------------------------------------------------- message


def cmd_message_encrypt(args: argparse.Namespace) -> int:
    raw = _read_input(args.input)
    s = _session(args)
    out = s.message_encrypt(
        raw,
        to=args.to,
        sender=args.sender,
        method=args.method,
        sign=args.sign,
        now=_now(),
        rng=os.urandom,
    )
    _write_output(args.output, out)
    return 0


def cmd_message_sign(args: argparse.Namespace) -> int:
    raw = _read_input(args.input)
    s = _session(args)
    out = s.message_sign(raw, sender=args.sender, method=args.method, now=_now(), rng=os.urandom)
    _write_output(args.output, out)
    return 0


def cmd_message_decrypt(args: argparse.Namespace) -> int:
    if args.json and (args.output is None or args.output == "-"):
        raise UsageError("--json prints the report on stdout, so -o OUT is required")
    raw = _read_input(args.input)
    s = _session(args)
    opened = s.message_open(raw, now=_now(), require="encrypted")
    _write_output(args.output, opened.message)
    if args.json:
        _print_json(opened.report.to_json())
    return 0


def cmd_message_verify(args: argparse.Namespace) -> int:
    raw = _read_input(args.input)
    s = _session(args)
    opened = s.message_open(raw, now=_now(), require="signed")
    if args.json:
        _print_json(opened.report.to_json())
    else:
        for sig in opened.report.signatures:
            print(f"{sig.status}: {sig.signer or '?'} {sig.fingerprint or ''} (part {sig.part})")
    return 0 if opened.report.all_signatures_good else 8


# ---------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sealmail",
        description="Secure mail for people who handle health data (S/MIME, OpenPGP).",
    )
    p.add_argument("--version", action="version", version=f"sealmail {__version__}")
    p.add_argument(
        "--profile",
        default=os.environ.get("SEALMAIL_PROFILE"),
        help="profile directory (default: SEALMAIL_PROFILE or the platform's data dir)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def passphrase_opt(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--passphrase-fd",
            type=int,
            metavar="N",
            help="read a passphrase from file descriptor N (else SEALMAIL_PASSPHRASE or a prompt)",
        )

    keys = sub.add_parser("keys", help="manage keys and certificates")
    ks = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    g = ks.add_parser(
        "generate", help="generate an OpenPGP key or a self-signed S/MIME certificate"
    )
    g.add_argument("--email", required=True)
    g.add_argument("--name")
    g.add_argument("--kind", choices=["pgp", "smime"], required=True)
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_keys_generate)
    i = ks.add_parser("import", help="import OpenPGP keys, certificates or PKCS#12 files")
    i.add_argument("file")
    i.add_argument("--trust", action="store_true", help="mark a CA certificate as a trust anchor")
    i.add_argument("--json", action="store_true")
    passphrase_opt(i)
    i.set_defaults(func=cmd_keys_import)
    lst = ks.add_parser("list", help="list keys and certificates")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_keys_list)
    e = ks.add_parser("export", help="export a public key or certificate")
    e.add_argument("fingerprint")
    e.add_argument("-o", "--output")
    e.set_defaults(func=cmd_keys_export)

    msg = sub.add_parser("message", help="protect and open messages")
    ms = msg.add_subparsers(dest="message_command", required=True, metavar="ACTION")
    enc = ms.add_parser("encrypt", help="encrypt (and optionally sign) an RFC 5322 message")
    enc.add_argument("input", metavar="IN")
    enc.add_argument("--to", action="append", required=True, metavar="ADDR")
    enc.add_argument("--from", dest="sender", metavar="ADDR")
    enc.add_argument("--method", choices=["auto", "pgp", "smime"], default="auto")
    enc.add_argument("--sign", action="store_true")
    enc.add_argument("-o", "--output")
    enc.set_defaults(func=cmd_message_encrypt)
    sg = ms.add_parser("sign", help="sign an RFC 5322 message")
    sg.add_argument("input", metavar="IN")
    sg.add_argument("--from", dest="sender", required=True, metavar="ADDR")
    sg.add_argument("--method", choices=["pgp", "smime"], default="pgp")
    sg.add_argument("-o", "--output")
    sg.set_defaults(func=cmd_message_sign)
    dec = ms.add_parser("decrypt", help="decrypt a message and verify its inner signatures")
    dec.add_argument("input", metavar="IN")
    dec.add_argument("-o", "--output")
    dec.add_argument("--json", action="store_true")
    dec.set_defaults(func=cmd_message_decrypt)
    ver = ms.add_parser("verify", help="verify a signed message")
    ver.add_argument("input", metavar="IN")
    ver.add_argument("--json", action="store_true")
    ver.set_defaults(func=cmd_message_verify)
    return p


def _fail(exc: SealmailError) -> NoReturn:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    sys.stderr.write(f"error: {first}\nhint: {exc.hint}\n")
    raise SystemExit(exc.exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SealmailError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except Exception:
        log.debug("unexpected error", exc_info=True)
        sys.stderr.write(
            "error: an unexpected internal error occurred (a bug in Sealmail)\n"
            "hint: run again with -vv and report the log (it contains no message content)\n"
        )
        return EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
