"""docs/ATTACKS.md's table of attack cases is the output of tests/vectors/make_attack_table.py."""

from __future__ import annotations

from tests.vectors import make_attack_table


def test_attack_table_is_current() -> None:
    assert make_attack_table.main(["--check"]) == 0, (
        "run: python -m tests.vectors.make_attack_table --write"
    )


def test_no_attack_is_shown_as_a_good_signature_from_the_manager() -> None:
    for _, cls, path, v in make_attack_table.rows():
        if cls.startswith("control"):
            continue
        for status, signer, part in v.sigs:
            assert not (
                status == "good" and part == "message" and signer == "manager@bigcorporation.de"
            ), path
