"""Sealmail desktop app (PySide6). Presents client services; no crypto, no protocol."""

from __future__ import annotations

import sys
import types

__all__: list[str] = []


def _skip_feature_source_scan() -> None:
    """Stop PySide6 reading the source of every module imported after it.

    PySide6's ``__feature__`` support hooks ``import``: the first time any module runs an
    import statement, ``shibokensupport.feature._mod_uses_pyside`` calls
    ``inspect.getsource(module)`` and searches it for "PySide6", to choose whether
    attribute access from that module follows ``from __feature__ import ...`` switching
    (0) or ignores it (-1). That is a read and tokenize of the whole file with the GIL
    held, ~30 % of the import time of every module the workers import lazily (a 17 ms
    GUI-thread stall when the IDLE watcher's module was first imported; tests/ui/
    test_stalls.py). Sealmail uses no ``__feature__`` anywhere (tests/unit/
    test_architecture.py checks), so the answer is known without reading: ``ui`` modules
    use PySide6, nothing else needs switching. If PySide6 changes this internal, we leave
    it alone.
    """
    feature = sys.modules.get("shibokensupport.feature")
    if feature is None or not callable(getattr(feature, "_mod_uses_pyside", None)):
        return

    def uses_pyside(module: types.ModuleType) -> bool:
        return getattr(module, "__name__", "").partition(".")[0] == "ui"

    feature._mod_uses_pyside = uses_pyside  # type: ignore[attr-defined]


import PySide6.QtCore  # noqa: E402, F401  (loads shibokensupport.feature)

_skip_feature_source_scan()
