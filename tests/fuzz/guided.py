"""Coverage-guided fuzzing with atheris (libFuzzer) of the same six targets.

Usage::

    python -m tests.fuzz.guided --target mime --runs 100000 [--time-limit 10]
        [--max-len 1048576] [--out DIR] [--jobs-dir DIR]

Theory of operation
-------------------
:mod:`tests.fuzz.run` mutates seeds blindly (Hypothesis draws mutation programs; no
feedback). This runner closes the loop: the project's modules (``client``, ``keystore``)
are imported under ``atheris.instrument_imports``, so every branch they take is reported
to libFuzzer, which keeps an input in its working corpus whenever it reaches new code
and mutates from those. The seeds are the same as the mutation harness's
(../shared/corpus files and generated objects, :mod:`tests.fuzz.targets`).

The contract per input is the harness's: returning, or raising a ``SealmailError``, is
fine (``mime`` also allows the exceptions its production boundary turns into
``MalformedMessage``). Anything else propagates to libFuzzer, which writes the input to
``--out`` (``crash-<sha1>``) and stops with a non-zero exit; an input running longer than
``--time-limit`` seconds is a ``timeout-<sha1>`` and also fails the run. At the end
libFuzzer prints its statistics (``Done N runs in S second(s)``, edges ``cov:`` and
features ``ft:``); the runner adds one summary line ``guided: target=... runs=...``.

Each target runs in its own process (libFuzzer owns the process and exits it).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _write_seeds(seeds: list[bytes], corpus: Path, max_len: int) -> int:
    corpus.mkdir(parents=True, exist_ok=True)
    n = 0
    for seed in seeds:
        data = seed[:max_len]
        (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)  # noqa: S324 - a name
        n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.fuzz.guided", description=__doc__.split("\n")[0]
    )
    names = ("mime", "cms", "pgp", "envelope", "policy", "protect", "open")
    ap.add_argument("--target", required=True, choices=sorted(names))
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--time-limit", type=int, default=None, help="seconds per input")
    ap.add_argument("--max-len", type=int, default=1 << 20)
    ap.add_argument("--out", type=Path, default=REPO / "build" / "fuzz-guided")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed")
    args = ap.parse_args(argv)

    import atheris

    # Instrument the project's code as it is imported: nothing of it may be loaded before.
    assert not any(m == "client" or m.startswith("client.") for m in sys.modules)
    with atheris.instrument_imports(include=["client", "keystore"]):
        from client.errors import SealmailError
        from tests.fuzz.targets import TARGETS

        target = TARGETS[args.target]
        seeds = target.seeds()
        allowed: tuple[type[BaseException], ...] = (SealmailError, *target.masked)
        for seed in seeds[:50]:  # loads (and instruments) the lazily imported modules too
            try:
                target.func(seed)
            except allowed:
                pass

    def one_input(data: bytes) -> None:
        try:
            target.func(data)
        except allowed:
            pass

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"guided-{args.target}-"))
    corpus = work / "corpus"
    n_seeds = _write_seeds(seeds, corpus, args.max_len)
    limit = args.time_limit or max(int(target.time_limit), 5)
    libfuzzer = [
        sys.argv[0],
        f"-runs={args.runs}",
        f"-timeout={limit}",
        f"-max_len={args.max_len}",
        f"-seed={args.seed}",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
        f"-artifact_prefix={args.out}{os.sep}",
        str(corpus),
    ]
    print(f"guided: target={args.target} seeds={n_seeds} runs={args.runs} "
          f"timeout={limit}s corpus={corpus}", file=sys.stderr, flush=True)  # fmt: skip
    atheris.Setup(libfuzzer, one_input)
    atheris.Fuzz()  # exits the process: 0 when all runs passed
    return 0  # pragma: no cover - atheris.Fuzz() does not return


if __name__ == "__main__":
    raise SystemExit(main())
