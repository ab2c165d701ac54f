"""Help > About Sealmail: the version and the versions of what Sealmail is built on.

Theory of operation
-------------------
:func:`versions` collects, without Qt widgets, what a support call needs: Sealmail's own
version from the installed package's metadata (the one source is ``pyproject.toml``; it is
the same string ``sealmail --version`` prints), Qt and PySide6, pysequoia (OpenPGP), the
OpenSSL that ``cryptography`` (S/MIME) and Python's ``ssl`` (TLS) use, and the profile
directory. :class:`AboutDialog` shows them as selectable text with a "Copy" button.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.i18n import tr

__all__ = ["AboutDialog", "ShortcutsDialog", "sealmail_version", "versions"]

CTX = "About"


def sealmail_version() -> str:
    try:
        return version("sealmail")
    except PackageNotFoundError:  # a source tree without installation (as client does)
        from client import __version__

        return __version__


def _dist(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return tr(CTX, "not installed")


def versions(profile: Path | None) -> list[tuple[str, str]]:
    """(caption, value) rows, in the order shown."""
    import ssl

    import PySide6
    from PySide6 import QtCore

    try:
        from cryptography.hazmat.backends.openssl import backend

        crypto_ssl = str(backend.openssl_version_text())
    except Exception:  # informational only
        crypto_ssl = tr(CTX, "unknown")
    return [
        (tr(CTX, "Sealmail"), sealmail_version()),
        (tr(CTX, "Qt"), QtCore.qVersion()),
        (tr(CTX, "PySide6"), PySide6.__version__),
        (tr(CTX, "pysequoia (OpenPGP)"), _dist("pysequoia")),
        (tr(CTX, "OpenSSL (S/MIME)"), crypto_ssl),
        (tr(CTX, "OpenSSL (TLS)"), ssl.OPENSSL_VERSION),
        (tr(CTX, "Python"), sys.version.split()[0]),
        (tr(CTX, "Profile"), str(profile) if profile is not None else tr(CTX, "none open")),
    ]


class AboutDialog(QDialog):
    def __init__(self, profile: Path | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr(CTX, "About Sealmail"))
        self.setAccessibleName(tr(CTX, "About Sealmail"))
        self.rows = versions(profile)
        self.version = self.rows[0][1]
        title = QLabel(f"<h2>Sealmail {self.version}</h2>", self)
        title.setAccessibleName(tr(CTX, "Sealmail version"))
        blurb = QLabel(
            tr(CTX, "Secure mail for health data: S/MIME, OpenPGP and password envelopes."),
            self,
        )
        blurb.setWordWrap(True)
        blurb.setAccessibleName(tr(CTX, "Description"))
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.values: dict[str, QLabel] = {}
        for caption, value in self.rows:
            label = QLabel(value, self)
            label.setAccessibleName(caption)
            label.setTextInteractionFlags(
                Qt.TextInteractionFlag.TextSelectableByMouse
                | Qt.TextInteractionFlag.TextSelectableByKeyboard
            )
            label.setWordWrap(True)
            self.values[caption] = label
            form.addRow(f"{caption}:", label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        close = buttons.button(QDialogButtonBox.StandardButton.Close)
        close.setAccessibleName(tr(CTX, "Close"))
        self.copy_button = QPushButton(tr(CTX, "Copy"), self)
        self.copy_button.setAccessibleName(tr(CTX, "Copy the versions to the clipboard"))
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(blurb)
        layout.addLayout(form)
        layout.addSpacing(8)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)

    def text(self) -> str:
        return "\n".join(f"{caption}: {value}" for caption, value in self.rows)

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text())


class ShortcutsDialog(QDialog):
    """Help > Keyboard shortcuts (F1): the whole app works by keyboard."""

    def __init__(self, shortcuts: tuple[tuple[str, str], ...], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(tr(CTX, "Keyboard shortcuts"))
        self.setAccessibleName(tr(CTX, "Keyboard shortcuts"))
        form = QFormLayout()
        for keys, what in shortcuts:
            label = QLabel(tr("MainWindow", what), self)
            label.setAccessibleName(f"{keys}: {what}")
            key_label = QLabel(f"<b>{keys}</b>", self)
            key_label.setAccessibleName(keys)
            form.addRow(key_label, label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.button(QDialogButtonBox.StandardButton.Close).setAccessibleName(tr(CTX, "Close"))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
