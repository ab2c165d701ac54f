"""Sealmail client: messages, crypto recipes, policy, transport and the `sealmail` CLI.

Imports go one way: ``ui -> client -> keystore``; nothing here imports Qt.
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

# pysequoia captures a Rust backtrace for every error when RUST_BACKTRACE is set, holding
# the GIL ~80 ms each time; its errors are translated anyway, so never capture them.
os.environ.setdefault("RUST_LIB_BACKTRACE", "0")

__all__ = ["__version__"]

try:
    __version__ = version("sealmail")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
