"""Translation: every user-visible text goes through :func:`tr` (Qt's translation system).

English is the source language and ships as is. Other languages are ``sealmail_<lang>.qm``
files next to this module (made with ``pyside6-lupdate``/``pyside6-lrelease``);
:func:`install` loads the one for the system locale when it exists.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLocale, QTranslator

__all__ = ["install", "tr"]

_HERE = Path(__file__).resolve().parent


def tr(context: str, text: str) -> str:
    """The translation of ``text`` in ``context`` (the class or module that shows it)."""
    return QCoreApplication.translate(context, text)


def install(app: QCoreApplication, locale: QLocale | None = None) -> QTranslator | None:
    translator = QTranslator(app)
    if translator.load(locale or QLocale(), "sealmail", "_", str(_HERE)):
        app.installTranslator(translator)
        return translator
    return None
