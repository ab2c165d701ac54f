"""The IMAP shell: imapclient over verified TLS, translated into Sealmail's errors.

Theory of operation
-------------------
:func:`connect` opens a link with implicit TLS (``security="tls"``) or plain + STARTTLS
(``"starttls"``). On a plain link the order is fixed: read the greeting (``PREAUTH`` there
is refused — a server that skips login on a link anyone can read is not trusted), check
that STARTTLS is offered, run it with the account's verifying context, and only then send
LOGIN. Any failure before TLS closes the socket without sending anything else
(:class:`~client.errors.TlsRequired`). imapclient, imaplib, ssl and socket errors are
translated in exactly one place, :func:`imap_errors`.

:class:`ImapSession` is a small façade: folders, SELECT with UIDVALIDITY / UIDNEXT /
HIGHESTMODSEQ, header fetches in chunks of explicit UID lists (never ``1:*``, never more
than :data:`CHUNK` UIDs in one command; every byte on the wire goes through imaplib or
imapclient, a worker thread fetches the next chunk while the caller stores this one),
bodies on demand, flags, move/copy/delete, APPEND, search by Message-ID and IDLE.

Nothing here logs credentials or message data, and imapclient is kept from doing so:
its protocol trace is switched off per connection (:func:`_quiet`) and filtered out of
its loggers for good (:class:`ProtocolTraceFilter`, installed when this module loads),
so even an application logging everything at DEBUG gets no passwords or message text.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import queue
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, NamedTuple

import imapclient  # type: ignore[import-untyped]
import imapclient.exceptions as imx  # type: ignore[import-untyped]
from imapclient.response_parser import parse_fetch_response  # type: ignore[import-untyped]

from client.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    MailboxChanged,
    ServerRefused,
    TemporaryFailure,
    TlsRequired,
    TransportError,
)
from client.mime.raw import to_crlf
from client.transport.backoff import delay as backoff_delay
from client.transport.tls import client_context, tls_errors

__all__ = [
    "CHUNK",
    "HEADER_FIELDS",
    "PREFETCH",
    "FolderInfo",
    "FolderStatus",
    "HeaderRecord",
    "ImapSession",
    "ProtocolTraceFilter",
    "connect",
    "connect_with_backoff",
    "content_type_of",
    "header_items",
    "imap_errors",
    "parse_header_fetch",
]

log = logging.getLogger(__name__)


class ProtocolTraceFilter(logging.Filter):
    """Drops imapclient's protocol trace, whatever level the application logs at.

    imapclient logs each command line (``"> ..."``), the start and end of every literal
    it sends (``"   (literal) > ..."``: part of an APPENDed message) and, through the
    ``imapclient.imaplib`` logger, every line imaplib reads or writes when imaplib's
    ``debug`` is on. None of that may reach a log: it carries message text and, for
    commands other than LOGIN, whatever the command carries. Other imapclient records
    ("Logged in as ...", "Connection closed") pass.
    """

    _TRACE = (">", "<", "(literal)")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "imapclient.imaplib":
            return False
        msg = record.msg
        return not (isinstance(msg, (str, bytes)) and _text(msg).lstrip().startswith(self._TRACE))


def _install_trace_filter() -> None:
    for name in ("imapclient.imapclient", "imapclient.imaplib"):
        lg = logging.getLogger(name)
        if not any(isinstance(f, ProtocolTraceFilter) for f in lg.filters):
            lg.addFilter(ProtocolTraceFilter())


Security = Literal["tls", "starttls"]
#: UIDs per FETCH/STORE command (Dovecot's line limit is reached near 12,800).
CHUNK = 1000
#: header chunks fetched and parsed ahead of the caller in :meth:`ImapSession.fetch_headers`
PREFETCH = 2
TIMEOUT = 60.0
HEADER_FIELDS = (
    "FROM",
    "TO",
    "CC",
    "SUBJECT",
    "DATE",
    "MESSAGE-ID",
    "IN-REPLY-TO",
    "REFERENCES",
    "CONTENT-TYPE",
)
_HEADER_ITEM = f"BODY.PEEK[HEADER.FIELDS ({' '.join(HEADER_FIELDS)})]"
_HEADER_KEY = f"BODY[HEADER.FIELDS ({' '.join(HEADER_FIELDS)})]".encode()


class _CanonicalLines:
    """``imaplib.MapCRLF.sub(CRLF, message)`` (bare CR or LF -> CRLF) done by
    :func:`client.mime.raw.to_crlf` in windows, not one regex call over the whole message.

    ``IMAP4.append`` runs that substitution on every message it uploads: on the 47 MB Sent
    copy of a 25 MB attachment in an envelope it held the GIL ~0.4 s and froze the app
    (issue 8). Same result (tests/unit/test_transport_imap_parse.py compares both);
    anything but that exact call goes to the original pattern.
    """

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern

    def sub(self, repl: Any, string: Any, count: int = 0) -> Any:
        if repl == b"\r\n" and isinstance(string, bytes) and count == 0:
            return to_crlf(string)
        return self.pattern.sub(repl, string, count)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pattern, name)


def _install_canonical_lines() -> None:
    current = getattr(imaplib, "MapCRLF", None)
    if isinstance(current, re.Pattern) and current.pattern == rb"\r\n|\r|\n":
        setattr(imaplib, "MapCRLF", _CanonicalLines(current))  # noqa: B010


_install_canonical_lines()


@dataclass(frozen=True)
class FolderInfo:
    name: str
    delimiter: str
    flags: tuple[str, ...]

    @property
    def special_use(self) -> str | None:
        for f in self.flags:
            if f in ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive", "\\All"):
                return f
        return None


@dataclass(frozen=True)
class FolderStatus:
    name: str
    uidvalidity: int
    uidnext: int
    exists: int
    highestmodseq: int | None


class HeaderRecord(NamedTuple):
    uid: int
    flags: tuple[str, ...]
    size: int
    internaldate: str | None  # ISO 8601, as datetime.isoformat() writes it
    modseq: int | None
    headers: bytes  # the selected header fields, raw
    content_type: str  # top-level MIME type from Content-Type, e.g. "multipart/encrypted"


@contextlib.contextmanager
def imap_errors(host: str) -> Iterator[None]:
    """The one place where imapclient/imaplib/socket errors become Sealmail errors."""
    try:
        with tls_errors(host):
            yield
    except TransportError:
        raise
    except imx.LoginError as exc:
        if "UNAVAILABLE" in str(exc):  # RFC 5530: the server cannot check it right now
            raise TemporaryFailure(f"{host} cannot check the login right now") from exc
        raise AuthenticationFailed(f"{host} rejected the IMAP login") from exc
    except (TimeoutError, imx.IMAPClientAbortError, imaplib.IMAP4.abort, EOFError) as exc:
        raise ConnectionFailed(f"the IMAP connection to {host} was lost") from exc
    except OSError as exc:
        raise ConnectionFailed(f"cannot reach {host}: {exc.strerror or exc}") from exc
    except (imx.IMAPClientError, imaplib.IMAP4.error) as exc:
        text = str(exc)
        if "UNAVAILABLE" in text or "INUSE" in text or "LIMIT" in text:
            raise TemporaryFailure(f"{host}: {text[:200]}") from exc
        raise ServerRefused(f"{host}: {text[:200]}") from exc


def _text(v: Any) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


_install_trace_filter()


def connect(
    host: str,
    port: int,
    *,
    security: Security,
    username: str,
    password: str,
    ca_file: str | None = None,
    timeout: float = TIMEOUT,
) -> ImapSession:
    """A logged-in session over verified TLS, or an error with nothing sent in the clear."""
    ctx = client_context(ca_file)
    with imap_errors(host):
        if security == "tls":
            client = imapclient.IMAPClient(host, port, ssl=True, ssl_context=ctx, timeout=timeout)
            _quiet(client)
        else:
            client = imapclient.IMAPClient(host, port, ssl=False, timeout=timeout)
            _quiet(client)
            try:
                _require_starttls(client, host, ctx)
            except BaseException:
                with contextlib.suppress(Exception):
                    client.shutdown()
                raise
        try:
            client.login(username, password)
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
    return ImapSession(client, host)


def _quiet(client: imapclient.IMAPClient) -> None:
    """Turn off imapclient's protocol trace (imaplib ``debug = 5``).

    imapclient routes every protocol line to the ``imapclient.imaplib`` logger, which
    would put message headers (and, at DEBUG level, data) into logs; it also costs a
    logging call per line of a FETCH answer.
    """
    client._imap.debug = 0


def _require_starttls(client: imapclient.IMAPClient, host: str, ctx: ssl.SSLContext) -> None:
    welcome = client.welcome or b""
    if client._imap.state != "NONAUTH" or welcome.upper().startswith(b"* PREAUTH"):
        raise TlsRequired(f"{host} sent PREAUTH on an unencrypted link; refused")
    if not client.has_capability("STARTTLS"):
        raise TlsRequired(f"{host} does not offer STARTTLS on port {client.port}")
    try:
        client.starttls(ctx)
    except (ssl.SSLError, ssl.CertificateError):
        raise
    except (imx.IMAPClientError, imaplib.IMAP4.error) as exc:
        raise TlsRequired(f"{host} refused STARTTLS") from exc


def connect_with_backoff(
    factory: Callable[[], ImapSession],
    *,
    attempts: int = 5,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] | None = None,
    base: float = 1.0,
) -> ImapSession:
    """Call ``factory`` until it connects; retry only temporary errors, with backoff."""
    for attempt in range(1, attempts + 1):
        try:
            return factory()
        except TransportError as exc:
            if not exc.temporary or attempt == attempts:
                raise
            wait = (
                backoff_delay(attempt, base=base)
                if rng is None
                else backoff_delay(attempt, base=base, rng=rng)
            )
            log.info(
                "IMAP connect failed (%s); retry %d in %.1fs", type(exc).__name__, attempt, wait
            )
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _chunks(uids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for i in range(0, len(uids), size):
        yield [int(u) for u in uids[i : i + size]]


class ImapSession:
    """A logged-in IMAP connection. Not thread-safe; one per worker."""

    def __init__(self, client: imapclient.IMAPClient, host: str) -> None:
        self.client = client
        self.host = host
        self.selected: FolderStatus | None = None
        self.condstore = client.has_capability("CONDSTORE")
        self._condstore_enabled = False

    def __enter__(self) -> ImapSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.logout()
        with contextlib.suppress(Exception):
            self.client.shutdown()

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return imap_errors(self.host)

    # ------------------------------------------------------------ folders
    def folders(self) -> list[FolderInfo]:
        with self._errors():
            rows = self.client.list_folders()
        return [
            FolderInfo(
                name=_text(name),
                delimiter=_text(delim or "/"),
                flags=tuple(_text(f) for f in flags),
            )
            for flags, delim, name in rows
        ]

    def special_folder(self, use: str, fallback: str) -> str:
        for f in self.folders():
            if f.special_use == use:
                return f.name
        return fallback

    def create_folder(self, name: str) -> None:
        with self._errors():
            if not self.client.folder_exists(name):
                self.client.create_folder(name)

    def select(self, folder: str, *, readonly: bool = False) -> FolderStatus:
        with self._errors():
            if self.condstore and not self._condstore_enabled:
                with contextlib.suppress(imx.IMAPClientError):
                    self.client.enable("CONDSTORE")
                self._condstore_enabled = True
            info = self.client.select_folder(folder, readonly=readonly)
        hms = info.get(b"HIGHESTMODSEQ")
        status = FolderStatus(
            name=folder,
            uidvalidity=int(info.get(b"UIDVALIDITY", 0)),
            uidnext=int(info.get(b"UIDNEXT", 0)),
            exists=int(info.get(b"EXISTS", 0)),
            highestmodseq=int(hms) if hms is not None and self.condstore else None,
        )
        self.selected = status
        return status

    def _need(self, folder_status: FolderStatus | None = None) -> None:
        if self.selected is None:
            raise MailboxChanged("no folder is selected")

    # ------------------------------------------------------------ reading
    def uids(self, criteria: Sequence[Any] = ("ALL",)) -> list[int]:
        self._need()
        with self._errors():
            return sorted(int(u) for u in self.client.search(list(criteria)))

    def uids_from(self, first_uid: int) -> list[int]:
        """UIDs >= ``first_uid`` (new mail since the cached UIDNEXT)."""
        if first_uid < 1:
            first_uid = 1
        return [u for u in self.uids(["UID", f"{first_uid}:*"]) if u >= first_uid]

    def fetch_headers(self, uids: Sequence[int]) -> Iterator[HeaderRecord]:
        """Header fields, flags, size and date for ``uids``, in chunks of explicit UIDs.

        Only what the message list needs is fetched (:func:`header_items`: no
        BODYSTRUCTURE; the top-level type comes from the Content-Type field). Every byte
        on the wire is sent and read by imaplib (its public ``uid("FETCH", ...)`` on
        imapclient's connection); :func:`parse_header_fetch` reads the items asked for
        from imaplib's answer and hands anything unusual to imapclient's parser.

        A worker thread runs the FETCH of the next chunk and parses it while the caller
        consumes this one (stores it in SQLite, which releases the GIL), at most
        :data:`PREFETCH` chunks ahead. The connection belongs to that worker until the
        iterator is exhausted or closed; closing it early waits for the command in
        flight, so the connection stays in step. Each UID is yielded at most once.
        """
        self._need()
        spec = f"({' '.join(header_items(self.condstore))})"
        need_modseq = self.condstore
        imap = self.client._imap
        wanted = {int(u) for u in uids}
        chunks = list(_chunks(sorted(wanted)))
        if not chunks:
            return
        answers: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=PREFETCH)
        stop = threading.Event()

        def worker() -> None:
            try:
                for chunk in chunks:
                    if stop.is_set():
                        break
                    typ, data = imap.uid("FETCH", ",".join(map(str, chunk)), spec)
                    if typ != "OK":
                        raise imx.IMAPClientError(f"UID FETCH failed: {_text(data[-1])[:200]}")
                    if data == [None]:  # imaplib's "no FETCH response"
                        data = []
                    answers.put(("records", parse_header_fetch(data, need_modseq=need_modseq)))
            except BaseException as exc:  # handed to the caller, translated there
                answers.put(("error", exc))
            else:
                answers.put(("end", None))

        thread = threading.Thread(target=worker, name="imap-fetch-headers", daemon=True)
        thread.start()
        done = False
        try:
            while True:
                kind, value = answers.get()
                if kind == "end":
                    done = True
                    return
                if kind == "error":
                    done = True
                    with self._errors():
                        raise value
                for rec in value:
                    if rec.uid in wanted:
                        wanted.discard(rec.uid)
                        yield rec
        finally:
            stop.set()
            while not done:  # an early stop: let the command in flight finish
                done = answers.get()[0] in ("end", "error")
            thread.join()

    def changed_since(
        self, uids: Sequence[int], modseq: int
    ) -> dict[int, tuple[tuple[str, ...], int]]:
        """Flags of messages whose MODSEQ is above ``modseq`` (CONDSTORE)."""
        self._need()
        out: dict[int, tuple[tuple[str, ...], int]] = {}
        if not uids:
            return out
        for chunk in _chunks(uids):
            with self._errors():
                data = self.client.fetch(chunk, ["FLAGS"], modifiers=[f"CHANGEDSINCE {modseq}"])
            for uid, d in data.items():
                ms = d.get(b"MODSEQ")
                out[int(uid)] = (
                    tuple(_text(f) for f in d.get(b"FLAGS", ())),
                    int(ms[0]) if ms else modseq,
                )
        return out

    def flags(self, uids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        self._need()
        out: dict[int, tuple[str, ...]] = {}
        for chunk in _chunks(uids):
            with self._errors():
                data = self.client.fetch(chunk, ["FLAGS"])
            for uid, d in data.items():
                out[int(uid)] = tuple(_text(f) for f in d.get(b"FLAGS", ()))
        return out

    def fetch_body(self, uid: int) -> bytes:
        """The whole message as received (BODY.PEEK: does not set \\Seen)."""
        self._need()
        with self._errors():
            data = self.client.fetch([uid], ["BODY.PEEK[]"])
        if uid not in data:
            raise MailboxChanged(
                f"message {uid} is gone from {self.selected and self.selected.name}"
            )
        body = data[uid].get(b"BODY[]")
        return bytes(body) if body is not None else b""

    def search_message_id(self, message_id: str) -> list[int]:
        self._need()
        with self._errors():
            return sorted(int(u) for u in self.client.search(["HEADER", "Message-ID", message_id]))

    # ------------------------------------------------------------ changing
    def add_flags(self, uids: Sequence[int], flags: Sequence[str]) -> None:
        for chunk in _chunks(uids):
            with self._errors():
                self.client.add_flags(chunk, list(flags))

    def remove_flags(self, uids: Sequence[int], flags: Sequence[str]) -> None:
        for chunk in _chunks(uids):
            with self._errors():
                self.client.remove_flags(chunk, list(flags))

    def copy(self, uids: Sequence[int], folder: str) -> None:
        for chunk in _chunks(uids):
            with self._errors():
                self.client.copy(chunk, folder)

    def move(self, uids: Sequence[int], folder: str) -> None:
        for chunk in _chunks(uids):
            with self._errors():
                if self.client.has_capability("MOVE"):
                    self.client.move(chunk, folder)
                else:
                    self.client.copy(chunk, folder)
                    self.client.delete_messages(chunk)
                    self.client.uid_expunge(chunk)

    def delete(self, uids: Sequence[int]) -> None:
        """Mark deleted and expunge exactly these UIDs (UIDPLUS), nothing else."""
        for chunk in _chunks(uids):
            with self._errors():
                self.client.delete_messages(chunk)
                if self.client.has_capability("UIDPLUS"):
                    self.client.uid_expunge(chunk)
                else:
                    self.client.expunge()

    def append(self, folder: str, raw: bytes, *, flags: Sequence[str] = ()) -> int | None:
        """APPEND; returns the new UID when the server says it (APPENDUID)."""
        with self._errors():
            resp = self.client.append(folder, raw, flags=list(flags))
        text = _text(resp)
        if "APPENDUID" in text:
            with contextlib.suppress(ValueError, IndexError):
                return int(text.split("APPENDUID", 1)[1].split()[1].rstrip("]"))
        return None

    def multiappend(self, folder: str, messages: Sequence[bytes]) -> None:
        with self._errors():
            self.client.multiappend(folder, list(messages))

    # ------------------------------------------------------------ IDLE
    def idle_wait(self, timeout: float) -> list[tuple[Any, ...]]:
        """Wait in IDLE up to ``timeout`` seconds; return the untagged responses seen."""
        self._need()
        with self._errors():
            self.client.idle()
            try:
                responses = self.client.idle_check(timeout=timeout)
            finally:
                self.client.idle_done()
        return [tuple(r) if isinstance(r, tuple) else (r,) for r in responses]

    # IDLE in steps, for a long-running watcher (client.transport.watch): start it once,
    # poll it in short slices (to notice a stop request), end it to issue other commands.
    def idle_start(self) -> None:
        self._need()
        with self._errors():
            self.client.idle()

    def idle_poll(self, timeout: float) -> list[tuple[Any, ...]]:
        """Untagged responses that arrive within ``timeout`` seconds (IDLE must be on).

        ``[]`` before the timeout can mean the server closed the connection (imapclient
        swallows that EOF); :meth:`idle_end` then raises :class:`ConnectionFailed`.
        """
        with self._errors():
            responses = self.client.idle_check(timeout=timeout)
        return [tuple(r) if isinstance(r, tuple) else (r,) for r in responses]

    def idle_end(self) -> list[tuple[Any, ...]]:
        """Leave IDLE; returns the responses that came after the last poll."""
        with self._errors():
            _done, responses = self.client.idle_done()
        return [tuple(r) if isinstance(r, tuple) else (r,) for r in responses]

    def noop(self) -> None:
        with self._errors():
            self.client.noop()


def header_items(condstore: bool) -> tuple[str, ...]:
    """The FETCH items of a header sync (MODSEQ only where CONDSTORE is on)."""
    items = ("UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", _HEADER_ITEM)
    return (*items, "MODSEQ") if condstore else items


# matched at a line start found by find() on the lower-cased header block: a
# case-insensitive ``^content-type`` regex search (re.I | re.M) costs 10x as much
_CTYPE = re.compile(
    rb"content-type[ \t]*:[ \t]*([!#$%&'*+.^_`|~0-9a-z-]+/[!#$%&'*+.^_`|~0-9a-z-]+)"
)


def content_type_of(headers: bytes) -> str:
    """The top-level MIME type named by the Content-Type field (RFC 2045 default).

    The first line that starts ``Content-Type:`` (any case) with a ``type/subtype``
    value names it, lower-cased.
    """
    low = headers.lower()
    i = low.find(b"content-type")
    while i >= 0:
        if i == 0 or low[i - 1] == 0x0A:  # at a line start
            m = _CTYPE.match(low, i)
            if m is not None:
                return m.group(1).decode("ascii")
        i = low.find(b"content-type", i + 12)
    return "text/plain"


# One FETCH response of the shape header_items() asks for: "<seq> (<atts> BODY[...] {n}"
# then the literal, then "<more atts>)". Atts are matched one by one; anything else
# (another order of brackets, NIL, a quoted header, an unsolicited FETCH) falls back.
_HEAD = re.compile(rb"(\d+) \((.*?) ?BODY\[HEADER\.FIELDS \([^()]*\)\] \{(\d+)\}", re.S)
_ATT = re.compile(
    rb" ?(?:UID (\d+)|FLAGS \(([^()\"{}\r\n]*)\)|RFC822\.SIZE (\d+)"
    rb'|INTERNALDATE "([^"\r\n]*)"|MODSEQ \((\d+)\))'
)
_IDATE = re.compile(rb" ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)")
_MONTHS = {
    m.encode(): i
    for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)
}
#: "dd-Mon-yyyy" -> "yyyy-mm-ddT" and "+zzzz" -> "+zz:zz", filled by _idate_slow
_DAYS: dict[bytes, str] = {}
_ZONE_TEXT: dict[bytes, str] = {}
_MEMO_MAX = 100_000


class _Unexpected(Exception):
    """The answer is not in the fast shape; use imapclient's parser."""


def _idate(raw: bytes) -> str:
    """An IMAP INTERNALDATE as ISO 8601, exactly as ``datetime.isoformat()`` writes it.

    A date (``dd-Mon-yyyy``) and a zone (``+zzzz``) are each checked once by
    :mod:`datetime` and remembered (a mailbox has few distinct days and zones); the time
    of day is checked by comparing bytes. Anything else goes through :func:`_idate_slow`.
    """
    if len(raw) == 26 and raw[11:12] == b" " and raw[20:21] == b" ":
        hms = raw[12:20]
        if (
            hms[2:3] == b":"
            and hms[5:6] == b":"
            and hms[:2].isdigit()
            and hms[3:5].isdigit()
            and hms[6:].isdigit()
            and hms[:2] < b"24"
            and hms[3:4] < b"6"
            and hms[6:7] < b"6"
        ):
            text = _remembered(raw[:11], hms, raw[21:])
            if text is not None:
                return text
    return _idate_slow(raw)


def _remembered(day: bytes, hms: bytes, zone: bytes) -> str | None:
    """The ISO text of a checked time of day on a day and in a zone seen before, else None."""
    iso_day = _DAYS.get(day)
    iso_zone = _ZONE_TEXT.get(zone)
    if iso_day is None or iso_zone is None:
        return None
    return iso_day + hms.decode("ascii") + iso_zone


def _idate_slow(raw: bytes) -> str:
    m = _IDATE.fullmatch(raw)
    if m is None:
        raise _Unexpected
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    month_no = _MONTHS.get(mon.lower())
    if month_no is None:
        raise _Unexpected
    offset = (int(zh) * 60 + int(zm)) * (-1 if sign == b"-" else 1)
    try:
        when = datetime(
            int(year),
            month_no,
            int(day),
            int(hh),
            int(mm),
            int(ss),
            tzinfo=timezone(timedelta(minutes=offset)),
        )
    except ValueError as exc:
        raise _Unexpected from exc
    text = when.isoformat()
    if len(raw) == 26 and len(_DAYS) < _MEMO_MAX:  # the common form: remember its parts
        _DAYS[raw[:11]] = text[:11]
        _ZONE_TEXT[raw[21:]] = text[19:]
    return text


def _fast_record(head: bytes, literal: bytes, tail: bytes, need_modseq: bool) -> HeaderRecord:
    m = _HEAD.fullmatch(head)
    if m is None or int(m.group(3)) != len(literal) or not tail.endswith(b")"):
        raise _Unexpected
    atts = m.group(2) + tail[:-1]
    uid = size = modseq = None
    flags: bytes | None = None
    idate: bytes | None = None
    pos, end = 0, len(atts)
    while pos < end:
        a = _ATT.match(atts, pos)
        if a is None or a.end() == pos:
            raise _Unexpected
        pos = a.end()
        g_uid, g_flags, g_size, g_date, g_modseq = a.groups()
        if g_uid is not None:
            uid = int(g_uid)
        elif g_flags is not None:
            flags = g_flags
        elif g_size is not None:
            size = int(g_size)
        elif g_date is not None:
            idate = g_date
        else:
            modseq = int(g_modseq)
    if uid is None or flags is None or size is None or idate is None:
        raise _Unexpected
    if need_modseq and modseq is None:
        raise _Unexpected
    return HeaderRecord(
        uid=uid,
        flags=tuple(flags.decode("utf-8", "replace").split()),
        size=size,
        internaldate=_idate(idate),
        modseq=modseq,
        headers=bytes(literal),
        content_type=content_type_of(literal),
    )


def parse_header_fetch(data: Sequence[Any], *, need_modseq: bool = False) -> list[HeaderRecord]:
    """Header records from raw imaplib FETCH data (the items of :func:`header_items`).

    The common shape is read directly; if any response differs, the whole answer is
    parsed again by imapclient's :func:`~imapclient.response_parser.parse_fetch_response`.
    Why not always imapclient's parser: it tokenises every byte in Python, and a header
    sync through ``IMAPClient.fetch`` took 6.4x a raw imaplib FETCH of the same items
    (bench/imap.py, 10,000 messages) against 1.8x this way, parse and SQLite store
    included. An answer whose every response is in Dovecot's order is read in one pass
    (:func:`_dovecot_records`); others response by response (:func:`_fast_record`).
    """
    out: list[HeaderRecord] = []
    try:
        whole = _dovecot_records(data, need_modseq)
        if whole is not None:
            return whole
        i, n = 0, len(data)
        while i < n:
            item = data[i]
            if not isinstance(item, tuple) or i + 1 >= n or not isinstance(data[i + 1], bytes):
                raise _Unexpected
            out.append(_fast_record(item[0], item[1], data[i + 1], need_modseq))
            i += 2
    except _Unexpected:
        return _slow_records(data)
    return out


# Dovecot's shape, for every line of an answer at once (heads joined by "\n")
# (the INTERNALDATE in its common form, checked here: day, time of day, zone)
_DOVECOT_LINES = re.compile(
    rb'^\d+ \(UID (\d+) FLAGS \(([^()"{}\r\n]*)\) RFC822\.SIZE (\d+) INTERNALDATE '
    rb'"((?: \d|\d\d)-[A-Za-z]{3}-\d{4}) ((?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d) ([+-]\d{4})"'
    rb"(?: MODSEQ \((\d+)\))? BODY\[HEADER\.FIELDS \([^()]*\)\] \{(\d+)\}$",
    re.M,
)
#: flags as received -> as stored, for _dovecot_records (a folder uses few combinations)
_FLAG_SETS: dict[bytes, tuple[str, ...]] = {}


def _dovecot_records(data: Sequence[Any], need_modseq: bool) -> list[HeaderRecord] | None:
    """The records of an answer whose every response is in Dovecot's shape, else None.

    One regex call reads the heads of the whole answer (a call per response cost as
    much as the match). Any difference (a response of another shape or order, a
    literal whose length is not the announced one) returns None, and the caller goes
    response by response.
    """
    items = data[0::2]
    tails = data[1::2]
    n = len(tails)
    if len(items) != n or tails.count(b")") != n:
        return None
    heads = [x[0] for x in items if type(x) is tuple and len(x) == 2]
    if len(heads) != n:
        return None
    try:
        joined = b"\n".join(heads)
    except TypeError:
        return None
    if joined.count(b"\n") != n - 1:
        return None
    rows = _DOVECOT_LINES.findall(joined)
    if len(rows) != n:
        return None
    out: list[HeaderRecord] = []
    append = out.append
    flag_sets = _FLAG_SETS
    for (uid, flags, size, day, hms, zone, modseq, length), (_h, literal) in zip(
        rows, items, strict=True
    ):
        if int(length) != len(literal) or type(literal) is not bytes:
            return None
        idate = _remembered(day, hms, zone)  # the regex checked the time of day
        if idate is None:  # a day or zone not seen yet: checked by datetime
            idate = _idate_slow(b"%s %s %s" % (day, hms, zone))
        if not modseq and need_modseq:
            return None
        flag_set = flag_sets.get(flags)
        if flag_set is None:
            flag_set = tuple(flags.decode("utf-8", "replace").split())
            if len(flag_sets) < 10_000:
                flag_sets[flags] = flag_set
        append(
            HeaderRecord(
                int(uid),
                flag_set,
                int(size),
                idate,
                int(modseq) if modseq else None,
                literal,
                content_type_of(literal),
            )
        )
    return out


def _slow_records(data: Sequence[Any]) -> list[HeaderRecord]:
    parsed = parse_fetch_response(list(data), normalise_times=False, uid_is_key=True)
    return [_record(uid, d) for uid, d in sorted(parsed.items()) if _HEADER_KEY in d]


def _record(uid: int, d: dict[bytes, Any]) -> HeaderRecord:
    ms = d.get(b"MODSEQ")
    idate = d.get(b"INTERNALDATE")
    headers = bytes(d.get(_HEADER_KEY) or b"")
    return HeaderRecord(
        uid=int(uid),
        flags=tuple(_text(f) for f in d.get(b"FLAGS", ())),
        size=int(d.get(b"RFC822.SIZE", 0)),
        internaldate=idate.isoformat() if isinstance(idate, datetime) else None,
        modseq=int(ms[0]) if ms else None,
        headers=headers,
        content_type=content_type_of(headers),
    )
