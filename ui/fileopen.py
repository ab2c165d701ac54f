"""The one "choose files, read them off the GUI thread" helper (composer, keys, envelopes).

Theory of operation
-------------------
:func:`ask_paths` shows the platform's open dialog (one or several files, a name filter
from :data:`FILTERS`); :func:`read_files` reads each chosen file on the worker funnel and
hands ``(name, data)`` back on the GUI thread — the GUI never touches the disk itself.
:func:`open_files` is both. Tests replace :data:`chooser` instead of clicking a dialog.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from ui.i18n import tr
from ui.workers import Funnel

__all__ = ["FILTERS", "ask_paths", "chooser", "open_files", "read_files"]

CTX = "FileOpen"

#: name filters by purpose (translated when shown)
FILTERS: dict[str, str] = {
    "any": "All files (*)",
    "keys": "Keys and certificates (*.asc *.gpg *.pgp *.pem *.crt *.cer *.der *.p7b *.p7c "
    "*.p12 *.pfx);;All files (*)",
    "ca": "CA certificates (*.pem *.crt *.cer *.der);;All files (*)",
    "identity": "Sealmail identity files (*.sealmail-identity *.json *.bin);;All files (*)",
    "envelope": "Encrypted files (*.p7m *.pgp *.asc *.gpg *.html *.eml);;All files (*)",
}

Chooser = Callable[[QWidget, str, str, bool], list[str]]


def _dialog(parent: QWidget, title: str, name_filter: str, multiple: bool) -> list[str]:
    if multiple:
        paths, _ = QFileDialog.getOpenFileNames(parent, title, "", name_filter)
        return list(paths)
    path, _ = QFileDialog.getOpenFileName(parent, title, "", name_filter)
    return [path] if path else []


#: the dialog in use (tests put a function returning fixed paths here)
chooser: Chooser = _dialog


def ask_paths(
    parent: QWidget, title: str, kind: str = "any", *, multiple: bool = True
) -> list[str]:
    return chooser(parent, title, tr(CTX, FILTERS[kind]), multiple)


def read_files(
    funnel: Funnel,
    paths: Sequence[str],
    on_file: Callable[[str, bytes], None],
    on_failure: Callable[[BaseException], None] | None = None,
    *,
    operation: str = "save-file",
) -> None:
    """Read each file on the funnel; ``on_file(name, data)`` runs on the GUI thread."""
    for path in paths:
        p = Path(path)
        funnel.submit(
            operation,
            p.read_bytes,
            on_success=lambda data, name=p.name: on_file(name, data),
            on_failure=on_failure,
        )


def open_files(
    parent: QWidget,
    funnel: Funnel,
    title: str,
    on_file: Callable[[str, bytes], None],
    on_failure: Callable[[BaseException], None] | None = None,
    *,
    kind: str = "any",
    multiple: bool = True,
    operation: str = "save-file",
) -> list[str]:
    """Ask for files, then read them off the GUI thread; returns the chosen paths."""
    paths = ask_paths(parent, title, kind, multiple=multiple)
    read_files(funnel, paths, on_file, on_failure, operation=operation)
    return paths
