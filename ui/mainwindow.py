"""The main window: folders | search + message list | reader, like the Outlook people know.

Theory of operation
-------------------
The window presents one :class:`client.mailbox.MailSource` (the local demo mailbox, or an
account over IMAP) and one :class:`client.services.Session`. Every call into either goes
through the :class:`ui.workers.Funnel`; results come back as signals. Selecting a folder
lists it (rows built and sorted in the worker); the rows *on screen* (and a screenful
below) are then opened in the background, in batches of :data:`BATCH` per job (lowest
priority; never one job per message of a 10,000-message folder), so the protection column
fills in from each security report; scrolling opens the rows that come into view.
Selecting a message opens it first (highest priority). Opened messages are kept in memory
only, for this window's life. What a large one holds (the opened message, its attachments
and images: over :data:`HEAVY_MIN`) counts against :data:`HEAVY_BUDGET`; beyond it the
least recently shown let their content go. Their row label, security report and text (for
the search) stay; showing one again opens it again. Without this a session that opened a
few 50 MB attachments held them all.

The search field filters the folder's rows by sender, subject and date (from the cache)
and, for messages opened in this session, by their decrypted text held in memory — never
written anywhere. Menus: File (new, open, add account, settings, quit), View (search,
refresh, keys), Help (shortcuts, about). :data:`SHORTCUTS` lists the keyboard shortcuts.

``loaded`` fires once the first folder is listed and the selected message is shown: the
``--screenshot`` mode and the tests wait for it.

Drafts: in the account's Drafts folder (:meth:`Session.drafts_folder_name`) the rows that
are Sealmail drafts (:meth:`Session.drafts_list`, listed in the worker with the folder)
are never opened here — an encrypted draft would only show its wrapper. Selecting one
shows a note; Enter or a double-click opens it in the composer
(:meth:`ui.composer.ComposerWindow.open_draft`), which decrypts it in memory.

New mail: with an IMAP account (the demo included) a :class:`client.transport.watch.
FolderWatcher` (IMAP IDLE, reconnecting) watches INBOX from its own thread. Its
``on_new`` only emits a Qt signal (queued to the GUI thread); the GUI then synchronises
that folder through the funnel (:meth:`Session.sync_folder`) and updates the list — the
selection, opened messages and what was read here are kept — and the unread count.
Closing the window stops the watcher (its thread ends within one IDLE tick).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from client.errors import SealmailError
from ui.i18n import tr
from ui.models import FolderModel, MessageModel, MessageRow
from ui.reader import ReaderView
from ui.workers import Funnel, settle_heap

if TYPE_CHECKING:  # the services load in the worker: first paint does not wait for them
    from client.mailbox import MailSource
    from client.mime.parse import OpenedMessage
    from client.mime.render import Readable
    from client.services import Session
    from client.transport.watch import FolderWatcher

__all__ = ["MainWindow"]

log = logging.getLogger(__name__)

CTX = "MainWindow"
WATCHED = "INBOX"  # the folder watched for new mail (IMAP IDLE)
PRIORITY_SELECTED = 10
PRIORITY_BACKGROUND = -10
VISIBLE_MIN = 40  # rows opened in the background when the view has no size yet
BATCH = 8  # messages opened per background job
SETTLE_ROWS = 1000  # a listing this long is left out of later full GCs (settle_heap)
HEAVY_MIN = 1 << 20  # an opened message holding this much content counts against...
HEAVY_BUDGET = 160 << 20  # ...this, for all of them but the one on screen

#: (keys, what they do): shown by Help > Keyboard shortcuts (F1)
SHORTCUTS = (
    ("Ctrl+N", "Write a new message"),
    ("Ctrl+O", "Open an encrypted file"),
    ("Ctrl+K", "Keys and certificates"),
    ("Ctrl+F", "Search in this folder (Esc clears, Enter or Down goes to the list)"),
    ("F5", "Refresh (synchronise the account)"),
    ("Ctrl+1 / Ctrl+2 / Ctrl+3", "Go to the folders / the message list / the message"),
    ("Up / Down, Page Up / Page Down, Home / End", "Move in the list"),
    ("Ctrl+S", "Save the selected attachment"),
    ("Ctrl+,", "Settings"),
    ("Ctrl+Shift+A", "Add a mail account"),
    ("F1", "This list"),
    ("Ctrl+Q", "Quit"),
)


class _WatchRelay(QObject):
    """Lives on the GUI thread; the watcher's thread emits, Qt queues to the GUI thread."""

    new_mail = Signal(object)  # client.transport.watch.NewMail
    failed = Signal(object)  # TransportError


class MainWindow(QMainWindow):
    loaded = Signal()
    message_shown = Signal(int)  # uid
    folder_refreshed = Signal(str)  # a folder re-listed after new mail (or a draft change)
    watching = Signal(object)  # the FolderWatcher once started, or the error

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
        # large opened messages, least recently shown first: key -> octets held
        self._heavy: OrderedDict[tuple[str, int], int] = OrderedDict()
        self._dropped: set[tuple[str, int]] = set()  # opened, content let go (_trim)
        self._texts: dict[tuple[str, int], str] = {}  # their text, for the search
        self._want_uid: int | None = None
        self._loaded_once = False
        self._secondary: list[QWidget] = []
        self._drafts: dict[int, str] = {}  # uid -> draft id, in the Drafts folder shown
        self.watcher: FolderWatcher | None = None
        self._watch_job = False
        self._closed = False
        self._relay = _WatchRelay(self)
        self._relay.new_mail.connect(self._new_mail)
        self._relay.failed.connect(self._watch_failed)
        self.loaded.connect(settle_heap)  # and what loading made
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
        self.message_view.activated.connect(self._activated)  # Enter, double-click

        self.reader = ReaderView(funnel, self)
        self.reader.open_envelope.connect(self.open_envelope_data)

        self.search = QLineEdit(self)
        self.search.setAccessibleName(tr(CTX, "Search in this folder"))
        self.search.setPlaceholderText(
            tr(CTX, "Search sender, subject, date and opened messages' text (Ctrl+F)")
        )
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self.apply_search)
        self.search.textChanged.connect(lambda _text: self._search_timer.start())
        self.search.returnPressed.connect(self._search_to_list)
        self.search.installEventFilter(self)
        list_box = QWidget(self)
        list_layout = QVBoxLayout(list_box)
        list_layout.setContentsMargins(0, 0, 0, 0)
        list_layout.setSpacing(2)
        list_layout.addWidget(self.search)
        list_layout.addWidget(self.message_view)
        # lazy rows: only the messages on screen are opened in the background
        self._requested: set[tuple[str, int]] = set()
        self._generation = 0  # of open_visible calls: older queued batches stop early
        self._visible_timer = QTimer(self)
        self._visible_timer.setSingleShot(True)
        self._visible_timer.setInterval(80)
        self._visible_timer.timeout.connect(self.open_visible)
        self.message_view.verticalScrollBar().valueChanged.connect(
            lambda _v: self._visible_timer.start()
        )
        self.message_view.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)

        list_and_reader = QSplitter(Qt.Orientation.Vertical, self)
        list_and_reader.addWidget(list_box)
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
        self.setTabOrder(self.folder_view, self.search)
        self.setTabOrder(self.search, self.message_view)
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
        self._build_menus()
        self.resize(1280, 800)
        # PySide6 builds a Python type (and its ~70 enums) the first time an object of it
        # reaches Python: QWidget's took 20-30 ms, and it came first in open_visible, on
        # the GUI thread, right when the first 10,000-row listing lands. Pay it here, before
        # anything is loading, and keep the wrapper.
        self._list_viewport = self.message_view.viewport()
        settle_heap()  # modules, classes and this window: out of the full GCs while loading

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
        else:
            self._update_status()

    def _update_status(self) -> None:
        if self.message_model.folder and not self.funnel.pending:
            n = len(self.message_model.all_rows)
            text = (tr(CTX, "1 message, {unread} unread") if n == 1
                    else tr(CTX, "{n} messages, {unread} unread"))  # fmt: skip
            self.status.setText(text.format(n=n, unread=self.message_model.unread))

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
        self.stop_watch(wait=False)
        self.session, self.source = session, source
        self.opened.clear()
        self._forget(lambda _key: True)
        self._requested.clear()
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
            if WATCHED in names:
                self.start_watch()
        elif not self._loaded_once:  # an empty mailbox (no account yet) is loaded too
            self._loaded_once = True
            self.loaded.emit()

    def _folder_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        folder = current.data(Qt.ItemDataRole.UserRole)
        self.funnel.submit(
            "list-messages",
            self._rows_job(folder),
            on_success=lambda rows: self._messages_listed(folder, rows),
            on_failure=self.show_error,
        )

    def _rows_job(self, folder: str, *, sync: bool = False) -> Callable[[], list[MessageRow]]:
        """The worker's job: (sync,) list and sort the rows, mark Sealmail drafts."""
        session, source = self.session, self.source
        email = getattr(source, "email", None)  # an IMAP account (client.mailbox)

        def work() -> list[MessageRow]:  # listing and sorting 10,000 rows: not on the GUI
            if sync and session is not None and email:
                session.sync_folder(folder, email=email)
            rows = MessageModel.prepare(source.summaries(folder))
            if session is not None and email and folder == session.drafts_folder_name(email):
                try:  # the server says which rows are Sealmail drafts (offline: none known)
                    drafts = {d.uid: d for d in session.drafts_list(email) if d.draft_id}
                except (SealmailError, OSError) as exc:
                    log.warning("drafts not listed: %s", type(exc).__name__)
                    drafts = {}
                for row in rows:
                    d = drafts.get(row.summary.uid)
                    if d is not None:
                        row.draft_id, row.draft_encrypted = d.draft_id, d.encrypted
                        if d.encrypted:  # the real subject is inside, encrypted
                            row.subject = tr(CTX, "(encrypted draft)")
            return rows

        return work

    def _messages_listed(self, folder: str, rows: Any) -> None:
        self._drafts_seen(rows)
        self.message_model.set_messages(folder, rows)
        if self.search.text():
            self.message_model.set_filter(self.search.text(), self._body_of)
        self.reader.clear()
        self._requested = {k for k in self._requested if k in self.opened or k in self._dropped}
        if self.message_model.rows:
            self.select_row(self._first_protected_row())
        elif not self._loaded_once:
            self._loaded_once = True
            self.loaded.emit()
        # open what is on screen in the background so the protection column fills in
        self.open_visible()
        if len(rows) >= SETTLE_ROWS:
            settle_heap()  # the rows live as long as the folder is shown

    def open_visible(self) -> None:
        """Open the rows on screen (and a screenful below) that were not opened yet."""
        model, view = self.message_model, self.message_view
        if model.folder is None or not model.rows:
            return
        height = max(view.verticalHeader().defaultSectionSize(), 1)
        top = view.rowAt(0)
        top = max(top, 0)
        screen = max(self._list_viewport.height() // height + 1, VISIBLE_MIN)
        # in batches, one after the other: each batch is submitted when the one before it
        # is done. One job per message, or all batches at once, made the GUI thread wait
        # for the GIL between submits (the worker starts at the first one): 22 ms for the
        # ten batches of a 10,000-row folder. A newer call ends the older chain.
        uids = [
            row.summary.uid
            for row in model.rows[top : top + 2 * screen]
            if (model.folder, row.summary.uid) not in self._requested and row.draft_id is None
        ]
        if not uids:
            return
        self._generation += 1
        self._open_batch(model.folder, uids, self._generation)

    def _open_batch(self, folder: str, pending: list[int], generation: int) -> None:
        """Open the first BATCH of ``pending``; the rest follows when they are done."""
        session, source, now = self.session, self.source, self.clock()
        uids, rest = pending[:BATCH], pending[BATCH:]
        self._requested.update((folder, uid) for uid in uids)

        def work() -> list[tuple[int, Any]]:
            from client.mime.render import readable

            out: list[tuple[int, Any]] = []
            for uid in uids:
                if generation != self._generation:  # scrolled on: these may wait
                    break
                try:
                    opened = session.message_open(source.fetch(folder, uid), now=now)
                    out.append((uid, (opened, readable(opened.message))))
                except Exception as exc:  # shown in the row and the reader, as for one
                    out.append((uid, exc))
            return out

        def done(results: Any) -> None:
            if isinstance(results, BaseException):
                results = []
            for uid, result in results:
                self._opened(folder, uid, result)
            finished = {uid for uid, _ in results}
            self._requested.difference_update((folder, u) for u in uids if u not in finished)
            todo = [u for u in rest if (folder, u) not in self._requested]
            if todo and generation == self._generation:
                self._open_batch(folder, todo, generation)

        self.funnel.submit(
            "open-message", work, on_success=done, on_failure=done, priority=PRIORITY_BACKGROUND
        )

    def _first_protected_row(self) -> int:
        # prefer showing a protected message first: the newest encrypted one on screen
        for i, row in enumerate(self.message_model.rows[:VISIBLE_MIN]):
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
        if row.draft_id is not None:  # a draft opens in the composer, never here
            from ui.banner import BannerSpec
            from ui.banner import Level as BannerLevel

            headline = (
                tr(CTX, "Draft, stored encrypted to your own key")
                if row.draft_encrypted
                else tr(CTX, "Draft (not encrypted: nothing in it needed protection)")
            )
            self.reader.show_note(
                row.summary.sender,
                row.subject or row.summary.subject,
                tr(CTX, "Press Enter or double-click the draft to continue writing it in the "
                   "composer (an encrypted draft is decrypted there, in memory only)."),
                banner=BannerSpec(BannerLevel.INFO, headline),
                date=MessageModel._date(row),
            )  # fmt: skip
            if not self._loaded_once:
                self._loaded_once = True
                self.loaded.emit()
            return
        if key in self.opened:
            self._show(key)
        else:
            self.reader.show_loading(row.summary.sender, row.summary.subject)
            self._open(self.message_model.folder, uid, priority=PRIORITY_SELECTED)

    def _open(self, folder: str, uid: int, *, priority: int) -> None:
        session, source, now = self.session, self.source, self.clock()
        self._requested.add((folder, uid))

        def done(result: Any) -> None:
            self._opened(folder, uid, result)

        def work() -> tuple[OpenedMessage, Readable]:
            from client.mime.render import readable

            opened = session.message_open(source.fetch(folder, uid), now=now)
            return opened, readable(opened.message)

        self.funnel.submit(
            "open-message",
            work,
            on_success=done,
            on_failure=done,
            priority=priority,
        )

    def _opened(self, folder: str, uid: int, result: Any) -> None:
        key = (folder, uid)
        if key in self.opened:  # opened twice (background + selection): first one wins
            return
        self.opened[key] = result
        self._dropped.discard(key)
        self._texts.pop(key, None)
        if not isinstance(result, BaseException):
            self._weigh(key, result)
        if folder == self.message_model.folder:
            if isinstance(result, BaseException):
                self.message_model.set_opened(uid, None, error=result)
            else:
                opened, view = result
                self.message_model.set_opened(uid, opened.report, envelope=view.has_envelope)
            if uid == self._want_uid:
                self._show(key)

    def _weigh(self, key: tuple[str, int], result: tuple[OpenedMessage, Readable]) -> None:
        opened, view = result
        size = len(opened.message) + sum(a.size for a in view.attachments)
        size += sum(len(b) for b in view.images.values())
        if size >= HEAVY_MIN:
            self._heavy[key] = size
            self._trim()

    def _trim(self) -> None:
        """Let the least recently shown large messages go until the rest fit the budget."""
        shown = (self.message_model.folder, self._want_uid)
        total = sum(size for key, size in self._heavy.items() if key != shown)
        for key in list(self._heavy):
            if total <= HEAVY_BUDGET:
                break
            if key == shown:
                continue
            total -= self._heavy.pop(key)
            result = self.opened.pop(key, None)
            if isinstance(result, tuple):
                text = result[1].text or result[1].html
                if text:
                    self._texts[key] = text
            self._dropped.add(key)

    def _forget(self, which: Callable[[tuple[str, int]], bool]) -> None:
        for key in [k for k in self._heavy if which(k)]:
            del self._heavy[key]
        self._dropped = {k for k in self._dropped if not which(k)}
        self._texts = {k: v for k, v in self._texts.items() if not which(k)}

    def _show(self, key: tuple[str, int]) -> None:
        result = self.opened[key]
        if key in self._heavy:
            self._heavy.move_to_end(key)
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
        self.folder_model.set_unread(key[0], self.message_model.unread)
        if not self.message_model.query:
            self._update_status()
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

    def _drafts_seen(self, rows: list[MessageRow]) -> None:
        self._drafts = {r.summary.uid: r.draft_id for r in rows if r.draft_id is not None}

    def _activated(self, index: QModelIndex) -> None:
        if index.isValid() and 0 <= index.row() < len(self.message_model.rows):
            row = self.message_model.rows[index.row()]
            if row.draft_id is not None:
                self.open_draft(row.draft_id)

    def open_draft(self, draft_id: str) -> Any:
        """Continue writing a draft: the composer loads it from the server (decrypted there)."""
        composer = self.new_message()
        if composer is None:
            return None
        composer.open_draft(draft_id)
        # a saved or sent draft changes the Drafts folder: list it again if it is shown
        composer.draft_saved.connect(lambda _v: self._drafts_changed())
        composer.send_done.connect(lambda _v: QTimer.singleShot(0, self._drafts_changed))
        return composer

    def _drafts_changed(self) -> None:
        folder = self.message_model.folder
        if folder is not None and self._drafts:
            self.refresh_folder(folder)

    # -- new mail (client.transport.watch, IMAP IDLE on its own thread)
    def start_watch(self) -> None:
        """Watch INBOX for new mail (an IMAP account only); once per source."""
        session, source = self.session, self.source
        email = getattr(source, "email", None)
        if session is None or not email or self.watcher is not None or self._watch_job:
            return
        relay = self._relay
        self._watch_job = True

        def work() -> FolderWatcher:
            watcher = session.watch_folder(
                relay.new_mail.emit, email=email, folder=WATCHED, on_error=relay.failed.emit
            )
            return watcher.start()

        def started(value: Any) -> None:
            self._watch_job = False
            if isinstance(value, BaseException):
                log.warning("new mail is not watched: %s", type(value).__name__)
            elif self._closed or self.source is not source:
                value.stop_event.set()  # too late: the window closed or changed account
                self.funnel.submit("watch-stop", lambda: value.stop(10.0))
            else:
                self.watcher = value
            self.watching.emit(value)

        self.funnel.submit("watch-start", work, on_success=started, on_failure=started)

    def stop_watch(self, *, wait: bool = True) -> None:
        """Stop the watcher; ``wait``: until its thread ended (else the funnel waits)."""
        watcher, self.watcher = self.watcher, None
        if watcher is None:
            return
        watcher.stop_event.set()  # the loop notices within one IDLE tick
        if wait:
            watcher.stop(10.0)
        else:
            self.funnel.submit("watch-stop", lambda: watcher.stop(10.0))

    def _watch_failed(self, exc: BaseException) -> None:
        self.statusBar().showMessage(
            tr(CTX, "New mail: the server cannot be reached ({what}); retrying.").format(
                what=type(exc).__name__
            ),
            15_000,
        )

    def _new_mail(self, news: Any) -> None:
        if self.watcher is None or self._closed:
            return
        self.refresh_folder(news.folder, reset=news.reset)

    def refresh_folder(self, folder: str, *, reset: bool = False) -> None:
        """Synchronise ``folder`` and list it again (new mail, a changed draft); ``reset``:
        the folder's UIDs were renumbered (UIDVALIDITY changed), nothing opened is kept."""
        if self.source is None:
            return
        if reset:
            self.opened = {k: v for k, v in self.opened.items() if k[0] != folder}
            self._forget(lambda key: key[0] == folder)
            self._requested = {k for k in self._requested if k[0] != folder}
        self.funnel.submit(
            "sync-folder",
            self._rows_job(folder, sync=True),
            on_success=lambda rows: self._folder_rows_refreshed(folder, rows, reset=reset),
            on_failure=lambda exc: log.warning("folder refresh failed: %s", type(exc).__name__),
        )

    def _folder_rows_refreshed(self, folder: str, rows: Any, *, reset: bool = False) -> None:
        if folder == self.message_model.folder:
            model = self.message_model
            old = {} if reset else {r.summary.uid: r for r in model.all_rows}
            if reset:
                self._want_uid = None
                self.reader.clear()
            for row in rows:  # keep what was opened and read here (never set on the server)
                was = old.get(row.summary.uid)
                if was is not None:
                    row.seen = row.seen or was.seen
                    row.report, row.envelope, row.error = was.report, was.envelope, was.error
                    row.sender = was.sender
                    row.subject = row.subject if row.draft_id else was.subject
            want, query = self._want_uid, self.search.text()
            top = self.message_view.verticalScrollBar().value()
            self._drafts_seen(rows)
            model.set_messages(folder, rows)
            if query:
                model.set_filter(query, self._body_of)
            self._requested = {k for k in self._requested if k in self.opened or k in self._dropped}
            at = model.row_of(want) if want is not None else None
            if at is not None:
                index = model.index(at, 1)
                selection = self.message_view.selectionModel()
                selection.blockSignals(True)  # the reader keeps showing it as it is
                selection.setCurrentIndex(
                    index,
                    QItemSelectionModel.SelectionFlag.ClearAndSelect
                    | QItemSelectionModel.SelectionFlag.Rows,
                )
                selection.blockSignals(False)
            elif want is not None:
                self.reader.clear()
                self._want_uid = None
            self.message_view.verticalScrollBar().setValue(top)
            self.folder_model.set_unread(folder, model.unread)
            self._list_viewport.update()
            self._update_status()
            self.open_visible()
        else:
            self.folder_model.set_unread(folder, sum(not r.seen for r in rows))
        self.folder_refreshed.emit(folder)

    def closeEvent(self, event: Any) -> None:
        self._closed = True
        self.stop_watch(wait=False)
        super().closeEvent(event)

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

    # -- menus, dialogs
    def _build_menus(self) -> None:
        bar = self.menuBar()
        bar.setAccessibleName(tr(CTX, "Menu bar"))

        def add(menu: Any, text: str, shortcut: Any, slot: Callable[[], Any]) -> QAction:
            act = QAction(text, self)
            if shortcut:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(lambda _checked=False: slot())
            menu.addAction(act)
            return act

        file_menu = bar.addMenu(tr(CTX, "&File"))
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.open_action)
        file_menu.addSeparator()
        self.add_account_action = add(
            file_menu, tr(CTX, "Add account…"), "Ctrl+Shift+A", self.add_account
        )
        self.settings_action = add(
            file_menu, tr(CTX, "Settings…"), QKeySequence.StandardKey.Preferences,
            self.show_settings,
        )  # fmt: skip
        if self.settings_action.shortcut().isEmpty():
            self.settings_action.setShortcut(QKeySequence("Ctrl+,"))
        file_menu.addSeparator()
        add(file_menu, tr(CTX, "Quit"), QKeySequence.StandardKey.Quit, self.close)
        view_menu = bar.addMenu(tr(CTX, "&View"))
        self.search_action = add(
            view_menu, tr(CTX, "Search in this folder"), QKeySequence.StandardKey.Find,
            self.focus_search,
        )  # fmt: skip
        view_menu.addAction(self.refresh_action)
        view_menu.addAction(self.keys_action)
        help_menu = bar.addMenu(tr(CTX, "&Help"))
        add(help_menu, tr(CTX, "Keyboard shortcuts"), QKeySequence.StandardKey.HelpContents,
            self.show_shortcuts)  # fmt: skip
        self.about_action = add(help_menu, tr(CTX, "About Sealmail"), None, self.show_about)

    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def _search_to_list(self) -> None:
        self.apply_search()
        self.message_view.setFocus()
        if self.message_model.rows and not self.message_view.currentIndex().isValid():
            self.select_row(0)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.search and event.type() == QEvent.Type.KeyPress:
            key = event.key()  # type: ignore[attr-defined]
            if key == Qt.Key.Key_Escape and self.search.text():
                self.search.clear()
                self.apply_search()
                return True
            if key == Qt.Key.Key_Down:
                self._search_to_list()
                return True
        return super().eventFilter(obj, event)

    def _body_of(self, uid: int) -> str | None:
        """The text of a message opened in this session: memory only, never on disk."""
        key = (self.message_model.folder or "", uid)
        result = self.opened.get(key)
        if result is None:
            return self._texts.get(key)
        if isinstance(result, BaseException):
            return None
        view = result[1]
        return view.text or view.html

    def apply_search(self) -> None:
        self._search_timer.stop()
        query = self.search.text()
        if query == self.message_model.query:
            return
        current = self._want_uid
        self.message_model.set_filter(query, self._body_of)
        n = len(self.message_model.rows)
        if query:
            self.status.setText(tr(CTX, "{n} of {total} messages match").format(
                n=n, total=len(self.message_model.all_rows)
            ))  # fmt: skip
        if current is not None and self.message_model.row_of(current) is not None:
            self.select_uid(current)
        self.open_visible()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._visible_timer.start()

    def add_account(self) -> Any:
        if self.session is None:
            return None
        from ui.wizard import AccountWizard

        wizard = AccountWizard(self.session, self.funnel, self)
        wizard.account_added.connect(self._account_added)
        return self._keep(wizard)

    def _account_added(self, account: Any) -> None:
        from client.mailbox import ImapMailSource

        session = self.session
        if session is None:
            return
        self.account = account.email
        self.setWindowTitle(f"{tr(CTX, 'Sealmail')} — {account.email}")
        old = self.source
        close = getattr(old, "close", None)
        if close is not None:
            self.funnel.submit("close-source", close)
        self.attach(session, ImapMailSource(session, account.email))

    def show_settings(self) -> Any:
        if self.session is None:
            return None
        from ui.settings import SettingsDialog

        return self._keep(SettingsDialog(self.session, self.funnel, self))

    def show_about(self) -> Any:
        from ui.about import AboutDialog

        profile = self.session.store.profile.path if self.session is not None else None
        return self._keep(AboutDialog(profile, self))

    def show_shortcuts(self) -> Any:
        from ui.about import ShortcutsDialog

        return self._keep(ShortcutsDialog(SHORTCUTS, self))
