"""Keyring unavailable: no Secret Service on D-Bus, or a keyring that cannot be unlocked.

Each child runs the real CLI inside a private D-Bus session (``dbus-run-session``) with
the ``keyring`` package's default backend (no ``PYTHON_KEYRING_BACKEND``):

* *no Secret Service*: the session bus has no service directories, so nothing provides
  ``org.freedesktop.secrets`` (D-Bus activation cannot start gnome-keyring either);
* *locked*: gnome-keyring runs but its keyring is locked, and unlocking needs a prompt
  that cannot appear (no display), so the keyring refuses.

In every case the CLI must end with ``SecretStoreUnavailable`` (``error:`` + ``hint:``)
and nothing secret may land in the profile instead: no master key, no account password.
Needs the Debian packages ``dbus`` and ``gnome-keyring`` (the test fails with an install
hint when they are missing, it never skips).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.faultkit import REPO, Run, assert_typed_failure

ACCOUNT_PASSWORD = "imap-password-4711-do-not-store"

_BARE_BUS = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir={tmp}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def _require(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(
            f"{tool} is missing: install the Debian package {package} (apt-get install "
            f"{package}) to run the keyring fault tests",
            pytrace=False,
        )


class Desktop:
    """A HOME, a runtime dir and a profile; runs the CLI inside a private D-Bus session."""

    def __init__(self, tmp: Path) -> None:
        _require("dbus-run-session", "dbus")
        _require("gnome-keyring-daemon", "gnome-keyring")
        self.tmp = tmp
        self.home = tmp / "home"
        self.home.mkdir()
        self.run_dir = tmp / "run"
        self.run_dir.mkdir(mode=0o700)
        self.profile = tmp / "profile"
        self.bare_bus = tmp / "bare-bus.conf"
        self.bare_bus.write_text(_BARE_BUS.format(tmp=tmp))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SEALMAIL_", "PYTHON_KEYRING", "DBUS_", "XDG_", "GNOME_KEYRING"))
        }
        env.update(
            HOME=str(self.home),
            XDG_DATA_HOME=str(self.home / "data"),
            XDG_RUNTIME_DIR=str(self.run_dir),
            PYTHONPATH=str(REPO),
            SEALMAIL_PROFILE=str(self.profile),
        )
        self.env = env

    def cli(
        self,
        *args: str,
        keyring: str,
        stdin: bytes | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Run:
        """``keyring``: ``none`` (no Secret Service), ``unlocked`` or ``locked``."""
        start = {
            "none": "",
            "unlocked": "printf 'keyring-login-pw' | gnome-keyring-daemon --unlock "
            "--components=secrets >/dev/null 2>&1 && ",
            "locked": "gnome-keyring-daemon --start --components=secrets >/dev/null 2>&1; ",
        }[keyring]
        bus = ["--config-file", str(self.bare_bus)] if keyring == "none" else []
        script = start + 'exec "$0" -m client.cli "$@"'
        proc = subprocess.run(
            ["dbus-run-session", *bus, "--", "sh", "-c", script, sys.executable, *args],
            input=stdin,
            capture_output=True,
            env={**self.env, **(extra_env or {})},
            cwd=REPO,
            timeout=120,
            check=False,
        )
        return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode(errors="replace"))

    def add_account(self, keyring: str) -> Run:
        return self.cli(
            "-vv",
            "account",
            "add",
            "--email",
            "alice@example.test",
            "--imap",
            "127.0.0.1:993",
            "--smtp",
            "127.0.0.1:465",
            "--security",
            "tls",
            "--password-fd",
            "0",
            keyring=keyring,
            stdin=ACCOUNT_PASSWORD.encode() + b"\n",
        )

    def profile_bytes(self) -> bytes:
        if not self.profile.exists():
            return b""
        return b"".join(p.read_bytes() for p in self.profile.rglob("*") if p.is_file())


def _no_plaintext(desk: Desktop) -> None:
    data = desk.profile_bytes()
    assert ACCOUNT_PASSWORD.encode() not in data
    state = desk.profile / "secrets.json"
    if state.exists():  # only a keyring reference, or a master key *wrapped* by a passphrase
        doc = json.loads(state.read_text())
        assert set(doc) <= {"version", "profile_id", "mode", "backend", "kdf", "wrapped_master_key"}
        assert doc["mode"] == "passphrase" or "wrapped_master_key" not in doc


def test_no_secret_service_on_a_new_profile_is_refused(tmp_path: Path) -> None:
    desk = Desktop(tmp_path)
    res = desk.add_account("none")
    assert_typed_failure(res)
    assert res.returncode == 3, res.stderr  # KeystoreError family
    assert "keyring" in res.stderr.lower()
    assert not (desk.profile / "secrets.json").exists()  # no store was created instead
    assert not (desk.profile / "accounts.json").exists()
    _no_plaintext(desk)


def test_keyring_profile_without_secret_service_is_refused_not_downgraded(
    tmp_path: Path,
) -> None:
    desk = Desktop(tmp_path)
    ok = desk.add_account("unlocked")
    assert ok.returncode == 0, ok.stderr[-2000:]
    state = json.loads((desk.profile / "secrets.json").read_text())
    assert state["mode"] == "keyring"
    before = {p.name: p.read_bytes() for p in desk.profile.iterdir() if p.is_file()}
    # later the desktop keyring is gone; a profile passphrase must not become a fallback
    res = desk.cli(
        "keys",
        "generate",
        "--kind",
        "pgp",
        "--email",
        "alice@example.test",
        keyring="none",
        extra_env={"SEALMAIL_PROFILE_PASSPHRASE": "would-be-fallback"},
    )
    line = assert_typed_failure(res, "keyring")
    assert "not available" in line
    assert json.loads((desk.profile / "secrets.json").read_text()) == state
    assert (desk.profile / "secrets.json").read_bytes() == before["secrets.json"]
    _no_plaintext(desk)
    # and it still opens where the keyring is back
    again = desk.cli("keys", "list", keyring="unlocked")
    assert again.returncode == 0, again.stderr[-2000:]


def test_locked_keyring_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    desk = Desktop(tmp_path)
    res = desk.add_account("locked")
    line = assert_typed_failure(res, "keyring")
    assert res.returncode == 3, res.stderr
    assert "refused" in line or "failed" in line
    assert not (desk.profile / "secrets.json").exists()
    assert not (desk.profile / "accounts.json").exists()
    _no_plaintext(desk)


def test_keyring_profile_with_locked_keyring_is_refused(tmp_path: Path) -> None:
    desk = Desktop(tmp_path)
    ok = desk.add_account("unlocked")
    assert ok.returncode == 0, ok.stderr[-2000:]
    accounts = (desk.profile / "accounts.json").read_bytes()
    res = desk.cli(
        "keys", "generate", "--kind", "pgp", "--email", "a@example.test", keyring="locked"
    )
    line = assert_typed_failure(res, "keyring")
    assert res.returncode == 3, res.stderr
    assert "failed" in line or "missing" in line or "not available" in line
    assert (desk.profile / "accounts.json").read_bytes() == accounts
    _no_plaintext(desk)
