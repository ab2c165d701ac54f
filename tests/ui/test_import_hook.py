"""PySide6's __feature__ import hook must not read the source of modules imported after
it (ui/__init__.py): on a worker thread that read held the GIL for tens of ms."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest

import ui  # noqa: F401  (installs the cheap check)


def test_modules_imported_after_pyside_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feature = sys.modules["shibokensupport.feature"]
    reads: list[str] = []
    real = inspect.getsource

    def counting(obj: object) -> str:
        reads.append(getattr(obj, "__name__", "?"))
        return real(obj)  # type: ignore[arg-type]

    monkeypatch.setattr(inspect, "getsource", counting)
    pkg = tmp_path / "client_probe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import sub\nfrom PySide6 import QtCore\nVALUE = 1\n")
    (pkg / "sub.py").write_text("X = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("client_probe_pkg")
    try:
        assert module.VALUE == 1
        assert reads == []
        # PySide6 recorded it as a module that ignores feature switching
        assert feature.pyside_feature_dict.get("client_probe_pkg") == -1
        # and a ui module as one that uses PySide6
        assert feature._mod_uses_pyside(
            sys.modules["ui.workers"]
            if "ui.workers" in sys.modules
            else importlib.import_module("ui.workers")
        )
    finally:
        sys.modules.pop("client_probe_pkg", None)
        sys.modules.pop("client_probe_pkg.sub", None)
