"""Qt item models for folders and messages (no widgets here).

Theory of operation
-------------------
:class:`FolderModel` lists :class:`client.mailbox.FolderEntry` rows. :class:`MessageModel`
lists :class:`client.mailbox.MessageSummary` rows plus, per row, what opening the message
proved: until then the protection column says "Not yet opened"; after
:meth:`MessageModel.set_opened` it shows the label derived from the security report
(:func:`ui.banner.protection_label`), and sender and subject come from the *protected*
header fields when the report has them (the outer subject of an encrypted message is
``[...]``). Opened content lives in memory only.

:meth:`MessageModel.set_filter` narrows :attr:`MessageModel.rows` (shown) from
:attr:`MessageModel.all_rows` (the folder); uid lookups are dictionaries, so a 10,000-row
folder updates one row in constant time.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QIcon, QPainter, QPixmap

from client.crypto.report import SecurityReport
from client.mailbox import FolderEntry, MessageSummary
from ui.banner import protection_label
from ui.i18n import tr

__all__ = ["FolderModel", "MessageModel", "MessageRow", "protection_icon"]

CTX = "Models"
Index = QModelIndex | QPersistentModelIndex

#: kind -> (colour, glyph)
_ICONS: dict[str, tuple[str, str]] = {
    "encrypted": ("#1b6e2d", "E"),
    "signed": ("#1b6e2d", "S"),
    "envelope": ("#34506e", "P"),
    "tls": ("#7a8591", "T"),
    "warn": ("#b07800", "?"),
    "bad": ("#a1130f", "!"),
    "error": ("#a1130f", "!"),
    "unopened": ("#c4c9cf", "·"),
}
_icon_cache: dict[str, QIcon] = {}


def protection_icon(kind: str) -> QIcon:
    """A small round badge: colour and letter per protection kind (drawn, no files)."""
    if kind not in _icon_cache:
        colour, glyph = _ICONS.get(kind, _ICONS["unopened"])
        pix = QPixmap(18, 18)
        pix.fill(Qt.GlobalColor.transparent)
        p = QPainter(pix)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setBrush(QColor(colour))
        p.setPen(Qt.PenStyle.NoPen)
        p.drawEllipse(1, 1, 16, 16)
        p.setPen(QColor("white"))
        font = QFont()
        font.setBold(True)
        font.setPixelSize(11)
        p.setFont(font)
        p.drawText(pix.rect(), Qt.AlignmentFlag.AlignCenter, glyph)
        p.end()
        _icon_cache[kind] = QIcon(pix)
    return _icon_cache[kind]


def _bold() -> QFont:
    font = QFont()
    font.setBold(True)
    return font


class FolderModel(QAbstractListModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.folders: list[FolderEntry] = []

    def set_unread(self, name: str, unread: int) -> None:
        for i, folder in enumerate(self.folders):
            if folder.name == name and folder.unread != unread:
                self.folders[i] = FolderEntry(folder.name, folder.total, unread)
                self.dataChanged.emit(self.index(i, 0), self.index(i, 0))

    def set_folders(self, folders: Sequence[FolderEntry]) -> None:
        self.beginResetModel()
        self.folders = list(folders)
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.folders)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        folder = self.folders[index.row()]
        name = tr(CTX, "Inbox") if folder.name.upper() == "INBOX" else folder.name
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{name} ({folder.unread})" if folder.unread else name
        if role in (Qt.ItemDataRole.AccessibleTextRole, Qt.ItemDataRole.ToolTipRole):
            return tr(CTX, "{name}, {unread} unread of {total}").format(
                name=name, unread=folder.unread, total=folder.total
            )
        if role == Qt.ItemDataRole.FontRole and folder.unread:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.UserRole:
            return folder.name
        return None


@dataclass
class MessageRow:
    summary: MessageSummary
    report: SecurityReport | None = None
    envelope: bool = False
    error: BaseException | None = None
    sender: str | None = None  # from protected headers, once opened
    subject: str | None = None
    seen: bool = False
    #: a Sealmail draft (Drafts folder): its id; opened in the composer, never the reader
    draft_id: str | None = None
    draft_encrypted: bool = False
    _label: tuple[str, str] | None = None  # computed once per report (paint calls data often)

    def protection(self) -> tuple[str, str]:
        if self._label is None:
            if self.draft_id is not None:
                self._label = (
                    ("encrypted", tr(CTX, "Draft (encrypted)"))
                    if self.draft_encrypted
                    else ("tls", tr(CTX, "Draft"))
                )
            elif self.error is not None:
                self._label = ("error", tr(CTX, "Cannot open"))
            else:
                self._label = protection_label(self.report, envelope=self.envelope)
        return self._label


class MessageModel(QAbstractTableModel):
    """The rows of one folder; :attr:`rows` are the rows shown (after the search filter)."""

    COLUMNS = ("protection", "sender", "subject", "date")
    ProtectionRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[MessageRow] = []  # shown
        self.all_rows: list[MessageRow] = []  # the whole folder, newest first
        self.folder: str | None = None
        self.query = ""
        self._bold: QFont | None = None
        self._row_of: dict[int, int] = {}  # uid -> index in rows
        self._by_uid: dict[int, MessageRow] = {}

    @staticmethod
    def prepare(summaries: Sequence[MessageSummary]) -> list[MessageRow]:
        """The folder's rows, newest first (pure Python: the worker builds them)."""
        return [MessageRow(s, seen=s.seen) for s in sorted(summaries, key=lambda s: -s.uid)]

    def set_messages(
        self, folder: str, summaries: Sequence[MessageSummary] | Sequence[MessageRow]
    ) -> None:
        rows = [r if isinstance(r, MessageRow) else MessageRow(r, seen=r.seen) for r in summaries]
        if rows and not isinstance(summaries[0], MessageRow):
            rows.sort(key=lambda r: -r.summary.uid)
        self.beginResetModel()
        self.folder = folder
        self.query = ""
        self.all_rows = rows
        self._by_uid = {r.summary.uid: r for r in rows}
        self.rows = list(rows)
        self._reindex()
        self.endResetModel()

    def _reindex(self) -> None:
        self._row_of = {r.summary.uid: i for i, r in enumerate(self.rows)}

    def set_filter(self, query: str, body_of: Callable[[int], str | None]) -> None:
        """Show only rows whose sender, subject or date — or, for messages opened in this
        session, the decrypted text held in memory (``body_of``) — contain every word."""
        words = query.casefold().split()
        self.beginResetModel()
        self.query = query
        if not words:
            self.rows = list(self.all_rows)
        else:
            self.rows = [r for r in self.all_rows if _matches(r, words, body_of)]
        self._reindex()
        self.endResetModel()

    @property
    def unread(self) -> int:
        return sum(not r.seen for r in self.all_rows)

    def row_of(self, uid: int) -> int | None:
        return self._row_of.get(uid)

    def set_opened(
        self,
        uid: int,
        report: SecurityReport | None,
        *,
        envelope: bool = False,
        error: BaseException | None = None,
    ) -> None:
        row = self._by_uid.get(uid)
        if row is None:
            return
        row.report, row.envelope, row.error = report, envelope, error
        row._label = None
        if report is not None:
            fields = {n.lower(): v for n, v in report.protected_headers}
            row.sender = fields.get("from")
            row.subject = fields.get("subject")
        self._changed(uid)

    def _changed(self, uid: int) -> None:
        i = self._row_of.get(uid)
        if i is not None:
            self.dataChanged.emit(self.index(i, 0), self.index(i, len(self.COLUMNS) - 1))

    def mark_seen(self, uid: int) -> None:
        row = self._by_uid.get(uid)
        if row is not None and not row.seen:
            row.seen = True
            self._changed(uid)

    # -- Qt model API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return [tr(CTX, "Protection"), tr(CTX, "From"), tr(CTX, "Subject"), tr(CTX, "Date")][
                section
            ]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        column = self.COLUMNS[index.column()]
        kind, label = row.protection()
        if role == self.ProtectionRole:
            return kind
        if role == Qt.ItemDataRole.UserRole:
            return row.summary.uid
        if role == Qt.ItemDataRole.FontRole and not row.seen:
            if self._bold is None:
                self._bold = _bold()
            return self._bold
        if role == Qt.ItemDataRole.DecorationRole and column == "protection":
            return protection_icon(kind)
        if role == Qt.ItemDataRole.ToolTipRole and column == "protection":
            return label
        if role == Qt.ItemDataRole.ToolTipRole and column == "sender":
            return self._sender(row)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return tr(CTX, "{label}, from {sender}, {subject}, {date}").format(
                label=label,
                sender=self._sender(row),
                subject=self._subject(row),
                date=self._date(row),
            )
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if column == "protection":
            return label
        if column == "sender":
            return _display_name(self._sender(row))
        if column == "subject":
            return self._subject(row)
        return self._date(row)

    @staticmethod
    def _sender(row: MessageRow) -> str:
        return row.sender or row.summary.sender

    @staticmethod
    def _subject(row: MessageRow) -> str:
        return row.subject or row.summary.subject or tr(CTX, "(no subject)")

    @staticmethod
    def _date(row: MessageRow) -> str:
        d = row.summary.date
        return d.strftime("%Y-%m-%d %H:%M") if d else ""


def _matches(row: MessageRow, words: list[str], body_of: Callable[[int], str | None]) -> bool:
    date = row.summary.date.strftime("%Y-%m-%d %H:%M") if row.summary.date else ""
    haystack = " ".join(
        x or "" for x in (row.sender, row.subject, row.summary.sender, row.summary.subject, date)
    ).casefold()
    if all(w in haystack for w in words):
        return True
    body = body_of(row.summary.uid)
    if not body:
        return False
    text = (haystack + " " + body).casefold()
    return all(w in text for w in words)


def _display_name(sender: str) -> str:
    """``Alice Arzt`` for ``Alice Arzt <alice@example.org>`` (the list's From column)."""
    name, address = email.utils.parseaddr(sender)
    return name or address or sender
