"""Fuzzing of Sealmail's parsers (see harness.py for the engine, targets.py for targets).

Short CI run: ``pytest tests/fuzz``. Long run: ``python -m tests.fuzz.run --target all
--examples 100000`` (docs in run.py).
"""
