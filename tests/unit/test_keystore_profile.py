"""Profile directory, atomic writes and the inter-process lock."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keystore.errors import ProfileLocked
from keystore.profile import (
    atomic_write,
    default_profile_dir,
    open_profile,
    resolve_profile_dir,
)

REPO = Path(__file__).resolve().parents[2]


def test_explicit_path_beats_environment(tmp_path: Path) -> None:
    env = {"SEALMAIL_PROFILE": str(tmp_path / "env")}
    assert resolve_profile_dir(tmp_path / "x", env=env) == tmp_path / "x"
    assert resolve_profile_dir(None, env=env) == tmp_path / "env"
    assert resolve_profile_dir(None, env={}) == default_profile_dir()
    assert "sealmail" in str(default_profile_dir())


def test_profile_is_created_private(tmp_path: Path) -> None:
    prof = open_profile(tmp_path / "a" / "b")
    assert prof.path.is_dir()
    assert stat.S_IMODE(prof.path.stat().st_mode) == 0o700


def test_existing_loose_directory_is_tightened(tmp_path: Path) -> None:
    target = tmp_path / "loose"
    target.mkdir(mode=0o755)
    os.chmod(target, 0o755)  # noqa: S103 (the point of the test)
    open_profile(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_profile_file_names_cannot_escape(tmp_path: Path) -> None:
    from keystore.errors import UsageError

    prof = open_profile(tmp_path / "p")
    for bad in ("../x", "a/b", "..", ""):
        with pytest.raises(UsageError):
            prof.file(bad)


def test_atomic_write_replaces_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    atomic_write(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]


def test_atomic_write_pieces_are_written_in_order(tmp_path: Path) -> None:
    target = tmp_path / "m.eml"
    atomic_write(target, (b"Subject: x\r\n\r\n", b"", b"body " * 1000))
    assert target.read_bytes() == b"Subject: x\r\n\r\n" + b"body " * 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.eml"]


def test_atomic_write_failure_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"old")

    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_lock_is_reentrant_in_one_object(tmp_path: Path) -> None:
    prof = open_profile(tmp_path / "p")
    with prof.lock(), prof.lock():
        assert prof.lock.held
    assert not prof.lock.held


_HOLD = """
import sys, time
from keystore.profile import open_profile
prof = open_profile(sys.argv[1])
with prof.lock():
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def _holder(profile: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(profile), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_held_by_another_process_times_out(tmp_path: Path) -> None:
    prof = open_profile(tmp_path / "p", lock_timeout=0.2)
    holder = _holder(prof.path, 5)
    try:
        start = time.monotonic()
        with pytest.raises(ProfileLocked) as info, prof.lock():
            pass
        assert time.monotonic() - start < 3
        assert "try again" in info.value.hint
    finally:
        holder.kill()
        holder.communicate()


def test_lock_is_granted_when_the_other_process_lets_go(tmp_path: Path) -> None:
    prof = open_profile(tmp_path / "p", lock_timeout=20)
    holder = _holder(prof.path, 0.5)
    try:
        with prof.lock():
            assert prof.lock.held
    finally:
        holder.communicate()
