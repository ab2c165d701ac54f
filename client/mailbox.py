"""Where the app's messages come from: the :class:`MailSource` seam, and a local mailbox.

Theory of operation
-------------------
The desktop app lists folders and messages through one small protocol,
:class:`MailSource` (three methods: ``folders``, ``summaries``, ``fetch``). Today the only
implementation is :class:`LocalMailbox`, a directory with one sub-directory per folder and
one ``NNNNNN.eml`` file per message (the demo mailbox, and a place to drop test mail). An
IMAP source over :mod:`client.store.cache` and :mod:`client.transport.sync` plugs in
behind the same three methods later; the window does not change.

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
from typing import Protocol

from client.errors import UsageError

__all__ = [
    "FolderEntry",
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
