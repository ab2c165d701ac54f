"""Fuzz runner: ``python -m tests.fuzz.run --target all --examples 100000``.

Options
-------
``--target``      mime | cms | pgp | envelope | policy | all (comma-separated list allowed)
``--examples N``  mutated inputs per target; the unmutated seeds run first (default 1000)
``--time-limit``  seconds per input before it counts as a hang (default: per target, 5-10 s)
``--seed N``      Hypothesis seed (default: derandomized, i.e. the same inputs every run)
``--out DIR``     where crash/hang/masked inputs are written (default build/fuzz-findings)
``--replay FILE`` run one saved input (``--target`` names the target) and print the trace

Exit status is 1 when any crash or hang was found, else 0. Progress goes to stderr every
``--progress`` inputs (findings so far are saved then too, so an interrupted run keeps
them); the final table to stdout. The long run used for the issue-10
closing note is in docs/ATTACKS.md ("Fuzzing").
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from tests.fuzz.harness import REPO, Stats, fuzz, print_findings, save_findings
from tests.fuzz.targets import TARGETS


def _progress(stats: Stats) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {stats.line()}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.fuzz.run", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--target", default="all")
    ap.add_argument("--examples", type=int, default=1000)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", type=Path, default=REPO / "build" / "fuzz-findings")
    ap.add_argument("--progress", type=int, default=1000)
    ap.add_argument("--replay", type=Path, default=None)
    args = ap.parse_args(argv)

    names = list(TARGETS) if args.target == "all" else args.target.split(",")
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; choose from {sorted(TARGETS)} or all")

    if args.replay is not None:
        t = TARGETS[names[0]]
        data = args.replay.read_bytes()
        start = time.perf_counter()
        try:
            t.func(data)
            print(f"returned normally in {time.perf_counter() - start:.2f}s")
        except BaseException:
            traceback.print_exc()
            print(f"after {time.perf_counter() - start:.2f}s")
        return 0

    bad = 0
    results: list[Stats] = []
    for name in names:
        t = TARGETS[name]
        seeds = t.seeds()
        print(f"== {name}: {len(seeds)} seeds, {args.examples} inputs", file=sys.stderr)
        stats = fuzz(
            name,
            t.func,
            seeds,
            examples=args.examples,
            time_limit=args.time_limit or t.time_limit,
            seed=args.seed,
            progress=lambda st: (_progress(st), save_findings(st, args.out)),
            progress_every=args.progress,
            masked=t.masked,
        )
        results.append(stats)
        written = save_findings(stats, args.out)
        print(stats.line(), flush=True)
        print_findings(stats)
        if written:
            print(f"  findings written to {args.out}", flush=True)
        bad += stats.crashes + stats.hangs
    print("\nsummary")
    for stats in results:
        print(stats.line())
        top = ", ".join(f"{k}={v}" for k, v in stats.errors.most_common(6))
        print(f"          refusals: {top}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
