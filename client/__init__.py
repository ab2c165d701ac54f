"""Sealmail client: messages, crypto recipes, policy, transport and the `sealmail` CLI.

Imports go one way: ``ui -> client -> keystore``; nothing here imports Qt.
"""

from __future__ import annotations

import os

# pysequoia captures a Rust backtrace for every error when RUST_BACKTRACE is set, holding
# the GIL ~80 ms each time; its errors are translated anyway, so never capture them.
os.environ.setdefault("RUST_LIB_BACKTRACE", "0")

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    """``__version__`` from the installed metadata (pyproject is the one source), read on
    first use: importlib.metadata costs ~50-300 ms at start-up that most commands skip."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("sealmail")
    except PackageNotFoundError:  # running from a source tree without installation
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
