"""Address completion for comma-separated recipient fields (To, Cc, Bcc).

Theory of operation
-------------------
One :class:`QStringListModel` per composer holds the address book
(:func:`client.outgoing.address_book`, loaded on the worker funnel). :class:`AddressCompleter`
attaches a :class:`QCompleter` to a :class:`QLineEdit` *without* ``setCompleter`` (which
would match the whole field): on every edit it completes only the address being typed
(the text after the last comma) and, when one is chosen, replaces just that part.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QStringListModel, Qt
from PySide6.QtWidgets import QCompleter, QLineEdit

__all__ = ["AddressCompleter", "address_model"]


def address_model(addresses: Sequence[str] = ()) -> QStringListModel:
    return QStringListModel(list(addresses))


def _split_last(text: str) -> tuple[str, str]:
    """(everything up to and including the last comma and spaces, the part being typed)."""
    head, sep, last = text.rpartition(",")
    if not sep:
        return "", text.lstrip()
    stripped = last.lstrip()
    return head + sep + last[: len(last) - len(stripped)], stripped


class AddressCompleter(QCompleter):
    def __init__(self, edit: QLineEdit, model: QStringListModel) -> None:
        super().__init__(model, edit)
        self.edit = edit
        self.setWidget(edit)
        self.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterMode(Qt.MatchFlag.MatchContains)
        self.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.popup().setAccessibleName(edit.accessibleName() + " suggestions")
        edit.textEdited.connect(self._typed)
        self.activated[str].connect(self.insert)

    def _typed(self, text: str) -> None:
        _head, part = _split_last(text[: self.edit.cursorPosition()])
        if len(part) < 1:
            self.popup().hide()
            return
        self.setCompletionPrefix(part)
        if self.completionCount():
            self.complete()
        else:
            self.popup().hide()

    def insert(self, address: str) -> None:
        head, _part = _split_last(self.edit.text())
        if head and not head.endswith(" "):
            head += " "
        self.edit.setText(f"{head}{address}, ")
        self.edit.setCursorPosition(len(self.edit.text()))
