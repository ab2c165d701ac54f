"""Local storage: the SQLite header cache, the audit log file, the managed policy file."""

__all__: list[str] = []
