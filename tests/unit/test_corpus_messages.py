"""Open every whole message of the third-party corpus through the service layer.

The table of expectations is tests/vectors/expectations.py (one row per vector, with the
reason); the keys each row is opened with are tests/vectors/profiles.py; the origin of
every file is ../shared/corpus/MANIFEST.md (see tests/vectors/PROVENANCE.md). Rows not
handled yet are strict xfails with their reason — nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from client import errors
from client.services import Session
from keystore.store import Keystore
from tests.vectors import profiles
from tests.vectors.expectations import VECTORS
from tests.vectors.vector import Vector, check, load

GetSession = Callable[[str], Session]


@pytest.fixture(scope="module")
def sessions(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GetSession]:
    """One keystore per profile, built on first use and shared by the module."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    built: dict[str, Session] = {}
    failed: dict[str, Exception] = {}
    root = tmp_path_factory.mktemp("corpus-profiles")

    def get(name: str) -> Session:
        if name in failed:
            raise failed[name]
        if name not in built:
            try:
                built[name] = Session(profiles.build(name, root / name))
            except Exception as exc:
                failed[name] = exc
                raise
        return built[name]

    yield get
    for session in built.values():
        session.close()
    mp.undo()


def _param(v: Vector) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=v.xfail)] if v.xfail else []
    return pytest.param(v, id=v.id, marks=marks)


@pytest.mark.parametrize("vector", [_param(v) for v in VECTORS])
def test_corpus_message(vector: Vector, sessions: GetSession) -> None:
    session = sessions(vector.profile)
    raw = load(vector.path)
    if vector.error is not None:
        expected = getattr(errors, vector.error)
        with pytest.raises(expected):
            session.message_open(raw, now=vector.now)
        return
    opened = session.message_open(raw, now=vector.now)
    check(vector, opened)


def test_every_row_has_a_reason() -> None:
    assert all(v.why for v in VECTORS), [v.path for v in VECTORS if not v.why]
    paths = [v.path for v in VECTORS]
    assert len(paths) == len(set(paths))


def test_table_covers_every_message_file() -> None:
    """Every message file of the covered directories has a row (none forgotten)."""
    covered = {v.path.split("#")[0] for v in VECTORS}
    dirs = [
        "thunderbird-smime",
        "thunderbird-smime-interop",
        "thunderbird-smime-manual",
        "thunderbird-smime-mochitest",
        "thunderbird-openpgp/eml",
        "thunderbird-openpgp/eml-rc-remote-content",
        "autocrypt-protected-headers",
        "lamps-header-protection-draft-vectors",
        "smime-rs-realworld",
        "deltachat/message",
        "notmuch/corpora-crypto",
        "notmuch/corpora-protected-headers",
        "notmuch/corpora-pkcs7",
        "mailpile/Maildir-cur",
        "covert-content-attacks",
        "johnny-you-are-fired",
    ]
    missing = []
    for d in dirs:
        for f in sorted((profiles.CORPUS / d).rglob("*")):
            rel = str(f.relative_to(profiles.CORPUS))
            if f.is_file() and (
                f.suffix in {".eml", ".env"} or "/corpora-" in rel or "/Maildir-cur/" in rel
            ):
                if rel not in covered:
                    missing.append(rel)
    assert not missing, missing


def test_keystore_profiles_are_headless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    ks = profiles.build("empty", tmp_path / "p")
    assert isinstance(ks, Keystore)
    ks.close()
