"""Profile settings: a small JSON object in ``settings.json`` inside the profile.

Written with :func:`keystore.profile.atomic_write` under the profile lock (a CLI call
and the app may both change settings). Unknown keys are kept as they are, so a newer
Sealmail's settings survive an older one. Known keys:

``gnupg_home``
    Path of a GnuPG home whose keys Sealmail also uses (:mod:`keystore.gnupg_backend`);
    absent or ``null``: the GnuPG backend is off.
"""

from __future__ import annotations

import json
from typing import Any

from keystore.errors import UsageError
from keystore.profile import Profile, atomic_write

__all__ = ["SETTINGS_FILE", "load_settings", "update_settings"]

SETTINGS_FILE = "settings.json"


def load_settings(profile: Profile) -> dict[str, Any]:
    path = profile.file(SETTINGS_FILE)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"the profile settings file {path} is not valid JSON") from exc
    if not isinstance(data, dict):
        raise UsageError(f"the profile settings file {path} is not a JSON object")
    return data


def update_settings(profile: Profile, **changes: Any) -> dict[str, Any]:
    """Set (or, with ``None``, remove) settings; returns the new settings."""
    with profile.lock():
        current = load_settings(profile)
        for key, value in changes.items():
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
        data = json.dumps(current, indent=2, sort_keys=True).encode("utf-8") + b"\n"
        atomic_write(profile.file(SETTINGS_FILE), data)
    return current
