"""The short CI run of the coverage-guided fuzzer (atheris/libFuzzer), every target.

Each target runs in its own process (libFuzzer owns it) for a few thousand inputs with a
fixed libFuzzer seed. The run must end cleanly (no crash, no timeout: exit status 0 and
"Done N runs" for at least the runs asked), and the coverage feedback must be working:
libFuzzer must have added inputs to its corpus because they reached new code
(``new_units_added`` > 0), and the instrumented edge count must be that of the project's
code, not of a stub. The long run (100,000 inputs per target) is documented in
docs/ATTACKS.md.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNS = {"mime": 3000, "cms": 3000, "pgp": 3000, "envelope": 2000, "policy": 2000, "protect": 2000,
        "open": 600}  # fmt: skip
# edges seen by the end of a short run are far above these (mime ~1,000, policy ~15):
# a run whose instrumentation silently failed reports a handful
MIN_COVERAGE = {"mime": 500, "cms": 200, "pgp": 200, "envelope": 500, "policy": 5, "protect": 100,
                "open": 100}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RUNS))
def test_guided_fuzz_short(name: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.guided", "--target", name, "--runs", str(RUNS[name]),
         "--time-limit", "60", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    log = proc.stderr
    tail = "\n".join(log.splitlines()[-60:])
    assert proc.returncode == 0, f"the guided fuzzer found something:\n{tail}"
    # libFuzzer may overshoot -runs by one (an input it runs twice, e.g. when it reduces a
    # corpus entry, is counted twice): the run is whole if it did at least as many
    done = re.search(r"\bDone (\d+) runs", log)
    assert done is not None and int(done.group(1)) >= RUNS[name], tail
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("timeout-*"))
    added = int(re.search(r"stat::new_units_added:\s+(\d+)", log).group(1))  # type: ignore[union-attr]
    assert added > 0, "no input reached new code: coverage feedback is not working"
    cov = max(int(c) for c in re.findall(r"\bcov: (\d+)", log))
    assert cov >= MIN_COVERAGE[name], f"only {cov} edges instrumented"
