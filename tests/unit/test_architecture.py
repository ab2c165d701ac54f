"""The shape of the code, enforced: public surfaces, and no I/O in the sans-I/O core."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("client", "keystore")
# The core: MIME, crypto and policy logic take bytes and return values.
CORE = ("client/mime", "client/crypto", "client/policy", "client/envelope/format.py")
FORBIDDEN_IN_CORE = {
    "socket",
    "ssl",
    "imaplib",
    "smtplib",
    "imapclient",
    "subprocess",
    "urllib.request",
    "http.client",
    "asyncio",
    "PySide6",
    "sqlite3",
}


def _modules() -> list[str]:
    names: list[str] = []
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        names.append(pkg)
        for info in pkgutil.walk_packages(mod.__path__, prefix=f"{pkg}."):
            names.append(info.name)
    return names


@pytest.mark.parametrize("name", _modules())
def test_every_module_declares_its_public_surface(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"


def _core_files() -> list[Path]:
    files: list[Path] = []
    for entry in CORE:
        path = REPO / entry
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.is_file():
            files.append(path)
    return files


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_core_does_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    bad = {
        name
        for name in imported
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IN_CORE)
    }
    assert not bad, f"{path.relative_to(REPO)} imports I/O modules {sorted(bad)}"
    opens = [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "open"
    ]
    assert not opens, f"{path.relative_to(REPO)} calls open() at lines {opens}"


def test_error_tree_has_one_root_and_hints() -> None:
    import client.errors as errors

    classes = [getattr(errors, n) for n in errors.__all__]
    for cls in classes:
        if cls is errors.SealmailError:  # the root is never raised itself
            continue
        assert issubclass(cls, errors.SealmailError), cls
        assert cls.hint and not cls.hint.startswith("See the log"), f"{cls.__name__} needs a hint"


def test_no_module_uses_pyside_feature_switching() -> None:
    """ui/__init__.py tells PySide6 that only ``ui`` modules use it, without reading their
    source; that is true only while no module selects ``from __feature__ import ...``."""
    users = []
    for pkg in ("client", "keystore", "ui", "tests", "bench"):
        for path in sorted((REPO / pkg).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module == "__feature__":
                    users.append(str(path.relative_to(REPO)))
                elif isinstance(node, ast.Import) and any(
                    a.name == "__feature__" for a in node.names
                ):
                    users.append(str(path.relative_to(REPO)))
    assert users == []
