"""The durable outbox: write first, then send; never lose a message, never send it twice.

Theory of operation
-------------------
``enqueue`` gives the message a stable Message-ID (kept if it has one), writes it into
``<profile>/outbox/<key>.eml`` and a state record ``<key>.json`` (each with
:func:`~keystore.profile.atomic_write`: temp file, fsync, rename, directory fsync) and
only then returns. Nothing touches the network before that.

``process`` walks the records (under the profile lock, so two processes never send the
same message) and drives each through :mod:`client.transport.outbox_state`; the new state
is persisted *before* the step it announces:

1. **Policy** — the single hook ``policy(raw, account) -> PolicyDecision`` decides the wire
   form (protected per policy, encrypted to the sender too) and whether REQUIRETLS is
   needed — possibly as several :class:`WireCopy` (one per recipient group, each its own
   SMTP transaction to exactly its recipients). It runs once; every copy is stored
   (``<key>.wire``, ``<key>.<i>.wire``) and only then listed in the record, so retries
   and the Sent copy are byte-identical. Any exception holds the message (fail closed);
   an exception with a ``details`` mapping (the policy's hold: reason, fixes) keeps it in
   the record for ``sealmail outbox list``.
2. **SENDING** → MAIL/RCPT/DATA; the sender is added as an envelope recipient (a Bcc
   nobody sees) so an accepted message leaves a witness in the sender's INBOX.
3. **COMMITTING** is fsync'd right before the end-of-data dot, then **SENT** right after
   the 250. 4xx or a network error before the dot → QUEUED with backoff; 5xx, TLS or
   REQUIRETLS problems → HELD with the reason.
4. **Sent copy** — the witness copy is moved from INBOX to the Sent folder (or, if the
   server kept none, the wire form is APPENDed) after checking Sent for the Message-ID,
   so a crash here never makes two copies → **COPIED** → **DONE** (local files removed; the
   JSON record stays as the sent-ledger).

With several copies each carries an ``X-Sealmail-Copy`` token (random, says nothing) so
its witness can be told from the others'; copy 0 — the policy puts the one best for the
sender first — becomes the Sent copy, the other witnesses are deleted.

Recovery after a crash: SENDING → QUEUED (the dot was never sent, the server discarded the
transaction). COMMITTING is the one ambiguous state: the outbox looks for the Message-ID
in INBOX and Sent, polling for up to ``witness_wait`` seconds (delivery of the witness
can lag the 250); found → SENT, not found → QUEUED. **Residual window**: a server that
accepted the message but delivers the witness copy later than ``witness_wait`` (a queued
local delivery) makes the outbox send again — a possible duplicate, never a loss. With a
server that delivers before it answers 250 (Dovecot/LMTP, most submission servers for
local users) the window is closed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import getaddresses
from pathlib import Path
from typing import Any

from client.errors import SealmailError, StorageError, TransportError, UsageError
from client.transport.accounts import Account
from client.transport.backoff import delay as backoff_delay
from client.transport.imap import ImapSession
from client.transport.outbox_state import Event, State, next_state
from client.transport.smtp import SmtpSession
from keystore.profile import Profile, atomic_write
from keystore.storage import storage_error

__all__ = [
    "COPY_HEADER",
    "Entry",
    "Outbox",
    "PolicyDecision",
    "PolicyHook",
    "WireCopy",
    "transport_only_policy",
]

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 12
COPY_HEADER = "X-Sealmail-Copy"


@dataclass(frozen=True)
class WireCopy:
    """One protected copy: its bytes and exactly who receives it (one SMTP transaction)."""

    wire: bytes
    rcpts: tuple[str, ...]
    require_tls: bool = False
    method: str = "tls"


@dataclass(frozen=True)
class PolicyDecision:
    """What the protection policy decided: the bytes to send and how they must travel.

    ``copies`` empty: one copy, ``wire``, to every recipient of the message. Otherwise
    each copy goes to exactly its ``rcpts``; copy 0 becomes the sender's Sent copy.
    """

    wire: bytes = b""
    require_tls: bool = False
    copies: tuple[WireCopy, ...] = ()


PolicyHook = Callable[[bytes, Account], PolicyDecision]


def transport_only_policy(raw: bytes, account: Account) -> PolicyDecision:
    """Placeholder until client.policy exists: send as written, TLS to the submission server.

    The protection policy (client/policy) replaces this via ``Session.policy_hook``; it
    must raise (e.g. ``PolicyBlocksSend``) rather than return plaintext it may not send.
    """
    return PolicyDecision(wire=raw, require_tls=False)


@dataclass
class Entry:
    key: str
    message_id: str
    account: str
    mail_from: str
    rcpts: list[str]
    state: State = State.QUEUED
    attempts: int = 0
    next_attempt: float = 0.0
    reason: str | None = None
    require_tls: bool = False
    created: float = 0.0
    history: list[tuple[float, str]] = field(default_factory=list)
    #: per protected copy: rcpts, require_tls, method, token, done (see the docstring)
    copies: list[dict[str, Any]] = field(default_factory=list)
    #: why the policy held it (reason, fixes, plan) — shown by ``sealmail outbox list``
    hold: dict[str, Any] | None = None
    #: transient, never stored: envelope passwords made by this run (show them once)
    envelope_passwords: list[dict[str, Any]] = field(
        default_factory=list, repr=False, compare=False
    )

    @property
    def pending_copy(self) -> int | None:
        return next((i for i, c in enumerate(self.copies) if not c.get("done")), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "message_id": self.message_id,
            "account": self.account,
            "mail_from": self.mail_from,
            "rcpts": self.rcpts,
            "state": self.state.value,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
            "reason": self.reason,
            "require_tls": self.require_tls,
            "created": self.created,
            "history": self.history,
            "copies": self.copies,
            "hold": self.hold,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Entry:
        return cls(
            key=d["key"],
            message_id=d["message_id"],
            account=d["account"],
            mail_from=d["mail_from"],
            rcpts=list(d["rcpts"]),
            state=State(d["state"]),
            attempts=int(d.get("attempts", 0)),
            next_attempt=float(d.get("next_attempt", 0.0)),
            reason=d.get("reason"),
            require_tls=bool(d.get("require_tls", False)),
            created=float(d.get("created", 0.0)),
            history=[(float(t), str(s)) for t, s in d.get("history", [])],
            copies=[dict(c) for c in d.get("copies", [])],
            hold=d.get("hold"),
        )


_BCC = re.compile(rb"^Bcc:.*(?:\r?\n[ \t].*)*\r?\n", re.IGNORECASE | re.MULTILINE)


def _split_header(raw: bytes) -> tuple[bytes, memoryview]:
    """The header section (a copy: it is edited) and a view of the body (no 25 MB copy)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return raw[: i + len(sep)], memoryview(raw)[i + len(sep) :]
    return raw, memoryview(b"")


class Outbox:
    """The outbox of one profile. ``sleep``, ``clock`` and ``rng`` are parameters for tests."""

    def __init__(
        self,
        profile: Profile,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
        sleep: Callable[[float], None] = time.sleep,
        witness_wait: float = 10.0,
    ) -> None:
        self.profile = profile
        self.dir = profile.path / "outbox"
        try:
            self.dir.mkdir(mode=0o700, exist_ok=True)
        except OSError as exc:  # disk full or read-only profile: nothing is queued
            raise storage_error(exc, self.dir) from exc
        self.clock = clock
        self.rng = rng
        self.sleep = sleep
        self.witness_wait = witness_wait

    # ------------------------------------------------------------ storage
    def _path(self, key: str, ext: str) -> Path:
        return self.dir / f"{key}.{ext}"

    def _save(self, e: Entry) -> None:
        atomic_write(self._path(e.key, "json"), json.dumps(e.to_json()).encode(), mode=0o600)

    def _move(self, e: Entry, event: Event, reason: str | None = None) -> None:
        e.state = next_state(e.state, event)
        e.reason = reason
        e.history.append((self.clock(), f"{event.value}->{e.state.value}"))
        self._save(e)

    def entries(self) -> list[Entry]:
        out = []
        for p in self.dir.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                out.append(Entry.from_json(json.loads(p.read_text("utf-8"))))
        return sorted(out, key=lambda e: (e.created, e.key))

    def get(self, message_id: str) -> Entry:
        for e in self.entries():
            if e.message_id == message_id:
                return e
        raise UsageError(f"no message {message_id} in the outbox")

    # ------------------------------------------------------------ enqueue
    def enqueue(self, raw: bytes, account: Account) -> Entry:
        """Store ``raw`` durably (before any network I/O) and return its record."""
        head, body = _split_header(raw)  # the header section only is parsed (25 MB bodies)
        headers = BytesHeaderParser(policy=default_policy).parsebytes(head)
        mid = str(headers.get("Message-ID", "") or "").strip()
        if not mid:
            domain = account.email.rpartition("@")[2] or "sealmail.invalid"
            mid = f"<{self.rng(16).hex()}@{domain}>"
            head = f"Message-ID: {mid}\r\n".encode() + head
        if not headers.get("Date"):
            from email.utils import formatdate

            head = f"Date: {formatdate(self.clock(), localtime=False)}\r\n".encode() + head
        pairs = getaddresses(
            [str(v) for name in ("To", "Cc", "Bcc") for v in headers.get_all(name, [])]
        )
        rcpts = list(dict.fromkeys(a for _, a in pairs if "@" in a))
        if not rcpts:
            raise UsageError("the message has no recipients (To, Cc or Bcc)")
        key = hashlib.sha256(f"{account.email}\0{mid}".encode()).hexdigest()[:32]
        if self._path(key, "json").exists():
            return Entry.from_json(json.loads(self._path(key, "json").read_text("utf-8")))
        atomic_write(self._path(key, "eml"), (head, body), mode=0o600)  # no 25 MB join
        now = self.clock()
        e = Entry(
            key=key,
            message_id=mid,
            account=account.email,
            mail_from=account.email,
            rcpts=rcpts,
            created=now,
            history=[(now, "queued")],
        )
        self._save(e)
        return e

    def release(self, message_id: str) -> Entry:
        """Put a held message back in the queue; the policy runs again unless a copy left."""
        e = self.get(message_id)
        if e.state is not State.HELD:
            raise UsageError(
                f"{message_id} is {e.state.value}, not held",
                hint="Only held messages can be released (`sealmail outbox list`).",
            )
        e.attempts = 0
        e.next_attempt = 0.0
        if not any(c.get("done") for c in e.copies):
            # nothing reached anyone: plan again (keys imported, policy changed, ...)
            self._drop_wires(e)
            e.copies = []
        e.hold = None
        self._move(e, Event.RELEASE)
        return e

    # ------------------------------------------------------------ processing
    def process(
        self,
        account: Account,
        *,
        smtp: Callable[[], SmtpSession],
        imap: Callable[[], ImapSession],
        policy: PolicyHook,
        only: str | None = None,
    ) -> list[Entry]:
        """Drive every due message of ``account`` as far as it goes; return their records."""
        conns = _Connections(smtp, imap)
        touched: list[Entry] = []
        try:
            with self.profile.lock(timeout=120):
                for e in self.entries():
                    if e.account != account.email or (only and e.message_id != only):
                        continue
                    if e.state in (State.DONE, State.HELD):
                        continue
                    self._drive(e, account, conns, policy)
                    touched.append(e)
        finally:
            conns.close()
        return touched

    def _drive(self, e: Entry, account: Account, conns: _Connections, policy: PolicyHook) -> None:
        if e.state is State.SENDING:
            self._move(e, Event.CRASHED, "interrupted before the end of data; sending again")
        if e.state is State.COMMITTING:
            try:
                found = self._witness(e, account, conns)
            except TransportError as exc:
                e.reason = f"cannot check whether the server has it yet: {exc}"
                self._save(e)
                return
            if found:
                self._copy_done(e, Event.FOUND, Event.COPY_FOUND, None)
            else:
                self._move(e, Event.NOT_FOUND)
        if e.state is State.QUEUED:
            if e.next_attempt > self.clock():
                return
            self._send(e, account, conns, policy)
        if e.state is State.SENT:
            try:
                self._copy(e, account, conns)
            except TransportError as exc:
                e.reason = f"sent; the Sent copy is pending: {exc}"
                self._save(e)
                return
        if e.state is State.COPIED:
            self._drop_wires(e)
            with contextlib.suppress(FileNotFoundError):
                self._path(e.key, "eml").unlink()
            self._move(e, Event.FINISHED)

    def _wire_path(self, e: Entry, i: int) -> Path:
        return self._path(e.key, "wire" if i == 0 else f"{i}.wire")

    def _drop_wires(self, e: Entry) -> None:
        for p in self.dir.glob(f"{e.key}.*wire"):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

    def _prepare(self, e: Entry, account: Account, policy: PolicyHook) -> None:
        """Run the policy once and store every copy; the record lists them last."""
        if e.copies:
            if all(c.get("done") or self._wire_path(e, i).exists() for i, c in enumerate(e.copies)):
                return
            if any(c.get("done") for c in e.copies):  # never plan again what partly left
                raise UsageError("a stored copy of a partly sent message is missing")
        raw = self._path(e.key, "eml").read_bytes()
        decision = policy(raw, account)  # the single policy hook; raising holds the message
        copies = decision.copies or (
            WireCopy(decision.wire, tuple(e.rcpts), decision.require_tls, "tls"),
        )
        if not copies or any(not c.rcpts for c in copies):
            raise UsageError("the protection policy returned a copy without recipients")
        listed: list[dict[str, Any]] = []
        for i, c in enumerate(copies):
            head, body = _split_header(c.wire)
            head = _BCC.sub(b"", head)
            token = self.rng(12).hex() if len(copies) > 1 else None
            if token is not None:
                eol = b"\r\n" if b"\r\n" in head else b"\n"
                head = f"{COPY_HEADER}: {token}".encode() + eol + head
            atomic_write(self._wire_path(e, i), (head, body), mode=0o600)
            listed.append(
                {
                    "rcpts": list(c.rcpts),
                    "require_tls": c.require_tls,
                    "method": c.method,
                    "token": token,
                    "done": False,
                }
            )
        e.copies = listed
        e.require_tls = any(c["require_tls"] for c in listed)
        self._save(e)

    def _copy_done(self, e: Entry, last: Event, more: Event, reason: str | None) -> None:
        i = e.pending_copy
        if i is not None:
            e.copies[i]["done"] = True  # saved by the same write as the state change
        if e.pending_copy is None:
            self._move(e, last, reason)
        else:
            e.attempts = 0
            self._move(e, more, reason)

    def _send(self, e: Entry, account: Account, conns: _Connections, policy: PolicyHook) -> None:
        try:
            self._prepare(e, account, policy)
        except StorageError:  # disk full / read-only: stays QUEUED, not a policy hold
            raise
        except Exception as exc:  # fail closed: whatever went wrong, nothing is sent
            why = exc.hint if isinstance(exc, SealmailError) else "the protection policy failed"
            details = getattr(exc, "details", None)
            e.hold = dict(details) if isinstance(details, dict) else None
            self._move(e, Event.PERM_FAIL, f"held by policy: {exc} ({why})")
            return
        notes: list[str] = []
        while True:
            if e.state is not State.QUEUED:
                return
            i = e.pending_copy
            if i is None:  # every copy is out (a crash right after the last one)
                self._move(e, Event.START)
                self._move(e, Event.BODY_SENT)
                self._move(e, Event.ACCEPTED)
                return
            copy = e.copies[i]
            wire = self._wire_path(e, i).read_bytes()
            e.attempts += 1
            self._move(e, Event.START)
            rcpts = list(copy["rcpts"])
            if e.mail_from.lower() not in {r.lower() for r in rcpts}:
                rcpts.append(e.mail_from)  # the witness copy (see the module docstring)
            try:
                result = conns.smtp().send(
                    e.mail_from,
                    rcpts,
                    wire,
                    require_tls=bool(copy.get("require_tls")),
                    envid=e.message_id,
                    before_commit=lambda: self._move(e, Event.BODY_SENT),
                )
            except TransportError as exc:
                conns.drop_smtp()
                if _in(e, State.COMMITTING) and exc.temporary and not _is_reply(exc):
                    e.reason = f"connection lost after the end of data: {exc}"
                    self._save(e)  # ambiguous: resolved from the server next time
                    return
                done = sum(1 for c in e.copies if c.get("done"))
                part = f" ({done} of {len(e.copies)} copies were sent)" if done else ""
                if exc.temporary and e.attempts < MAX_ATTEMPTS:
                    e.next_attempt = self.clock() + backoff_delay(e.attempts, base=2.0)
                    self._move(e, Event.TEMP_FAIL, f"will retry: {exc}{part}")
                else:
                    self._move(e, Event.PERM_FAIL, f"{exc} — {exc.hint}{part}")
                return
            if result.refused:
                notes.append(", ".join(f"{r} ({c})" for r, (c, _t) in result.refused.items()))
            reason = f"refused recipients: {'; '.join(notes)}" if notes else None
            self._copy_done(e, Event.ACCEPTED, Event.COPY_ACCEPTED, reason)

    def _find(self, s: ImapSession, folder: str, message_id: str) -> list[int]:
        s.select(folder)
        return s.search_message_id(message_id)

    def _find_copy(self, s: ImapSession, folder: str, e: Entry, i: int) -> list[int]:
        token = e.copies[i].get("token") if i < len(e.copies) else None
        if not token:
            return self._find(s, folder, e.message_id)
        s.select(folder)
        return s.uids(["HEADER", "Message-ID", e.message_id, "HEADER", COPY_HEADER, token])

    def _witness(self, e: Entry, account: Account, conns: _Connections) -> bool:
        i = e.pending_copy or 0
        deadline = self.clock() + self.witness_wait
        while True:
            s = conns.imap()
            if self._find_copy(s, "INBOX", e, i) or self._find_copy(s, account.sent_folder, e, i):
                return True
            if self.clock() >= deadline:
                return False
            self.sleep(0.05)

    def _self_copy_uids(self, s: ImapSession, e: Entry) -> set[int]:
        """INBOX messages that are real deliveries to the sender (not witnesses)."""
        me = e.mail_from.lower()
        keep: set[int] = set()
        for i, c in enumerate(e.copies or [{"rcpts": e.rcpts}]):
            if me in {r.lower() for r in c["rcpts"]}:
                keep.update(self._find_copy(s, "INBOX", e, i))
        return keep

    def _copy(self, e: Entry, account: Account, conns: _Connections) -> None:
        s = conns.imap()
        sent = account.sent_folder
        if not self._find(s, sent, e.message_id):
            keep = self._self_copy_uids(s, e)
            first = [u for u in self._find_copy(s, "INBOX", e, 0) if u not in keep]
            if first:
                s.add_flags(first[:1], ["\\Seen"])
                s.move(first[:1], sent)
            else:
                wire = self._wire_path(e, 0)
                data = wire.read_bytes() if wire.exists() else self._path(e.key, "eml").read_bytes()
                s.append(sent, data, flags=["\\Seen"])
        # only witnesses are left in INBOX now (or, after a crash here, a late one)
        keep = self._self_copy_uids(s, e)
        extra = [u for u in self._find(s, "INBOX", e.message_id) if u not in keep]
        if extra:
            s.delete(extra)
        self._move(e, Event.COPIED)


def _in(e: Entry, state: State) -> bool:
    """``e.state is state`` (a call, so type checkers do not narrow across ``_move``)."""
    return e.state is state


def _is_reply(exc: TransportError) -> bool:
    from client.errors import TemporaryFailure

    return isinstance(exc, TemporaryFailure)


class _Connections:
    """At most one SMTP and one IMAP connection per ``process`` run, opened lazily."""

    def __init__(self, smtp: Callable[[], SmtpSession], imap: Callable[[], ImapSession]) -> None:
        self._smtp_factory = smtp
        self._imap_factory = imap
        self._smtp: SmtpSession | None = None
        self._imap: ImapSession | None = None

    def smtp(self) -> SmtpSession:
        if self._smtp is None:
            self._smtp = self._smtp_factory()
        return self._smtp

    def imap(self) -> ImapSession:
        if self._imap is None:
            self._imap = self._imap_factory()
        return self._imap

    def drop_smtp(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None

    def close(self) -> None:
        self.drop_smtp()
        if self._imap is not None:
            self._imap.close()
        self._imap = None
