"""The main window: folders | message list | reader, like the Outlook people know.

Theory of operation
-------------------
The window presents one :class:`client.mailbox.MailSource` (the local demo mailbox today,
IMAP later) and one :class:`client.services.Session`. Every call into either goes through
the :class:`ui.workers.Funnel`; results come back as signals. Selecting a folder lists it;
the messages of the folder are then opened one by one in the background (lowest priority)
so the protection column fills in from each security report; selecting a message opens it
first (highest priority). Opened messages are kept in memory only, for this window's life.

``loaded`` fires once the first folder is listed and the selected message is shown: the
``--screenshot`` mode and the tests wait for it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QLabel,
    QListView,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTableView,
    QToolBar,
    QWidget,
)

from ui.i18n import tr
from ui.models import FolderModel, MessageModel
from ui.reader import ReaderView
from ui.workers import Funnel

if TYPE_CHECKING:  # the services load in the worker: first paint does not wait for them
    from client.mailbox import MailSource
    from client.mime.parse import OpenedMessage
    from client.mime.render import Readable
    from client.services import Session

__all__ = ["MainWindow"]

CTX = "MainWindow"
PRIORITY_SELECTED = 10
PRIORITY_BACKGROUND = -10


class MainWindow(QMainWindow):
    loaded = Signal()
    message_shown = Signal(int)  # uid

    def __init__(
        self,
        session: Session | None,
        source: MailSource | None,
        funnel: Funnel,
        *,
        account: str = "",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.session = session
        self.source = source
        self.funnel = funnel
        self.clock = clock
        self.account = account
        self.opened: dict[tuple[str, int], tuple[OpenedMessage, Readable] | BaseException] = {}
        self._want_uid: int | None = None
        self._loaded_once = False
        self._secondary: list[QWidget] = []
        title = tr(CTX, "Sealmail")
        self.setWindowTitle(f"{title} — {account}" if account else title)
        self.setAccessibleName(tr(CTX, "Sealmail main window"))

        self.folder_model = FolderModel(self)
        self.folder_view = QListView(self)
        self.folder_view.setModel(self.folder_model)
        self.folder_view.setAccessibleName(tr(CTX, "Folders"))
        self.folder_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.folder_view.selectionModel().currentChanged.connect(self._folder_changed)

        self.message_model = MessageModel(self)
        self.message_view = QTableView(self)
        self.message_view.setModel(self.message_model)
        self.message_view.setAccessibleName(tr(CTX, "Messages"))
        self.message_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.message_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.message_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.message_view.verticalHeader().hide()
        self.message_view.setShowGrid(False)
        self.message_view.setAlternatingRowColors(True)
        self.message_view.setWordWrap(False)
        self.message_view.verticalHeader().setDefaultSectionSize(
            self.message_view.fontMetrics().height() + 8
        )
        header = self.message_view.horizontalHeader()
        header.setAccessibleName(tr(CTX, "Message list columns"))
        # fixed widths: ResizeToContents re-measures every row on each update (slow)
        metrics = self.message_view.fontMetrics()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(0, metrics.horizontalAdvance(tr(CTX, "Signed (unverified)")) + 48)
        header.resizeSection(1, 210)
        header.resizeSection(3, metrics.horizontalAdvance("2026-12-31 23:59") + 24)
        self.message_view.selectionModel().currentRowChanged.connect(self._message_changed)

        self.reader = ReaderView(funnel, self)
        self.reader.open_envelope.connect(self.open_envelope_data)

        list_and_reader = QSplitter(Qt.Orientation.Vertical, self)
        list_and_reader.addWidget(self.message_view)
        list_and_reader.addWidget(self.reader)
        list_and_reader.setStretchFactor(0, 2)
        list_and_reader.setStretchFactor(1, 5)
        list_and_reader.setSizes([290, 460])
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.folder_view)
        splitter.addWidget(list_and_reader)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([170, 1000])
        self.setCentralWidget(splitter)
        self.setTabOrder(self.folder_view, self.message_view)
        self.setTabOrder(self.message_view, self.reader.body)

        self._build_toolbar()
        self.status = QLabel(self)
        self.status.setAccessibleName(tr(CTX, "Status"))
        self.statusBar().addWidget(self.status, 1)
        self.note = QLabel(self)
        self.note.setAccessibleName(tr(CTX, "Note"))
        self.note.setWordWrap(False)
        self.note.hide()
        self.statusBar().addPermanentWidget(self.note)
        self.funnel.busy_changed.connect(self._busy)
        QShortcut(QKeySequence("Ctrl+1"), self, self.folder_view.setFocus)
        QShortcut(QKeySequence("Ctrl+2"), self, self.message_view.setFocus)
        QShortcut(QKeySequence("Ctrl+3"), self, self.reader.body.setFocus)
        self.resize(1280, 800)

    # -- chrome
    def _build_toolbar(self) -> None:
        bar = QToolBar(tr(CTX, "Main toolbar"), self)
        bar.setAccessibleName(tr(CTX, "Main toolbar"))
        bar.setMovable(False)
        self.addToolBar(bar)

        def action(text: str, shortcut: Any, slot: Callable[[], None], tip: str) -> QAction:
            act = QAction(text, self)
            act.setShortcut(QKeySequence(shortcut))
            act.setToolTip(f"{tip} ({QKeySequence(shortcut).toString()})")
            act.setStatusTip(tip)
            act.triggered.connect(slot)
            bar.addAction(act)
            return act

        self.new_action = action(
            tr(CTX, "New message"), QKeySequence.StandardKey.New, self.new_message,
            tr(CTX, "Write a new message"),
        )  # fmt: skip
        self.keys_action = action(
            tr(CTX, "Keys and certificates"), "Ctrl+K", self.show_keys,
            tr(CTX, "Manage your keys and your contacts' keys"),
        )  # fmt: skip
        self.open_action = action(
            tr(CTX, "Open encrypted file…"), QKeySequence.StandardKey.Open, self.open_file,
            tr(CTX, "Open an encrypted attachment or a saved message"),
        )  # fmt: skip
        self.refresh_action = action(
            tr(CTX, "Refresh"), QKeySequence.StandardKey.Refresh, self.load, tr(CTX, "Refresh")
        )
        for act in bar.actions():
            widget = bar.widgetForAction(act)
            if widget is not None:
                widget.setAccessibleName(act.text().rstrip("…"))

    def _busy(self, busy: bool) -> None:
        if busy:
            self.status.setText(tr(CTX, "Working…"))
        elif self.message_model.folder:
            n = len(self.message_model.rows)
            self.status.setText(tr(CTX, "{n} messages").format(n=n))

    def set_note(self, text: str, *, warning: bool = False) -> None:
        """A lasting note in the status bar (e.g. the demo's servers, or why they are off)."""
        self.note.setText(text)
        self.note.setToolTip(text)
        self.note.setStyleSheet(
            "QLabel { background: #fff3d6; color: #8a5a00; padding: 1px 6px; }"
            if warning
            else "QLabel { color: #34506e; padding: 1px 6px; }"
        )
        self.note.setVisible(bool(text))

    def show_error(self, exc: BaseException) -> None:
        hint = getattr(exc, "hint", "")
        QMessageBox.warning(self, tr(CTX, "Sealmail"), f"{exc}\n\n{hint}".strip())

    # -- loading
    def attach(self, session: Session, source: MailSource) -> None:
        """Give the window its session and mail source (after the profile opened) and load."""
        self.session, self.source = session, source
        self.opened.clear()
        self.load()

    def load(self) -> None:
        if self.source is None:
            return
        self.funnel.submit(
            "list-folders", self.source.folders, on_success=self._folders_listed,
            on_failure=self.show_error,
        )  # fmt: skip

    def _folders_listed(self, folders: Any) -> None:
        current = self.message_model.folder
        self.folder_model.set_folders(folders)
        names = [f.name for f in self.folder_model.folders]
        row = names.index(current) if current in names else 0
        if names:
            self.folder_view.setCurrentIndex(self.folder_model.index(row, 0))

    def _folder_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        folder = current.data(Qt.ItemDataRole.UserRole)
        self.funnel.submit(
            "list-messages",
            lambda: self.source.summaries(folder),
            on_success=lambda summaries: self._messages_listed(folder, summaries),
            on_failure=self.show_error,
        )

    def _messages_listed(self, folder: str, summaries: Any) -> None:
        self.message_model.set_messages(folder, summaries)
        self.reader.clear()
        # open everything in the background so the protection column fills in
        for row in self.message_model.rows:
            self._open(folder, row.summary.uid, priority=PRIORITY_BACKGROUND)
        if self.message_model.rows:
            self.select_row(self._first_protected_row())
        elif not self._loaded_once:
            self._loaded_once = True
            self.loaded.emit()

    def _first_protected_row(self) -> int:
        # prefer showing a protected message first: the newest encrypted one, if any
        for i, row in enumerate(self.message_model.rows):
            if row.summary.content_type in ("multipart/encrypted", "application/pkcs7-mime"):
                return i
        return 0

    def select_row(self, row: int) -> None:
        index = self.message_model.index(row, 1)
        self.message_view.selectionModel().setCurrentIndex(
            index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.message_view.scrollTo(index)

    def select_uid(self, uid: int) -> None:
        row = self.message_model.row_of(uid)
        if row is not None:
            self.select_row(row)

    def _message_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid() or self.message_model.folder is None:
            return
        row = self.message_model.rows[current.row()]
        uid = row.summary.uid
        self._want_uid = uid
        key = (self.message_model.folder, uid)
        if key in self.opened:
            self._show(key)
        else:
            self.reader.show_loading(row.summary.sender, row.summary.subject)
            self._open(self.message_model.folder, uid, priority=PRIORITY_SELECTED)

    def _open(self, folder: str, uid: int, *, priority: int) -> None:
        session, source, now = self.session, self.source, self.clock()

        def work() -> tuple[OpenedMessage, Readable]:
            from client.mime.render import readable

            opened = session.message_open(source.fetch(folder, uid), now=now)
            return opened, readable(opened.message)

        self.funnel.submit(
            "open-message",
            work,
            on_success=lambda result: self._opened(folder, uid, result),
            on_failure=lambda exc: self._opened(folder, uid, exc),
            priority=priority,
        )

    def _opened(self, folder: str, uid: int, result: Any) -> None:
        key = (folder, uid)
        if key in self.opened:  # opened twice (background + selection): first one wins
            return
        self.opened[key] = result
        if folder == self.message_model.folder:
            if isinstance(result, BaseException):
                self.message_model.set_opened(uid, None, error=result)
            else:
                opened, view = result
                self.message_model.set_opened(uid, opened.report, envelope=view.has_envelope)
            if uid == self._want_uid:
                self._show(key)

    def _show(self, key: tuple[str, int]) -> None:
        result = self.opened[key]
        row = self.message_model.row_of(key[1])
        if isinstance(result, BaseException):
            summary = self.message_model.rows[row].summary if row is not None else None
            self.reader.show_error(
                result,
                raw_headers={"from": summary.sender, "subject": summary.subject}
                if summary
                else None,
            )
        else:
            self.reader.show_opened(*result)
        self.message_model.mark_seen(key[1])
        unread = sum(not r.seen for r in self.message_model.rows)
        self.folder_model.set_unread(key[0], unread)
        self.message_shown.emit(key[1])
        if not self._loaded_once:
            self._loaded_once = True
            self.loaded.emit()

    # -- other windows
    def _keep(self, window: QWidget) -> QWidget:
        self._secondary = [w for w in self._secondary if w.isVisible()]
        self._secondary.append(window)
        window.show()
        return window

    def new_message(self) -> Any:
        if self.session is None:
            return None
        from ui.composer import ComposerWindow

        return self._keep(ComposerWindow(self.session, self.funnel, sender=self.account))

    def show_keys(self) -> Any:
        if self.session is None:
            return None
        from ui.keys import KeyManager

        return self._keep(KeyManager(self.session, self.funnel, clock=self.clock))

    def open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            tr(CTX, "Open encrypted file"),
            "",
            tr(CTX, "Encrypted files (*.p7m *.pgp *.gpg *.asc *.eml *.html);;All files (*)"),
        )
        if path:
            self.open_envelope_path(path)

    def open_envelope_path(self, path: str) -> Any:
        from ui.envelope import EnvelopeWindow

        window = EnvelopeWindow(self.session, self.funnel, clock=self.clock)
        window.open_path(path)
        return self._keep(window)

    def open_envelope_data(self, name: str, data: bytes) -> Any:
        from ui.envelope import EnvelopeWindow

        window = EnvelopeWindow(self.session, self.funnel, clock=self.clock)
        window.open_data(name, data)
        return self._keep(window)
