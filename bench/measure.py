"""Run one command and report its wall time and peak RSS, measured from a small process.

Usage: ``python -S -m bench.measure -- CMD ARGS...`` prints ``seconds maxrss_kib``.

A child forked from a large process inherits that process's RSS high-water mark
(``ru_maxrss`` survives ``exec``), so the benchmark driver, which holds the payload, cannot
measure its children directly. This tiny process forks them instead.
"""

from __future__ import annotations

import os
import sys
import time

__all__ = ["main"]


def main() -> int:
    argv = sys.argv[sys.argv.index("--") + 1 :]
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.execvp(argv[0], argv)  # noqa: S606
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - t0
    sys.stderr.write(f"@@measure {elapsed:.6f} {usage.ru_maxrss}\n")
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    raise SystemExit(main())
