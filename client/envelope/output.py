"""Save opened files into the directory the user chose -- the one I/O shell here.

Every file is written to a temporary name *in the target directory* (mode 0600, fsync),
and only when all of them are written are they given their final names with ``os.link``
(which never overwrites: an existing name gets `` (1)``, `` (2)``... ). Any failure removes
every temporary and every file already renamed, so a failed save leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from client.errors import UsageError

__all__ = ["save_files"]


def _candidates(name: str) -> list[str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    suffix = f".{ext}" if ext else ""
    return [name] + [f"{stem} ({i}){suffix}" for i in range(1, 1000)]


def save_files(directory: str | os.PathLike[str], files: Sequence[tuple[str, bytes]]) -> list[Path]:
    """Write ``(name, data)`` pairs into ``directory``; all or nothing. Returns the paths."""
    target = Path(directory)
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise UsageError(f"cannot create {target}: {exc.strerror}") from exc
    temps: list[tuple[str, str]] = []
    done: list[Path] = []
    try:
        for name, data in files:
            if os.sep in name or (os.altsep and os.altsep in name) or name in {"", ".", ".."}:
                raise UsageError(f"refusing to write the file name {name!r}")
            fd, tmp = tempfile.mkstemp(prefix=".sealmail-", suffix=".part", dir=target)
            temps.append((tmp, name))
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, name in temps:
            for candidate in _candidates(name):
                final = target / candidate
                try:
                    os.link(tmp, final)
                except FileExistsError:
                    continue
                done.append(final)
                break
            else:
                raise UsageError(f"too many files named {name!r} in {target}")
    except OSError as exc:
        _cleanup(temps, done)
        raise UsageError(f"cannot write into {target}: {exc.strerror}") from exc
    except BaseException:
        _cleanup(temps, done)
        raise
    _cleanup(temps, [])
    with contextlib.suppress(OSError):
        dfd = os.open(target, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return done


def _cleanup(temps: list[tuple[str, str]], done: list[Path]) -> None:
    for tmp, _ in temps:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    for path in done:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
