"""Scanner benchmark: throughput on 10 MB of mixed text, latency on a 20 KB draft.

Usage: ``python -m bench.scan [--size-mb 10] [--repeat 3] [--json FILE]``

Two corpora from :mod:`tests.helpers.phi_corpus` (deterministic): ``mail`` — realistic
correspondence (75 %), clinical notes full of numbers (20 %), identifier sentences (5 %);
``dense`` — clinical notes with one identifier sentence in ten (the worst case we know).

Each corpus is scanned by the scanner before the speed work (``before``:
:mod:`tests.helpers.scan_reference`, one combined ``re`` pass) and by the current one
(``after``: :mod:`client.policy.scan`), in the same run; the findings of both must be
identical. Figures are the best of ``--repeat`` runs, in MB/s (10^6 characters per second)
of wall-clock time and of the process's CPU time (the two differ when other work shares the
machine). The 20 KB draft is timed over 300 runs (median and p99, wall clock).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from client.policy import scan  # noqa: E402
from tests.helpers import scan_reference  # noqa: E402
from tests.helpers.phi_corpus import mail_text, mixed_text  # noqa: E402


def _best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU seconds over ``repeat`` runs."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def _key(findings: tuple[object, ...]) -> list[tuple[object, ...]]:
    return [
        (f.type, f.start, f.end, f.confidence.value, f.keyword)  # type: ignore[attr-defined]
        for f in findings
    ]


def _latency(fn: Callable[[str], object], draft: str, runs: int = 300) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn(draft)
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e3, times[min(len(times) - 1, int(len(times) * 0.99))] * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    size = int(args.size_mb * 1_000_000)
    impls = {"before": scan_reference.scan_text, "after": scan.scan_text}
    for fn in impls.values():
        fn("warm up E11.9 ICD-9 250.00 SSN 123-45-6789")  # code lists, Hyperscan database
    results: dict[str, object] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "size": size,
    }
    print(f"scanner, {size / 1e6:g} MB per corpus, best of {args.repeat}")
    print(f"{'corpus':7s} {'':7s} {'MB/s wall':>10s} {'MB/s cpu':>9s} {'findings':>9s}")
    identical = True
    for name, make in (("mail", mail_text), ("dense", mixed_text)):
        text = make(size)
        row: dict[str, object] = {}
        keys = {}
        for label, fn in impls.items():
            wall, cpu = _best(lambda f=fn, t=text: f(t), args.repeat)  # type: ignore[misc]
            found = fn(text)
            keys[label] = _key(found)
            row[label] = {
                "mb_per_s_wall": round(len(text) / wall / 1e6, 1),
                "mb_per_s_cpu": round(len(text) / cpu / 1e6, 1),
                "findings": len(found),
            }
            print(
                f"{name:7s} {label:7s} {len(text) / wall / 1e6:10.1f} {len(text) / cpu / 1e6:9.1f}"
                f" {len(found):9d}"
            )
        same = keys["before"] == keys["after"]
        identical = identical and same
        row["identical_findings"] = same
        print(f"{name:7s} findings identical before/after: {same}")
        results[name] = row
    draft = mail_text(20_000, seed=9)
    lat: dict[str, object] = {}
    for label, fn in impls.items():
        med, p99 = _latency(fn, draft)
        lat[label] = {"median": round(med, 3), "p99": round(p99, 3)}
        print(f"20 KB draft {label:6s}: median {med:.2f} ms, p99 {p99:.2f} ms")
    results["draft_20kb_ms"] = lat
    results["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
