"""Helpers every CLI command uses: passphrases, input and output, JSON, the session.

Passphrases never come from argv: ``--passphrase-fd N``, ``SEALMAIL_PASSPHRASE``, or an
interactive prompt. The profile passphrase (used only where no OS keyring is usable) comes
from ``SEALMAIL_PROFILE_PASSPHRASE`` or a prompt. Output files are written atomically
(mode 0600) only after the whole operation succeeded.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from client.errors import SecretStoreUnavailable, UsageError

if TYPE_CHECKING:
    from client.services import Session

__all__ = [
    "add_passphrase_option",
    "file_pieces",
    "now",
    "passphrase",
    "print_json",
    "profile_passphrase",
    "read_fd",
    "read_input",
    "session",
    "write_output",
]


def read_fd(fd: int) -> bytes:
    """Everything readable from file descriptor ``fd``, without the final newline."""
    try:
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read()
    except OSError as exc:
        raise UsageError(f"cannot read from file descriptor {fd}: {exc.strerror}") from exc
    return data.rstrip(b"\r\n")


def add_passphrase_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-fd",
        type=int,
        metavar="N",
        help="read a passphrase from file descriptor N (else SEALMAIL_PASSPHRASE or a prompt)",
    )


def passphrase(args: argparse.Namespace, prompt: str, *, required: bool) -> bytes | None:
    fd = getattr(args, "passphrase_fd", None)
    if fd is not None:
        return read_fd(fd)
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


def profile_passphrase() -> bytes:
    env = os.environ.get("SEALMAIL_PROFILE_PASSPHRASE")
    if env is not None:
        return env.encode("utf-8")
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass("Sealmail profile passphrase: ").encode("utf-8")
    raise SecretStoreUnavailable("no OS keyring is usable and no profile passphrase was given")


def read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def file_pieces(path: str, size: int = 1 << 20) -> Iterator[bytes]:
    """The file at ``path`` in ``size``-octet reads (a new pass on every call)."""
    try:
        with open(path, "rb") as fh:
            while piece := fh.read(size):
                yield piece
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc


def write_output(path: str | None, data: bytes | Iterable[bytes]) -> None:
    from keystore.profile import atomic_write
    from keystore.storage import storage_error

    if path is None or path == "-":
        try:
            for piece in [data] if isinstance(data, bytes) else data:
                sys.stdout.buffer.write(piece)
            sys.stdout.buffer.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:  # e.g. stdout is a full disk
            raise storage_error(exc, "standard output") from exc
        return
    atomic_write(Path(path), data, mode=0o600)  # StorageError when full or read-only


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def now() -> datetime:
    return datetime.now(UTC)


def session(args: argparse.Namespace) -> Session:
    from client.services import Session

    return Session.open(args.profile, profile_passphrase=profile_passphrase)
