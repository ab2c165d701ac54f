"""Helpers for the fault-injection suite: limited child processes, a cutting TCP proxy.

Theory of operation
-------------------
*Disk full* without root: the child runs with ``RLIMIT_FSIZE`` set and ``SIGXFSZ``
ignored, so every write past the limit fails in the kernel with ``EFBIG`` (what a full
disk or quota looks like to the program: a failed ``write``). ``/dev/full`` gives
``ENOSPC`` for one output file.

*Read-only profile*: ``chmod -R a-w``. Root ignores permission bits, so when the tests run
as root the child drops to the unprivileged ``nobody`` user with ``setpriv`` (the profile
is handed to that user first); the kernel then refuses every write with ``EACCES``.

*Network cut*: :class:`CuttingProxy` relays TCP between the client and a real server and
closes both sides after ``cut_after`` bytes from the client (``None`` = never), so the
link dies in the middle of an SMTP DATA or an IMAP APPEND literal. TLS runs end to end
through it (the server certificate is for 127.0.0.1, which the proxy also is).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOBODY = 65534

__all__ = [
    "CuttingProxy",
    "Run",
    "add_account",
    "assert_typed_failure",
    "fsize_limit",
    "give_to_nobody",
    "leftovers",
    "make_read_only",
    "run_cli",
]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def fsize_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn``: files may not grow past ``limit`` bytes (EFBIG, no SIGXFSZ)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # ignored signals survive exec
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def give_to_nobody(path: Path) -> None:
    """Make ``path`` (recursively) owned by ``nobody`` and every parent traversable."""
    for dirpath, _dirs, files in os.walk(path):
        os.chown(dirpath, NOBODY, NOBODY)
        for f in files:
            os.chown(os.path.join(dirpath, f), NOBODY, NOBODY)
    for parent in path.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            os.chmod(parent, mode | 0o001)


def make_read_only(path: Path) -> None:
    """``chmod -R a-w path``."""
    subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)


def cli_env(profile: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")}
    env.update(
        SEALMAIL_PROFILE=str(profile),
        SEALMAIL_PROFILE_PASSPHRASE="profile passphrase for tests",
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    env.update(extra)
    return env


def run_cli(
    args: Sequence[str],
    profile: Path,
    *,
    preexec: Callable[[], None] | None = None,
    as_nobody: bool = False,
    env: dict[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
    timeout: float = 300,
) -> Run:
    """Run ``sealmail ARGS`` in a child process (optionally limited or as ``nobody``)."""
    cmd = [sys.executable, "-m", "client.cli", *args]
    full_env = {**cli_env(profile), **(env or {})}
    if as_nobody:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise AssertionError("setpriv is missing: install the Debian package util-linux")
        cmd = [
            setpriv,
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--",
            *cmd,
        ]
        full_env["HOME"] = "/nonexistent"
    proc = subprocess.run(
        cmd,
        capture_output=True,
        env=full_env,
        cwd=REPO,
        timeout=timeout,
        preexec_fn=preexec,  # a small, fork-safe function
        pass_fds=pass_fds,
        check=False,
    )
    return Run(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def add_account(
    profile: Path, email: str, password: str, *, imap_port: int, smtp_port: int, ca_file: Path
) -> None:
    """``sealmail account add`` (implicit TLS both ways, password through a pipe)."""
    r, w = os.pipe()
    os.write(w, password.encode() + b"\n")
    os.close(w)
    try:
        res = run_cli(
            [
                "account",
                "add",
                "--email",
                email,
                "--imap",
                f"127.0.0.1:{imap_port}",
                "--smtp",
                f"127.0.0.1:{smtp_port}",
                "--security",
                "tls",
                "--ca-file",
                str(ca_file),
                "--password-fd",
                str(r),
            ],
            profile,
            pass_fds=(r,),
        )
    finally:
        os.close(r)
    assert res.returncode == 0, res.stderr


def leftovers(directory: Path) -> list[str]:
    """Temporary or partial files (``*.tmp``, ``*.part``) anywhere under ``directory``."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and (p.name.endswith((".tmp", ".part")) or p.name.startswith(".sealmail-"))
    )


def assert_typed_failure(run: Run, *words: str) -> str:
    """The CLI failed the designed way: ``error:`` + ``hint:``, non-zero, not the bug path.

    Returns the error line; each of ``words`` must be in it (case-insensitive).
    """
    assert run.returncode != 0, (run.stdout, run.stderr)
    assert run.returncode != 70, f"went down the internal-error path:\n{run.stderr}"
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("error:")]
    hints = [ln for ln in lines if ln.startswith("hint:")]
    assert errors and hints, run.stderr
    for w in words:
        assert w.lower() in errors[-1].lower(), (w, run.stderr)
    return errors[-1]


class CuttingProxy:
    """A TCP relay to ``(host, port)`` that drops the link after ``cut_after`` client bytes.

    ``cut_after`` may be changed between connections; ``None`` relays everything. Each
    accepted connection counts in ``connections``; ``cuts`` counts links it cut.
    """

    def __init__(self, host: str, port: int, cut_after: int | None = None) -> None:
        self.target = (host, port)
        self.cut_after = cut_after
        self.connections = 0
        self.cuts = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> CuttingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    def _accept(self) -> None:
        self._sock.settimeout(0.2)  # so that __exit__ does not wait for a blocked accept()
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            self.connections += 1
            server = socket.create_connection(self.target, timeout=30)
            limit = self.cut_after
            threading.Thread(target=self._pump, args=(client, server, limit), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(limit - sent, 0)])
                    self.cuts += 1
                    break
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


def big_message(sender: str, to: str, size: int, subject: str = "fault test") -> tuple[str, bytes]:
    """A plain message of about ``size`` bytes (76-character lines), and its Message-ID."""
    import uuid

    mid = f"<fault-{uuid.uuid4().hex}@example.test>"
    line = b"The quick brown fox jumps over the lazy dog; nothing protected in here at all.\r\n"
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    return mid, head + line * (size // len(line) + 1)


def outbox_state(profile: Path, mid: str) -> dict[str, object] | None:
    """This message's record from ``sealmail outbox list --json`` (None if absent)."""
    import json

    res = run_cli(["outbox", "list", "--json"], profile)
    assert res.returncode == 0, res.stderr
    found = [e for e in json.loads(res.stdout) if e["message_id"] == mid]
    return found[0] if found else None


def flush_until_done(profile: Path, mid: str, *, rounds: int = 60) -> dict[str, object]:
    """``sealmail outbox flush`` until ``mid`` is done (retries wait out their backoff)."""
    import time

    for _ in range(rounds):
        res = run_cli(["outbox", "flush"], profile)
        assert res.returncode == 0, res.stderr
        state = outbox_state(profile, mid)
        assert state is not None, "the message left the outbox without being sent"
        if state["state"] == "done":
            return state
        assert state["state"] in ("queued", "sent", "copied", "committing"), state
        time.sleep(0.5)
    raise AssertionError(f"{mid} was not delivered after {rounds} flushes: {state}")
