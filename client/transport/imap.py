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
than :data:`CHUNK` UIDs in one command), bodies on demand, flags, move/copy/delete,
APPEND, search by Message-ID and IDLE. Nothing here logs credentials or message data.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import imapclient  # type: ignore[import-untyped]
import imapclient.exceptions as imx  # type: ignore[import-untyped]

from client.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    MailboxChanged,
    ServerRefused,
    TemporaryFailure,
    TlsRequired,
    TransportError,
)
from client.transport.backoff import delay as backoff_delay
from client.transport.tls import client_context, tls_errors

__all__ = [
    "CHUNK",
    "HEADER_FIELDS",
    "FolderInfo",
    "FolderStatus",
    "HeaderRecord",
    "ImapSession",
    "connect",
    "connect_with_backoff",
    "imap_errors",
]

log = logging.getLogger(__name__)

Security = Literal["tls", "starttls"]
#: UIDs per FETCH/STORE command (Dovecot's line limit is reached near 12,800).
CHUNK = 1000
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


@dataclass(frozen=True)
class HeaderRecord:
    uid: int
    flags: tuple[str, ...]
    size: int
    internaldate: datetime | None
    modseq: int | None
    headers: bytes  # the selected header fields, raw
    content_type: str  # top-level MIME type from BODYSTRUCTURE, e.g. "multipart/encrypted"


@contextlib.contextmanager
def imap_errors(host: str) -> Iterator[None]:
    """The one place where imapclient/imaplib/socket errors become Sealmail errors."""
    try:
        with tls_errors(host):
            yield
    except TransportError:
        raise
    except imx.LoginError as exc:
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
        else:
            client = imapclient.IMAPClient(host, port, ssl=False, timeout=timeout)
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
        """Header fields, flags, size, date and top-level type for ``uids``, in chunks."""
        self._need()
        items = ["FLAGS", "RFC822.SIZE", "INTERNALDATE", "BODYSTRUCTURE", _HEADER_ITEM]
        if self.condstore:
            items.append("MODSEQ")
        for chunk in _chunks(uids):
            with self._errors():
                data = self.client.fetch(chunk, items)
            for uid in sorted(data):
                yield _record(uid, data[uid])

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

    def noop(self) -> None:
        with self._errors():
            self.client.noop()


def _record(uid: int, d: dict[bytes, Any]) -> HeaderRecord:
    bs = d.get(b"BODYSTRUCTURE")
    ctype = "text/plain"
    if bs is not None:
        if getattr(bs, "is_multipart", False):
            ctype = "multipart/" + _text(bs[1]).lower()
        else:
            ctype = f"{_text(bs[0]).lower()}/{_text(bs[1]).lower()}"
    ms = d.get(b"MODSEQ")
    idate = d.get(b"INTERNALDATE")
    return HeaderRecord(
        uid=int(uid),
        flags=tuple(_text(f) for f in d.get(b"FLAGS", ())),
        size=int(d.get(b"RFC822.SIZE", 0)),
        internaldate=idate if isinstance(idate, datetime) else None,
        modseq=int(ms[0]) if ms else None,
        headers=bytes(d.get(_HEADER_KEY, b"")),
        content_type=ctype,
    )
