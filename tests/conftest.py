"""Shared fixtures: real gpg homes, isolated Sealmail profiles, the CLI as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.gnupg import Gpg

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"


@pytest.fixture
def gpg() -> Iterator[Gpg]:
    g = Gpg()
    try:
        yield g
    finally:
        g.close()


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        raise AssertionError(
            f"the shared test corpus is missing at {CORPUS}; CI checks it out beside the repo"
        )
    return CORPUS


@dataclass
class CliResult:
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")


class Cli:
    """Runs ``sealmail`` as a separate process against one profile (headless passphrase path)."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
            "SEALMAIL_PROFILE": str(profile),
            "SEALMAIL_PROFILE_PASSPHRASE": "profile passphrase for tests",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }

    def __call__(
        self,
        *args: str,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "client.cli", *args],
            input=input,
            capture_output=True,
            env={**self.env, **(env or {})},
            cwd=REPO,
            timeout=300,
            pass_fds=pass_fds,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))

    def ok(self, *args: str, **kw: object) -> CliResult:
        res = self(*args, **kw)  # type: ignore[arg-type]
        assert res.returncode == 0, (
            f"sealmail {' '.join(args)} failed ({res.returncode}): {res.stderr}"
        )
        return res


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "profile")


@pytest.fixture
def cli_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(name: str) -> Cli:
        return Cli(tmp_path / name)

    return make


from tests.servers.fixtures import fresh_rig, hostile, mail_rig  # noqa: E402, F401
