"""The sans-I/O pieces: outbox state table, sync planner, backoff."""

from __future__ import annotations

import pytest

from client.store.cache import CachedFolder
from client.transport.backoff import delay
from client.transport.imap import FolderStatus
from client.transport.outbox_state import TRANSITIONS, Event, OutboxStateError, State, next_state
from client.transport.sync import Action, plan


def test_happy_path() -> None:
    s = State.QUEUED
    for ev in (Event.START, Event.BODY_SENT, Event.ACCEPTED, Event.COPIED, Event.FINISHED):
        s = next_state(s, ev)
    assert s is State.DONE


def test_illegal_moves_are_errors() -> None:
    with pytest.raises(OutboxStateError):
        next_state(State.DONE, Event.START)
    with pytest.raises(OutboxStateError):
        next_state(State.QUEUED, Event.ACCEPTED)  # never "accepted" without COMMITTING
    # the only ways into SENT are an accepted dot or the server showing the message
    into_sent = {
        ev for st, row in TRANSITIONS.items() for ev, to in row.items() if to is State.SENT
    }
    assert into_sent == {Event.ACCEPTED, Event.FOUND}


def test_crash_recovery_moves() -> None:
    assert next_state(State.SENDING, Event.CRASHED) is State.QUEUED
    assert next_state(State.COMMITTING, Event.NOT_FOUND) is State.QUEUED
    assert next_state(State.COMMITTING, Event.FOUND) is State.SENT


def _f(uv: int | None, un: int, ms: int | None) -> CachedFolder:
    return CachedFolder("a", "INBOX", "/", (), uv, un, ms, 3)


def test_sync_plan_table() -> None:
    server = FolderStatus("INBOX", 7, 10, 3, 55)
    assert plan(None, 0, server).action is Action.FULL
    assert plan(_f(6, 10, 55), 3, server).action is Action.RESET
    assert plan(_f(7, 10, 55), 3, server).action is Action.UNCHANGED
    p = plan(_f(7, 8, 50), 3, server)
    assert p.action is Action.INCREMENTAL and p.new_from_uid == 8 and p.flags_since == 50
    assert plan(_f(7, 10, 55), 2, server).action is Action.INCREMENTAL  # an expunge


def test_backoff_full_jitter_bounds() -> None:
    assert delay(1, base=2, rng=lambda: 0.999) < 2
    assert delay(5, base=2, rng=lambda: 0.5) == 16
    assert delay(50, base=2, cap=900, rng=lambda: 0.999) <= 900
