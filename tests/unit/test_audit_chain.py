"""The pure hash chain: what verification detects, and what it cannot."""

from __future__ import annotations

from datetime import UTC, datetime

from client.policy.audit import Head, make_record, record_line, verify_lines

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _chain(n: int, key: bytes | None = None) -> list[bytes]:
    head: Head | None = None
    lines = []
    for i in range(n):
        rec = make_record(
            head=head,
            now=NOW,
            message_id=f"<{i}@x>",
            sender="a@x.example",
            recipients=["b@y.example"],
            level="encrypted",
            decision="send",
            methods={"b@y.example": "pgp"},
            reasons=[
                {"rule": "finding", "type": "us-ssn", "start": 3, "end": 14, "value": "secret"}
            ],
            key=key,
        )
        lines.append(record_line(rec))
        head = Head(rec.seq, rec.hash)
    return lines


def test_intact_chain_verifies() -> None:
    lines = _chain(4)
    result = verify_lines(lines, head=verify_lines(lines).head)
    assert result.ok and result.count == 4
    assert b"secret" not in b"".join(lines)  # unknown keys (a value) never enter the log


def test_edit_delete_insert_reorder_detected() -> None:
    lines = _chain(4)
    head = verify_lines(lines).head
    assert not verify_lines([lines[0], lines[1].replace(b"pgp", b"tls"), *lines[2:]], head=head).ok
    assert not verify_lines([lines[0], *lines[2:]], head=head).ok
    assert not verify_lines([lines[1], lines[0], *lines[2:]], head=head).ok
    assert not verify_lines([*lines[:2], lines[1], *lines[2:]], head=head).ok
    assert not verify_lines([*lines[:3], b"{not json\n"], head=head).ok


def test_truncation_needs_the_head() -> None:
    lines = _chain(4)
    head = verify_lines(lines).head
    assert verify_lines(lines[:2]).ok  # without the head, a shorter chain is still a chain
    assert not verify_lines(lines[:2], head=head).ok
    assert not verify_lines([], head=head).ok


def test_crash_between_log_and_head_is_tolerated() -> None:
    lines = _chain(3)
    behind = verify_lines(lines[:2]).head
    assert verify_lines(lines, head=behind).ok


def test_keyed_chain_rejects_recomputed_forgery() -> None:
    lines = _chain(3, key=b"k" * 32)
    assert verify_lines(lines, key=b"k" * 32).ok
    forged = _chain(3)  # an attacker without the key recomputes plain hashes
    assert not verify_lines(forged, key=b"k" * 32).ok
