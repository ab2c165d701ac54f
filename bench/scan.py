"""Scanner benchmark: throughput on 10 MB of mixed text, latency on a 20 KB draft.

Usage: ``python -m bench.scan [--size-mb 10] [--repeat 3] [--json FILE]``

Two corpora from :mod:`tests.helpers.phi_corpus` (deterministic): ``mail`` — realistic
correspondence (75 %), clinical notes full of numbers (20 %), identifier sentences (5 %);
``dense`` — clinical notes with one identifier sentence in ten (the worst case we know).
Reports the best of ``--repeat`` runs (MB/s = 10^6 characters per second), the candidate
regex pass alone, and the latency (median and p95 over 200 runs) of a 20 KB draft.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from client.policy import scan  # noqa: E402
from tests.helpers.phi_corpus import mail_text, mixed_text  # noqa: E402


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args(argv)
    size = int(args.size_mb * 1_000_000)
    scan.scan_text("warm up E11.9 ICD-9 250.00")  # load the code lists once
    results: dict[str, object] = {"python": platform.python_version(), "size": size}
    for name, make in (("mail", mail_text), ("dense", mixed_text)):
        text = make(size)
        full = _best(lambda t=text: scan.scan_text(t), args.repeat)
        regex = _best(lambda t=text: sum(1 for _ in scan._CANDIDATES.finditer(t)), args.repeat)
        findings = len(scan.scan_text(text))
        results[name] = {
            "mb_per_s": round(len(text) / full / 1e6, 1),
            "candidate_regex_mb_per_s": round(len(text) / regex / 1e6, 1),
            "findings": findings,
        }
        print(
            f"{name:6s} {len(text) / full / 1e6:7.1f} MB/s  "
            f"(candidate pass alone {len(text) / regex / 1e6:.1f} MB/s, {findings} findings)"
        )
    draft = mail_text(20_000, seed=9)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        scan.scan_text(draft)
        times.append(time.perf_counter() - t0)
    times.sort()
    med, p95 = statistics.median(times) * 1e3, times[int(len(times) * 0.95)] * 1e3
    results["draft_20kb_ms"] = {"median": round(med, 3), "p95": round(p95, 3)}
    print(f"20 KB draft: median {med:.2f} ms, p95 {p95:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
