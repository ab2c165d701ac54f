"""Secret protection: master key in a keyring or under a profile passphrase, never plaintext."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import pytest

from keystore.errors import BadPassword, InsecureKeyring, KeystoreError, SecretStoreUnavailable
from keystore.profile import Profile, open_profile
from keystore.secrets import (
    KEYRING_SERVICE,
    KdfParams,
    check_keyring_backend,
    open_secret_box,
    secret_store_mode,
)
from keystore.store import Keystore
from tests.helpers.memkeyring import MemoryKeyring

REPO = Path(__file__).resolve().parents[2]
FAST = KdfParams(n=2**12)
PASS = "correct horse battery staple 4711"


class PlaintextLookalike(keyring.backend.KeyringBackend):
    """Stands in for keyrings.alt's PlaintextKeyring without installing keyrings.alt."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> str | None:
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise AssertionError("a plaintext backend must never receive a secret")

    def delete_password(self, service: str, username: str) -> None:
        return None


PlaintextLookalike.__module__ = "keyrings.alt.file"


class ZeroPriority(MemoryKeyring):
    priority = 0  # type: ignore[assignment]


# Defining a backend class registers it with keyring, whose default choice (for any test
# that does not pass a backend) could then become the plaintext stand-in: it is passed
# explicitly where wanted, never chosen by keyring.
for _double in (PlaintextLookalike, ZeroPriority):
    keyring.backend.KeyringBackend._classes.discard(_double)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _clean_memkeyring() -> None:
    MemoryKeyring.store.clear()


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    return open_profile(tmp_path / "profile")


def test_keyring_mode_stores_master_key_in_keyring(profile: Profile) -> None:
    box = open_secret_box(profile, keyring_backend=MemoryKeyring(), env={})
    assert box.mode == "keyring"
    assert secret_store_mode(profile) == "keyring"
    (entry,) = MemoryKeyring.store.items()
    assert entry[0][0] == KEYRING_SERVICE
    sealed = box.seal("rec", b"hello")
    again = open_secret_box(profile, keyring_backend=MemoryKeyring(), env={})
    assert again.open("rec", sealed) == b"hello"
    state = json.loads(profile.file("secrets.json").read_bytes())
    assert entry[1] not in json.dumps(state)


def test_sealed_record_is_bound_to_its_name(profile: Profile) -> None:
    box = open_secret_box(profile, keyring_backend=MemoryKeyring(), env={})
    sealed = box.seal("pgp-secret:AAAA", b"secret")
    with pytest.raises(KeystoreError):
        box.open("pgp-secret:BBBB", sealed)
    with pytest.raises(KeystoreError):
        box.open("pgp-secret:AAAA", sealed[:-1] + bytes([sealed[-1] ^ 1]))


def test_plaintext_keyring_is_refused(profile: Profile) -> None:
    with pytest.raises(InsecureKeyring) as info:
        open_secret_box(profile, keyring_backend=PlaintextLookalike(), env={"X": "1"})
    assert "plaintext" in str(info.value)
    assert "keyrings.alt" in info.value.hint
    assert not profile.file("secrets.json").exists()


def test_plaintext_keyring_refused_even_with_a_passphrase(profile: Profile) -> None:
    with pytest.raises(InsecureKeyring):
        open_secret_box(profile, keyring_backend=PlaintextLookalike(), passphrase=PASS, env={})


@pytest.mark.parametrize(
    "backend",
    [
        keyring.backends.fail.Keyring(),
        ZeroPriority(),
        keyring.backends.chainer.ChainerBackend(),
    ],
    ids=["fail", "priority-0", "empty-chainer"],
)
def test_no_usable_keyring_means_passphrase(
    profile: Profile, backend: keyring.backend.KeyringBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring.backends.chainer.ChainerBackend, "backends", [], raising=False)
    assert check_keyring_backend(backend) is None
    box = open_secret_box(
        profile, keyring_backend=backend, env={"SEALMAIL_PROFILE_PASSPHRASE": PASS}, kdf=FAST
    )
    assert box.mode == "passphrase"


def test_chainer_resolves_to_its_first_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    mem = MemoryKeyring()
    monkeypatch.setattr(
        keyring.backends.chainer.ChainerBackend, "backends", [mem, PlaintextLookalike()]
    )
    assert check_keyring_backend(keyring.backends.chainer.ChainerBackend()) is mem
    monkeypatch.setattr(
        keyring.backends.chainer.ChainerBackend, "backends", [PlaintextLookalike(), mem]
    )
    with pytest.raises(InsecureKeyring):
        check_keyring_backend(keyring.backends.chainer.ChainerBackend())


def test_passphrase_mode_wrong_passphrase_is_bad_password(profile: Profile) -> None:
    fail = keyring.backends.fail.Keyring()
    box = open_secret_box(profile, keyring_backend=fail, passphrase=PASS, kdf=FAST, env={})
    sealed = box.seal("x", b"data")
    with pytest.raises(BadPassword):
        open_secret_box(profile, keyring_backend=fail, passphrase="wrong", env={})
    reopened = open_secret_box(
        profile, keyring_backend=fail, env={"SEALMAIL_PROFILE_PASSPHRASE": PASS}
    )
    assert reopened.open("x", sealed) == b"data"


def test_passphrase_callback_is_told_new_or_unlock(profile: Profile) -> None:
    fail = keyring.backends.fail.Keyring()
    reasons: list[str] = []

    def ask(reason: str) -> str:
        reasons.append(reason)
        return PASS

    open_secret_box(profile, keyring_backend=fail, passphrase_callback=ask, kdf=FAST, env={})
    open_secret_box(profile, keyring_backend=fail, passphrase_callback=ask, env={})
    assert reasons == ["new", "unlock"]


def test_no_keyring_and_no_passphrase_is_unavailable(profile: Profile) -> None:
    with pytest.raises(SecretStoreUnavailable) as info:
        open_secret_box(profile, keyring_backend=keyring.backends.fail.Keyring(), env={})
    assert "SEALMAIL_PROFILE_PASSPHRASE" in info.value.hint


def test_keyring_profile_without_keyring_later_is_unavailable(profile: Profile) -> None:
    open_secret_box(profile, keyring_backend=MemoryKeyring(), env={})
    with pytest.raises(SecretStoreUnavailable):
        open_secret_box(profile, keyring_backend=keyring.backends.fail.Keyring(), env={})
    MemoryKeyring.store.clear()
    with pytest.raises(SecretStoreUnavailable, match="missing"):
        open_secret_box(profile, keyring_backend=MemoryKeyring(), env={})


def test_tampered_kdf_parameters_are_refused(profile: Profile) -> None:
    fail = keyring.backends.fail.Keyring()
    open_secret_box(profile, keyring_backend=fail, passphrase=PASS, kdf=FAST, env={})
    path = profile.file("secrets.json")
    state = json.loads(path.read_bytes())
    state["kdf"]["n"] = 2**30
    path.write_text(json.dumps(state))
    with pytest.raises(KeystoreError, match="out-of-range"):
        open_secret_box(profile, keyring_backend=fail, passphrase=PASS, env={})


def _all_bytes_under(root: Path) -> bytes:
    out = b""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            out += (Path(dirpath) / name).read_bytes()
    return out


@pytest.mark.parametrize("mode", ["keyring", "passphrase"])
def test_profile_never_holds_secrets_in_plaintext(tmp_path: Path, mode: str) -> None:
    backend = MemoryKeyring() if mode == "keyring" else keyring.backends.fail.Keyring()
    now = dt.datetime.now(dt.UTC)
    ks = Keystore.open(
        tmp_path / "profile", keyring_backend=backend, passphrase=PASS, kdf=FAST, env={}
    )
    info = ks.generate_pgp("alice@example.org", now=now)
    smime = ks.generate_smime_selfsigned("alice@example.org", now=now, key="rsa-3072")
    ks.put_secret("imap:alice", b"imap password 1234")
    needles = [PASS.encode(), b"imap password 1234"]
    tsk = ks.get_pgp_tsk(info.fingerprint).tsk
    needles += [bytes(tsk), str(tsk).encode()]
    key = ks.get_x509_key(smime.fingerprint)
    from cryptography.hazmat.primitives import serialization

    nums = key.private_numbers()  # type: ignore[union-attr]
    needles += [
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        nums.d.to_bytes(384, "big"),  # type: ignore[union-attr]
        nums.p.to_bytes(192, "big"),  # type: ignore[union-attr]
    ]
    # The raw secret key material of the OpenPGP key (Ed25519 seed / X25519 scalar).
    from pysequoia.packet import PacketPile, Tag

    for pkt in PacketPile.from_bytes(bytes(tsk)):
        if pkt.tag in (Tag.SecretKey, Tag.SecretSubkey):
            needles.append(pkt.body[-34:-2])  # the last MPI's value
    if mode == "keyring":
        needles += [base64.b64decode(v) for v in MemoryKeyring.store.values()]
    ks.close()
    blob = _all_bytes_under(tmp_path / "profile")
    for needle in needles:
        assert needle and needle not in blob
    assert b"imap password" not in blob


_CHILD = """
import sys
from keystore.store import Keystore
ks = Keystore.open(sys.argv[1])
print(ks.box.mode)
"""


def test_python_keyring_backend_env_selects_the_test_backend(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
        "PYTHON_KEYRING_BACKEND": "tests.helpers.memkeyring.MemoryKeyring",
        "PYTHONPATH": str(REPO),
    }
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "p")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "keyring"


def test_fail_backend_env_uses_passphrase_from_env(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SEALMAIL_")},
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "SEALMAIL_PROFILE_PASSPHRASE": PASS,
        "PYTHONPATH": str(REPO),
    }
    run = [sys.executable, "-c", _CHILD, str(tmp_path / "p")]
    out = subprocess.run(run, env=env, cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "passphrase"
    env["SEALMAIL_PROFILE_PASSPHRASE"] = "nope"
    bad = subprocess.run(run, env=env, cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "BadPassword" in bad.stderr
