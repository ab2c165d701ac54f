"""The outbox state machine: a table over enum states, no I/O.

Theory of operation
-------------------
Every message in the outbox is in exactly one :class:`State`, persisted (fsync, atomic
rename) *before* the action the state announces::

    QUEUED ─START─► SENDING ─BODY_SENT─► COMMITTING ─ACCEPTED─► SENT ─COPIED─► COPIED
    COPIED ─FINISHED─► DONE (local files removed; the record stays as the sent-ledger)
    SENDING    ─TEMP_FAIL / CRASHED (dot never sent)─► QUEUED
    COMMITTING ─TEMP_FAIL (4xx to the dot) / NOT_FOUND (recovery: never arrived)─► QUEUED
    COMMITTING ─FOUND (recovery: the server has it)─► SENT
    COMMITTING ─COPY_ACCEPTED / COPY_FOUND (one protected copy of several is done)─► QUEUED
    QUEUED, SENDING, COMMITTING ─PERM_FAIL (5xx, policy, TLS)─► HELD ─RELEASE─► QUEUED

``SENDING`` means "MAIL/RCPT/DATA may be in flight but the end-of-data dot was not sent":
the server throws such a transaction away when the link dies, so after a crash it is
safe to send again. ``COMMITTING`` is written right before the dot: the server may or
may not have accepted the message. Only this state is ambiguous after a crash or a lost
connection; it is resolved by looking for the Message-ID on the server (the outbox adds
the sender as an envelope recipient, so an accepted message leaves a copy in the
sender's INBOX; the Sent folder is checked too). A message the policy splits into several
protected copies (one SMTP transaction each) goes round QUEUED → … → COMMITTING once per
copy; the record marks each copy done in the same write that leaves COMMITTING, so a
crash never sends a finished copy again. An illegal move raises
:class:`OutboxStateError` (a bug, never a user error).
"""

from __future__ import annotations

import enum

from client.errors import UsageError

__all__ = ["ACCEPTED_STATES", "TRANSITIONS", "Event", "OutboxStateError", "State", "next_state"]


class State(enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    COMMITTING = "committing"
    SENT = "sent"
    COPIED = "copied"
    DONE = "done"
    HELD = "held"


class Event(enum.Enum):
    START = "start"
    BODY_SENT = "body-sent"
    ACCEPTED = "accepted"
    TEMP_FAIL = "temp-fail"
    PERM_FAIL = "perm-fail"
    CRASHED = "crashed"
    FOUND = "found"
    NOT_FOUND = "not-found"
    COPIED = "copied"
    FINISHED = "finished"
    RELEASE = "release"
    COPY_ACCEPTED = "copy-accepted"
    COPY_FOUND = "copy-found"


S, E = State, Event
TRANSITIONS: dict[State, dict[Event, State]] = {
    S.QUEUED: {E.START: S.SENDING, E.PERM_FAIL: S.HELD},
    S.SENDING: {
        E.BODY_SENT: S.COMMITTING,
        E.TEMP_FAIL: S.QUEUED,
        E.PERM_FAIL: S.HELD,
        E.CRASHED: S.QUEUED,
    },
    S.COMMITTING: {
        E.ACCEPTED: S.SENT,
        E.TEMP_FAIL: S.QUEUED,
        E.PERM_FAIL: S.HELD,
        E.FOUND: S.SENT,
        E.NOT_FOUND: S.QUEUED,
        E.COPY_ACCEPTED: S.QUEUED,
        E.COPY_FOUND: S.QUEUED,
    },
    S.SENT: {E.COPIED: S.COPIED},
    S.COPIED: {E.FINISHED: S.DONE},
    S.DONE: {},
    S.HELD: {E.RELEASE: S.QUEUED},
}

#: States after which the server has the message (exit 0 for `sealmail send`).
ACCEPTED_STATES = frozenset({S.SENT, S.COPIED, S.DONE})


class OutboxStateError(UsageError):
    hint = "This is a bug in Sealmail's outbox; please report it."


def next_state(state: State, event: Event) -> State:
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise OutboxStateError(
            f"outbox: {event.value} is not allowed in state {state.value}"
        ) from None
