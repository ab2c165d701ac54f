"""Reading the managed organisation policy file (the I/O half of :mod:`client.policy.orgpolicy`).

Where the policy is looked for, first found wins — what IT manages always comes first, so a
user cannot shadow the organisation's policy with an environment variable:

1. The platform's management channel, which Group Policy, Intune or an MDM sets:

   * Windows: the registry value ``HKLM\\Software\\Policies\\Sealmail\\PolicyFile`` (REG_SZ or
     REG_EXPAND_SZ: a path, local or UNC);
   * macOS: the managed preferences of ``org.sealmail.Sealmail`` that a configuration profile
     (``.mobileconfig``) installs in ``/Library/Managed Preferences`` — the key ``Policy``
     (the policy itself, as a dictionary) or ``PolicyFile`` (a path).

2. The platform's system-wide file (:data:`SYSTEM_POLICY_PATHS`), when it exists:
   ``/etc/sealmail/policy.json`` on Linux and other Unixes,
   ``%ProgramData%\\Sealmail\\policy.json`` on Windows,
   ``/Library/Application Support/Sealmail/policy.json`` on macOS.
3. ``SEALMAIL_POLICY`` — a path, honoured only on a machine without a managed policy (tests,
   and IT trying a new file on a test machine before deploying it).

No policy anywhere: the built-in defaults. A policy that is found but cannot be read or does
not validate is an error — never silently ignored; so is a registry value or profile naming
a file that does not exist (``SEALMAIL_POLICY`` naming a missing file gives the defaults, as
before). The platform look-ups are injectable (``platform``, ``registry``,
``managed_prefs``, ``exists``) so every platform's rules are tested on any machine.
"""

from __future__ import annotations

import os
import plistlib
import sys
from collections.abc import Callable, Mapping
from pathlib import Path, PurePath
from typing import Any

from client.policy.errors import InvalidPolicy
from client.policy.orgpolicy import DEFAULT_POLICY, OrgPolicy, parse_policy

__all__ = [
    "MACOS_MANAGED_PREFS",
    "SYSTEM_POLICY_PATH",
    "SYSTEM_POLICY_PATHS",
    "WINDOWS_POLICY_KEY",
    "load_org_policy",
    "policy_path",
    "policy_source",
]

SYSTEM_POLICY_PATH = Path("/etc/sealmail/policy.json")
#: The system-wide policy file per platform (``sys.platform`` prefix; Windows is expanded).
SYSTEM_POLICY_PATHS = {
    "linux": "/etc/sealmail/policy.json",
    "win32": r"%ProgramData%\Sealmail\policy.json",
    "darwin": "/Library/Application Support/Sealmail/policy.json",
}
#: Windows: the key and value Group Policy / Intune set (HKEY_LOCAL_MACHINE).
WINDOWS_POLICY_KEY = (r"Software\Policies\Sealmail", "PolicyFile")
#: macOS: where a configuration profile's preferences for the app land.
MACOS_MANAGED_PREFS = Path("/Library/Managed Preferences/org.sealmail.Sealmail.plist")

RegistryReader = Callable[[str, str], str | None]
PrefsReader = Callable[[], Mapping[str, Any] | None]
Exists = Callable[[Path], bool]


def _windows_registry(key: str, value: str) -> str | None:  # pragma: no cover - Windows only
    import winreg  # type: ignore[import-not-found, unused-ignore]

    try:
        with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:  # type: ignore[attr-defined, unused-ignore]
            data, _kind = winreg.QueryValueEx(handle, value)  # type: ignore[attr-defined, unused-ignore]
    except OSError:
        return None
    return str(data) if data else None


def _macos_managed_prefs() -> Mapping[str, Any] | None:
    try:
        data = MACOS_MANAGED_PREFS.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidPolicy(f"{MACOS_MANAGED_PREFS}: cannot read: {exc.strerror}") from exc
    try:
        prefs = plistlib.loads(data)
    except Exception as exc:  # plistlib raises several types for a damaged file
        raise InvalidPolicy(f"{MACOS_MANAGED_PREFS}: not a property list: {exc}") from exc
    return prefs if isinstance(prefs, dict) else None


def _expand_windows(path: str, env: Mapping[str, str]) -> str:
    """``%VAR%`` expansion with ``env`` (case-insensitive, as Windows does)."""
    upper = {k.upper(): v for k, v in env.items()}
    parts = path.split("%")
    out = [parts[0]]
    for i in range(1, len(parts)):
        name = parts[i]
        if i % 2 == 1 and i < len(parts) - 1 and name.upper() in upper:
            out.append(upper[name.upper()])
        elif i % 2 == 1:
            out.append("%" + name + ("%" if i < len(parts) - 1 else ""))
        else:
            out.append(name)
    return "".join(out)


def _family(platform: str) -> str:
    if platform.startswith("win"):
        return "win32"
    if platform == "darwin":
        return "darwin"
    return "linux"


def _managed(
    platform: str,
    env: Mapping[str, str],
    registry: RegistryReader | None,
    managed_prefs: PrefsReader | None,
) -> PurePath | Mapping[str, Any] | None:
    """What the platform's management channel names: a path, an inline policy, or nothing."""
    family = _family(platform)
    if family == "win32":
        value = (registry or _windows_registry)(*WINDOWS_POLICY_KEY)
        return Path(_expand_windows(value, env)) if value else None
    if family == "darwin":
        prefs = (managed_prefs or _macos_managed_prefs)()
        if not prefs:
            return None
        if "Policy" in prefs:
            inline = prefs["Policy"]
            if not isinstance(inline, Mapping):
                raise InvalidPolicy(f"{MACOS_MANAGED_PREFS}: Policy: not a dictionary")
            return inline
        if isinstance(prefs.get("PolicyFile"), str) and prefs["PolicyFile"]:
            return Path(prefs["PolicyFile"])
    return None


def _system_path(platform: str, env: Mapping[str, str]) -> Path:
    family = _family(platform)
    if family == "win32":
        return Path(_expand_windows(SYSTEM_POLICY_PATHS["win32"], env))
    return Path(SYSTEM_POLICY_PATHS[family])


def policy_path(
    env: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
    registry: RegistryReader | None = None,
    managed_prefs: PrefsReader | None = None,
    exists: Exists = Path.exists,
) -> Path:
    """The policy file to read (see the module's search order); it need not exist.

    A macOS profile carrying the policy inline has no file: the system-wide path is returned
    and :func:`load_org_policy` reads the profile.
    """
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    managed = _managed(platform, env, registry, managed_prefs)
    if isinstance(managed, PurePath):
        return Path(managed)
    system = _system_path(platform, env)
    if managed is not None or exists(system):
        return system
    override = env.get("SEALMAIL_POLICY")
    return Path(override) if override else system


def policy_source(
    env: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
    registry: RegistryReader | None = None,
    managed_prefs: PrefsReader | None = None,
    exists: Exists = Path.exists,
) -> str:
    """Who set the policy in force: ``"managed"`` (IT: registry, profile or system file),
    ``"environment"`` (``SEALMAIL_POLICY`` on an unmanaged machine) or ``"default"``."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    managed = _managed(platform, env, registry, managed_prefs)
    if managed is not None or exists(_system_path(platform, env)):
        return "managed"
    override = env.get("SEALMAIL_POLICY")
    if override and exists(Path(override)):
        return "environment"
    return "default"


def load_org_policy(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    platform: str | None = None,
    registry: RegistryReader | None = None,
    managed_prefs: PrefsReader | None = None,
    exists: Exists = Path.exists,
) -> OrgPolicy:
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    # a path given by the caller, the registry or a profile must exist; the system file and
    # SEALMAIL_POLICY may be missing (the defaults: how tests shut out a policy)
    named = path is not None
    if path is None:
        managed = _managed(platform, env, registry, managed_prefs)
        if isinstance(managed, Mapping):
            return parse_policy(managed)
        named = managed is not None
    target = path or policy_path(
        env, platform=platform, registry=registry, managed_prefs=managed_prefs, exists=exists
    )
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        if named:
            raise InvalidPolicy(f"{target}: no such file") from None
        return DEFAULT_POLICY
    except OSError as exc:
        raise InvalidPolicy(f"{target}: cannot read: {exc.strerror}") from exc
    return parse_policy(data)
