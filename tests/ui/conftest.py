"""Fixtures for the Qt app: offscreen platform, one demo data set per session."""

from __future__ import annotations

import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
# pysequoia errors capture a Rust backtrace when RUST_BACKTRACE=1, holding the GIL ~80 ms
os.environ["RUST_LIB_BACKTRACE"] = "0"

from collections.abc import Iterator
from pathlib import Path

import pytest

from client.devrig.rig import MailRig
from client.mailbox import LocalMailbox
from client.policy.orgpolicy import DEFAULT_POLICY
from client.services import Session
from ui import demo
from ui.workers import Funnel


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    demo.build(root)
    return root


@pytest.fixture
def demo_copy(demo_root: Path, tmp_path: Path) -> Path:
    """A private copy of the demo data (tests that change keys or mail use this)."""
    import shutil

    target = tmp_path / "demo"
    shutil.copytree(demo_root, target)
    return target


@pytest.fixture
def session(demo_root: Path) -> Iterator[Session]:
    s = demo.open_profile_session(demo_root / "bob")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def mailbox(demo_root: Path) -> LocalMailbox:
    return LocalMailbox(demo_root / "mailbox")


@pytest.fixture(autouse=True)
def _thaw_heap() -> Iterator[None]:
    """A window's settle_heap (gc.freeze) must not keep one test's garbage into the next."""
    yield
    gc.unfreeze()


@pytest.fixture
def funnel(qapp: object) -> Iterator[Funnel]:
    f = Funnel()
    yield f
    f.wait_idle(30_000)


@pytest.fixture(scope="module")
def rig_demo(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
    tuple[demo.DemoData, MailRig]
]:  # fmt: skip
    """Per test module: a private copy of the demo data, its servers running (Dovecot and
    the submission server on loopback), both accounts configured."""
    import shutil

    root = tmp_path_factory.mktemp("rig-demo") / "demo"
    shutil.copytree(demo_root, root)
    data = demo.build(root)  # the copy is ready: nothing is made again
    rig = demo.start_rig(data)
    try:
        yield data, rig
    finally:
        rig.stop()


@pytest.fixture
def bob(rig_demo: tuple[demo.DemoData, MailRig]) -> Iterator[Session]:
    """Bob's session on the rig's profile, under the built-in policy (not the machine's)."""
    s = demo.open_profile_session(rig_demo[0].profile)
    s.org_policy = DEFAULT_POLICY
    try:
        yield s
    finally:
        s.close()
