"""The profile master key in a real Secret Service: gnome-keyring under dbus-run-session.

Needs the Debian packages ``gnome-keyring`` and ``dbus`` (``dbus-run-session``); the test
fails with an install hint when they are missing, it never skips. The child process runs
inside a private D-Bus session with a freshly unlocked keyring in a temporary HOME, uses
the ``keyring`` package's default backend (SecretService), and reports what it stored;
the parent then checks that no secret is in plaintext anywhere under the profile.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CHILD = r"""
import json, sys, datetime as dt
import keyring
from keystore.store import Keystore
from keystore import secrets

backend = secrets.check_keyring_backend()
profile = sys.argv[1]
with Keystore.open(profile, secret_store="keyring", env={}) as ks:
    info = ks.generate_pgp("alice@example.org", now=dt.datetime.now(dt.UTC))
    ks.put_secret("imap:alice", b"account-password-4711")
    mode = ks.box.mode
state = json.load(open(profile + "/secrets.json"))
stored = keyring.get_password("sealmail", "profile:" + state["profile_id"])
with Keystore.open(profile, env={}) as again:  # a second process-like open finds it
    back = again.get_secret("imap:alice")
    key = again.get_pgp_tsk(info.fingerprint)
    from pysequoia.packet import PacketPile, Tag
    pub = [p.body for p in PacketPile.from_bytes(bytes(key.cert))
           if p.tag in (Tag.PublicKey, Tag.PublicSubkey)]
    sec = [p.body for p in PacketPile.from_bytes(bytes(key.tsk))
           if p.tag in (Tag.SecretKey, Tag.SecretSubkey)]
    # the secret key material: what follows the public part (s2k octet, MPIs, checksum)
    secret_parts = [s[len(p) + 1 : -2] for p, s in zip(pub, sec)]
print(json.dumps({
    "backend": type(backend).__module__ + "." + type(backend).__name__,
    "mode": mode,
    "master_b64": stored,
    "secret_back": back.decode(),
    "secret_parts": [__import__("base64").b64encode(x).decode() for x in secret_parts],
}))
"""


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} is missing: install the Debian package(s) {package} "
            f"(apt-get install {package}) to run the Secret Service test",
            pytrace=False,
        )
    return path


def test_master_key_lands_in_gnome_keyring_and_nothing_is_plaintext(tmp_path: Path) -> None:
    _require("dbus-run-session", "dbus")
    _require("gnome-keyring-daemon", "gnome-keyring")
    home = tmp_path / "home"
    home.mkdir()
    profile = tmp_path / "profile"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEALMAIL_", "PYTHON_KEYRING", "DBUS_", "XDG_", "GNOME_KEYRING"))
    }
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), PYTHONPATH=str(REPO))
    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    (tmp_path / "run").mkdir(mode=0o700)
    script = (
        "printf 'keyring-login-pw' | gnome-keyring-daemon --unlock --components=secrets "
        '>/dev/null 2>&1 && exec "$0" -c "$1" "$2"'
    )
    proc = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script, sys.executable, CHILD, str(profile)],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    assert out["backend"] == "keyring.backends.SecretService.Keyring"
    assert out["mode"] == "keyring"
    assert out["secret_back"] == "account-password-4711"
    master = base64.b64decode(out["master_b64"])
    assert len(master) == 32
    state = json.loads((profile / "secrets.json").read_text())
    assert state["mode"] == "keyring" and "wrapped_master_key" not in state
    # nothing secret in plaintext under the profile
    parts = [base64.b64decode(x) for x in out["secret_parts"]]
    assert len(parts) == 2 and all(len(p) >= 32 for p in parts)
    needles = [b"account-password-4711", master, out["master_b64"].encode(), *parts]
    for path in profile.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for needle in needles:
                assert needle not in data, f"plaintext secret in {path.name}"
            assert oct(path.stat().st_mode & 0o077) == "0o0", path.name
