"""Sealmail desktop app (PySide6). Presents client services; no crypto, no protocol."""

__all__: list[str] = []
