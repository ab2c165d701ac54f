"""The short CI fuzz run: a few hundred mutated inputs per target, 0 crashes, 0 hangs.

The long run is ``python -m tests.fuzz.run --target all --examples 100000`` (see run.py);
its figures are in docs/ATTACKS.md. Inputs are derandomized (the same every run), so a
failure here reproduces; the offending input is printed with its traceback.
"""

from __future__ import annotations

import pytest

from tests.fuzz.harness import fuzz
from tests.fuzz.targets import TARGETS

# mutated inputs per target (the unmutated seeds run too); total well under 60 s on CI
SHORT = {"mime": 300, "cms": 300, "pgp": 300, "envelope": 150, "policy": 200, "protect": 200,
         "open": 100}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_short(name: str) -> None:
    t = TARGETS[name]
    # A generous per-input limit here: CI machines are shared and a 5 s limit flagged a
    # loaded machine, not a loop; the long run (tests.fuzz.run) keeps the strict limit.
    stats = fuzz(
        name,
        t.func,
        t.seeds(),
        examples=SHORT[name],
        time_limit=max(t.time_limit, 30.0),
        masked=t.masked,
    )
    bad = [f for f in stats.findings.values() if f.kind in {"crash", "hang"}]
    assert not bad, "\n\n".join(f"{f.key}\ninput[:200]={f.data[:200]!r}\n{f.trace}" for f in bad)
    assert stats.inputs >= SHORT[name]
