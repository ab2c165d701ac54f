"""Where the app's messages come from: the :class:`MailSource` seam, and a local mailbox.

Theory of operation
-------------------
The desktop app lists folders and messages through one small protocol,
:class:`MailSource` (three methods: ``folders``, ``summaries``, ``fetch``):

* :class:`LocalMailbox`, a directory with one sub-directory per folder and one
  ``NNNNNN.eml`` file per message (the offline demo mailbox, a place to drop test mail);
* :class:`ImapMailSource`, an account's IMAP server through the local cache:
  ``folders`` synchronises (:meth:`client.services.Session.sync`) and lists what the cache
  holds, ``summaries`` reads the cache only, ``fetch`` returns the cached body or fetches
  it (``BODY.PEEK[]``, the ``\\Seen`` flag is not set) and caches it exactly as received —
  ciphertext for protected mail; nothing decrypted is ever stored.

Every method may block (disk, network): the app calls them through its worker funnel,
one at a time, so a source needs no locking. SQLite handles are opened per call (the
funnel's worker thread may change between calls); the IMAP connection is kept and
re-opened once if it broke.

Summaries carry only what the *outer* header says (sender, subject, date): they are
claims, not facts. What protected a message is known only after it is opened
(:meth:`client.services.Session.message_open` and its security report).

:func:`build_plain` makes the plain RFC 5322 message the composer and the demo start from.
"""

from __future__ import annotations

import email.errors
import email.header
import email.policy
import email.utils
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from client.errors import TransportError, UsageError

if TYPE_CHECKING:
    from client.services import Session
    from client.store.cache import Cache
    from client.transport.imap import ImapSession

__all__ = [
    "FolderEntry",
    "ImapMailSource",
    "LocalMailbox",
    "MailSource",
    "MessageSummary",
    "build_plain",
    "save_bytes",
]

MAX_LOCAL_MESSAGE = 64 << 20


@dataclass(frozen=True)
class FolderEntry:
    name: str
    total: int
    unread: int = 0


@dataclass(frozen=True)
class MessageSummary:
    """One row of the message list, from the outer header (claims, not facts)."""

    uid: int
    sender: str
    subject: str
    date: datetime | None
    content_type: str
    seen: bool = False
    size: int = 0


class MailSource(Protocol):
    """What the main window needs from a mail store (local directory today, IMAP later)."""

    def folders(self) -> Sequence[FolderEntry]: ...

    def summaries(self, folder: str) -> Sequence[MessageSummary]: ...

    def fetch(self, folder: str, uid: int) -> bytes: ...


def _decode(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, email.errors.HeaderParseError):
        return value


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None


class LocalMailbox:
    """A directory of folders of ``.eml`` files; the uid is the number in the file name."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _folder(self, folder: str) -> Path:
        path = (self.root / folder).resolve()
        if path.parent != self.root.resolve():
            raise UsageError(f"no folder {folder!r} in this mailbox")
        return path

    def _files(self, folder: str) -> list[tuple[int, Path]]:
        path = self._folder(folder)
        if not path.is_dir():
            return []
        out = []
        for f in path.glob("*.eml"):
            if f.stem.isdigit():
                out.append((int(f.stem), f))
        return sorted(out)

    def folders(self) -> list[FolderEntry]:
        if not self.root.is_dir():
            return []
        names = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        # the inbox first, as every mail client shows it
        names.sort(key=lambda n: (n.upper() != "INBOX", n.lower()))
        return [FolderEntry(n, len(self._files(n)), len(self._files(n))) for n in names]

    def summaries(self, folder: str) -> list[MessageSummary]:
        parser = BytesHeaderParser(policy=email.policy.compat32)
        out = []
        for uid, path in self._files(folder):
            with path.open("rb") as fh:
                head = fh.read(256 * 1024)
            header_end = head.find(b"\r\n\r\n")
            if header_end < 0:
                header_end = head.find(b"\n\n")
            msg = parser.parsebytes(head[: header_end if header_end >= 0 else len(head)])
            out.append(
                MessageSummary(
                    uid=uid,
                    sender=_decode(msg.get("From")),
                    subject=_decode(msg.get("Subject")),
                    date=_date(msg.get("Date")),
                    content_type=msg.get_content_type(),
                    size=path.stat().st_size,
                )
            )
        return out

    def fetch(self, folder: str, uid: int) -> bytes:
        path = self._folder(folder) / f"{uid:06d}.eml"
        if not path.is_file():
            raise UsageError(f"message {uid} is not in folder {folder!r}")
        if path.stat().st_size > MAX_LOCAL_MESSAGE:
            raise UsageError(f"message {uid} is larger than {MAX_LOCAL_MESSAGE >> 20} MiB")
        return path.read_bytes()

    def add(self, folder: str, raw: bytes) -> int:
        """Store ``raw`` as the next message of ``folder`` (atomically); return its uid."""
        path = self._folder(folder)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = self._files(folder)
        uid = files[-1][0] + 1 if files else 1
        target = path / f"{uid:06d}.eml"
        tmp = target.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return uid


class ImapMailSource:
    """One account's IMAP folders, through the local cache (see the module docstring)."""

    def __init__(self, session: Session, email: str | None = None) -> None:
        self.session = session
        self.email = session.accounts().get(email).email
        self._imap: ImapSession | None = None
        self._selected: str | None = None

    def _cache(self) -> Cache:
        return self.session.cache()

    def folders(self) -> list[FolderEntry]:
        self.session.sync(self.email)
        cache = self._cache()
        try:
            out = []
            for f in cache.folders(self.email):
                if "\\Noselect" in f.flags or "\\NonExistent" in f.flags:
                    continue
                messages = cache.list(self.email, f.name)
                unread = sum(not m.seen for m in messages)
                out.append(FolderEntry(f.name, len(messages), unread))
        finally:
            cache.close()
        out.sort(key=lambda e: (e.name.upper() != "INBOX", e.name.lower()))
        return out

    def summaries(self, folder: str) -> list[MessageSummary]:
        cache = self._cache()
        try:
            rows = cache.list(self.email, folder)
        finally:
            cache.close()
        return [
            MessageSummary(
                uid=m.uid,
                sender=m.sender,
                subject=m.subject,
                date=_date(m.date),
                content_type=m.content_type,
                seen=m.seen,
                size=m.size,
            )
            for m in rows
        ]

    def _session(self) -> ImapSession:
        if self._imap is None:
            self._imap = self.session.account_imap(self.session.accounts().get(self.email))
            self._selected = None
        return self._imap

    def _fetch_live(self, folder: str, uid: int) -> bytes:
        imap = self._session()
        if self._selected != folder:
            imap.select(folder, readonly=True)
            self._selected = folder
        return imap.fetch_body(uid)

    def fetch(self, folder: str, uid: int) -> bytes:
        cache = self._cache()
        try:
            raw = cache.body(self.email, folder, uid)
            if raw is not None:
                return raw
            try:
                raw = self._fetch_live(folder, uid)
            except (TransportError, OSError):
                self.close()  # a broken connection: one fresh try
                raw = self._fetch_live(folder, uid)
            if len(raw) > MAX_LOCAL_MESSAGE:
                raise UsageError(f"message {uid} is larger than {MAX_LOCAL_MESSAGE >> 20} MiB")
            try:
                cache.put_body(self.email, folder, uid, raw)
            except UsageError:
                pass  # the server's size and the body disagree: show it, do not cache it
            return raw
        finally:
            cache.close()

    def close(self) -> None:
        imap, self._imap, self._selected = self._imap, None, None
        if imap is not None:
            try:
                imap.close()
            except (TransportError, OSError):
                pass


def build_plain(
    *,
    sender: str,
    to: Sequence[str],
    subject: str,
    body: str,
    date: datetime,
    cc: Sequence[str] = (),
    message_id: str | None = None,
    html: str | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
) -> bytes:
    """A plain RFC 5322 message (CRLF). ``attachments`` are (name, media type, data)."""
    msg = EmailMessage()
    msg["From"] = sender
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date)
    domain = sender.rpartition("@")[2].strip("> ") or "sealmail.invalid"
    msg["Message-ID"] = message_id or email.utils.make_msgid(domain=domain)
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for name, media_type, data in attachments:
        maintype, _, subtype = media_type.partition("/")
        msg.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=name,
        )
    return msg.as_bytes(policy=email.policy.SMTP)


def save_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write a file the user asked to save: atomically (temp, fsync, rename), mode 0600."""
    from keystore.profile import atomic_write

    target = Path(path)
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise UsageError(
            f"cannot save {target.name}: {exc.strerror}",
            hint="Choose a folder you can write to.",
        ) from exc
    return target
