"""The ``sealmail`` command line: a thin shell over :mod:`client.services`.

Theory of operation
-------------------
Arguments are parsed with :mod:`argparse`; each command group lives in its own module
under :mod:`client.commands` (listed in ``COMMAND_MODULES``) and calls the service layer —
the same one the Qt app drives — then prints the result as text or, with ``--json``, as
one JSON document on stdout. Errors from the ``SealmailError`` tree become a one-line
``error: ...`` plus the hint on stderr and the class's exit code; anything else is a bug,
reported as such with exit code 70 (the traceback only with ``-vv``, and it never holds
message content). Results are written to ``-o`` files only after the whole operation
succeeded (atomically), so a failure leaves nothing behind.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import client
from client.errors import SealmailError

__all__ = ["COMMAND_MODULES", "build_parser", "main"]

log = logging.getLogger("sealmail")

EXIT_BUG = 70
COMMAND_MODULES = (
    "keys",
    "message",
    "envelope",
    "policy",
    "audit",
    "account",
    "sync",
    "send",
    "outbox",
    "draft",
)


class _Version(argparse.Action):
    """``--version``, reading the installed metadata only when asked (start-up time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kw.get("help", "")))

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> NoReturn:
        print(f"sealmail {client.__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sealmail",
        description="Secure mail for people who handle health data (S/MIME, OpenPGP).",
    )
    p.add_argument("--version", action=_Version, help="show the version and exit")
    p.add_argument(
        "--profile",
        default=os.environ.get("SEALMAIL_PROFILE"),
        help="profile directory (default: SEALMAIL_PROFILE or the platform's data dir)",
    )
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"client.commands.{name}").register(sub)
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
