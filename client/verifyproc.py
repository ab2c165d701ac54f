"""Checking OpenPGP signatures of streamed data in a child process (a shell around pysequoia).

``pysequoia.verify`` reads a whole document (``bytes=``) or a file (``file=``), and holds
the GIL while it reads: a thread of this process cannot feed it a stream. The streaming
opener (:mod:`client.crypto.streamopen`) writes the literal data into a pipe; a forked
child runs ``pysequoia.verify(file="/dev/fd/N", signature=...)`` on the other end (a
detached check: nothing is buffered) and sends back which signatures were valid. Nothing
touches the disk. fork() is only used where it is safe: a process with one thread (the
``sealmail`` command), with /dev/fd; elsewhere :meth:`ForkVerifiers.available` says no
and the message is opened in memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from typing import Any

import pysequoia

__all__ = ["ForkVerifier", "ForkVerifiers"]


class ForkVerifiers:
    """The ``verifiers`` :func:`client.crypto.streamopen.open_stream` takes."""

    def available(self) -> bool:
        """fork() is safe (one thread) and the child can open the pipe by name."""
        return hasattr(os, "fork") and threading.active_count() == 1 and os.path.isdir("/dev/fd")

    def start(self, certs: list[Any], signatures: bytes) -> ForkVerifier:
        return ForkVerifier(certs, signatures)


class ForkVerifier:
    """``pysequoia.verify`` of the literal data against the message's signature packets
    (as a detached signature: the same hash input, and nothing is buffered), in a child
    process reading a pipe while this process writes the data into it (pysequoia holds
    the GIL while it reads a file: a thread could not feed it). POSIX, single-threaded
    callers only."""

    def __init__(self, certs: list[Any], signatures: bytes) -> None:
        if not ForkVerifiers().available():
            raise OSError("fork() is not safe in this process")
        data_r, self._w = os.pipe()
        self._res_r, res_w = os.pipe()
        self._pid = os.fork()
        if self._pid == 0:  # the child: verify, report, exit (never returns)
            os.close(self._w)
            os.close(self._res_r)
            _verify_child(data_r, res_w, certs, signatures)
        os.close(data_r)
        os.close(res_w)
        self._broken = False

    def write(self, piece: bytes | memoryview) -> None:
        if self._broken:
            return
        view = memoryview(piece)
        try:
            while view:
                view = view[os.write(self._w, view) :]
        except OSError:
            self._broken = True

    def result(self) -> list[tuple[str, str]] | None:
        """(certificate, signing key) of each valid signature; None if the check failed
        to run (the child died, or the data did not all reach it)."""
        os.close(self._w)
        self._w = -1
        chunks = []
        while chunk := os.read(self._res_r, 1 << 16):
            chunks.append(chunk)
        _, status = os.waitpid(self._pid, 0)
        self._pid = 0
        if self._broken or status != 0:
            return None
        try:
            out = json.loads(b"".join(chunks))
        except ValueError:
            return None
        return [(str(c), str(k)) for c, k in out]

    def close(self) -> None:
        for fd in (self._w, self._res_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._w = self._res_r = -1
        if self._pid:
            with contextlib.suppress(OSError):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
            self._pid = 0


def _verify_child(
    data_r: int, res_w: int, certs: list[Any], signatures: bytes
) -> None:  # pragma: no cover - runs in the forked child
    code = 0
    try:
        try:
            sig = pysequoia.Sig.from_bytes(signatures)
            res = pysequoia.verify(file=f"/dev/fd/{data_r}", signature=sig, store=lambda ids: certs)
            out = [[str(v.certificate), str(v.signing_key)] for v in res.valid_sigs]
        except Exception:  # pysequoia: "no valid signatures" and friends, as in memory
            out = []
        with open(data_r, "rb", closefd=False) as rest:  # let the writer finish
            while rest.read(1 << 20):
                pass
        os.write(res_w, json.dumps(out).encode())
    except BaseException:
        code = 3
    os._exit(code)
