"""Where the managed policy is looked for on each platform (client.store.policyfile).

The platform, the Windows registry and the macOS managed preferences are injected, so every
platform's rules run here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.policy.errors import InvalidPolicy
from client.policy.orgpolicy import DEFAULT_POLICY
from client.store import policyfile
from client.store.policyfile import load_org_policy, policy_path

EXAMPLE = Path(__file__).resolve().parents[2] / "packaging" / "policy" / "example-clinic.json"


def no_registry(_key: str, _value: str) -> str | None:
    return None


def registry_of(value: str):
    def read(key: str, name: str) -> str | None:
        assert (key, name) == (r"Software\Policies\Sealmail", "PolicyFile")
        return value

    return read


def test_linux_system_path() -> None:
    assert policy_path({}, platform="linux") == Path("/etc/sealmail/policy.json")
    assert policy_path({}, platform="freebsd14") == Path("/etc/sealmail/policy.json")


def test_env_is_honoured_only_where_no_policy_is_managed(tmp_path: Path) -> None:
    env = {"SEALMAIL_POLICY": str(tmp_path / "p.json"), "PROGRAMDATA": r"C:\ProgramData"}
    for platform in ("linux", "win32", "darwin"):
        got = policy_path(
            env,
            platform=platform,
            registry=no_registry,
            managed_prefs=lambda: {},
            exists=lambda _p: False,
        )
        assert got == tmp_path / "p.json"
    # IT's registry value, profile or system-wide file beats the user's environment
    got = policy_path(env, platform="win32", registry=registry_of("X:\\p.json"))
    assert str(got).replace("/", "\\") == "X:\\p.json"
    got = policy_path(env, platform="darwin", managed_prefs=lambda: {"PolicyFile": "/Org/p.json"})
    assert got == Path("/Org/p.json")
    system = Path("/etc/sealmail/policy.json")
    got = policy_path(env, platform="linux", exists=lambda p: p == system)
    assert got == system


def test_a_user_cannot_shadow_the_managed_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    managed = tmp_path / "etc-policy.json"
    managed.write_bytes(EXAMPLE.read_bytes())
    weak = tmp_path / "weak.json"
    weak.write_text(json.dumps({"version": 1, "minimum_level": "tls"}))
    env = {"SEALMAIL_POLICY": str(weak)}
    monkeypatch.setitem(policyfile.SYSTEM_POLICY_PATHS, "linux", str(managed))
    pol = load_org_policy(env=env, platform="linux")
    assert policyfile.policy_source(env, platform="linux") == "managed"
    assert pol == load_org_policy(EXAMPLE)
    assert pol != load_org_policy(weak)
    # on a machine without a managed policy the same variable is honoured
    monkeypatch.setitem(policyfile.SYSTEM_POLICY_PATHS, "linux", str(tmp_path / "none.json"))
    assert policyfile.policy_source(env, platform="linux") == "environment"
    assert load_org_policy(env=env, platform="linux") == load_org_policy(weak)


def test_windows_programdata_default() -> None:
    env = {"PROGRAMDATA": r"C:\ProgramData"}
    got = policy_path(env, platform="win32", registry=no_registry)
    assert str(got).replace("/", "\\") == r"C:\ProgramData\Sealmail\policy.json"


def test_windows_registry_value_wins_and_expands() -> None:
    env = {"ProgramData": r"D:\PD", "SYSTEMROOT": r"C:\Windows"}
    got = policy_path(env, platform="win32", registry=registry_of(r"%programdata%\Org\p.json"))
    assert str(got).replace("/", "\\") == r"D:\PD\Org\p.json"
    unc = policy_path(env, platform="win32", registry=registry_of(r"\\srv\share\p.json"))
    assert str(unc).replace("/", "\\").endswith(r"srv\share\p.json")


def test_windows_registry_loads_the_named_file(tmp_path: Path) -> None:
    target = tmp_path / "org.json"
    target.write_bytes(EXAMPLE.read_bytes())
    pol = load_org_policy(env={}, platform="win32", registry=registry_of(str(target)))
    assert pol != DEFAULT_POLICY


def test_windows_registry_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidPolicy, match="no such file"):
        load_org_policy(env={}, platform="win32", registry=registry_of(str(tmp_path / "x")))


def test_macos_system_path_and_profile_pointer(tmp_path: Path) -> None:
    assert policy_path({}, platform="darwin", managed_prefs=lambda: None) == Path(
        "/Library/Application Support/Sealmail/policy.json"
    )
    target = tmp_path / "p.json"
    got = policy_path({}, platform="darwin", managed_prefs=lambda: {"PolicyFile": str(target)})
    assert got == target


def test_macos_profile_inline_policy() -> None:
    inline = json.loads(EXAMPLE.read_text())
    pol = load_org_policy(env={}, platform="darwin", managed_prefs=lambda: {"Policy": inline})
    assert pol != DEFAULT_POLICY


def test_macos_profile_inline_policy_is_validated() -> None:
    with pytest.raises(InvalidPolicy):
        load_org_policy(
            env={}, platform="darwin", managed_prefs=lambda: {"Policy": {"bogus": True}}
        )
    with pytest.raises(InvalidPolicy, match="not a dictionary"):
        load_org_policy(env={}, platform="darwin", managed_prefs=lambda: {"Policy": "x"})


def test_macos_managed_prefs_plist_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import plistlib

    plist = tmp_path / "org.sealmail.Sealmail.plist"
    plist.write_bytes(plistlib.dumps({"Policy": json.loads(EXAMPLE.read_text())}))
    monkeypatch.setattr(policyfile, "MACOS_MANAGED_PREFS", plist)
    assert load_org_policy(env={}, platform="darwin") != DEFAULT_POLICY
    plist.write_bytes(b"not a plist")
    with pytest.raises(InvalidPolicy, match="not a property list"):
        load_org_policy(env={}, platform="darwin")


def test_no_policy_anywhere_gives_the_defaults(tmp_path: Path) -> None:
    env = {"PROGRAMDATA": str(tmp_path)}
    assert load_org_policy(env=env, platform="win32", registry=no_registry) is DEFAULT_POLICY
    assert load_org_policy(env={"SEALMAIL_POLICY": str(tmp_path / "none")}) is DEFAULT_POLICY


def test_the_example_policy_and_schema_ship() -> None:
    root = EXAMPLE.parents[2]
    assert (root / "client" / "policy" / "policy.schema.json").is_file()
    load_org_policy(EXAMPLE)  # validates
