"""Sealmail client: messages, crypto recipes, policy, transport and the `sealmail` CLI.

Imports go one way: ``ui -> client -> keystore``; nothing here imports Qt.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("sealmail")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
