"""Sealmail's re-signed keys judged by gpg: expiration removed/set, user ids added/revoked."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keystore.errors import UsageError
from keystore.store import Keystore
from tests.helpers.gnupg import Gpg
from tests.helpers.memkeyring import MemoryKeyring


@pytest.fixture
def ks(tmp_path: Path) -> Iterator[Keystore]:
    store = Keystore.open(tmp_path / "profile", keyring_backend=MemoryKeyring(), env={})
    yield store
    store.close()
    MemoryKeyring.store.clear()


@pytest.fixture
def gpg() -> Iterator[Gpg]:
    g = Gpg()
    yield g
    g.close()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _colons(gpg: Gpg, fpr: str) -> list[list[str]]:
    out = gpg.check("--with-colons", "--list-keys", fpr).stdout.decode()
    return [line.split(":") for line in out.splitlines()]


def _bad_sigs(gpg: Gpg, fpr: str) -> list[str]:
    out = gpg.check("--with-colons", "--check-signatures", fpr).stdout.decode()
    sigs = [line for line in out.splitlines() if line.startswith(("sig:", "rev:"))]
    assert sigs
    return [line for line in sigs if line.split(":")[1] != "!"]


@pytest.mark.parametrize("algo", ["cv25519", "rsa3072"])
def test_gpg_sees_expiration_removed_then_set(ks: Keystore, gpg: Gpg, algo: str) -> None:
    info = ks.generate_pgp("fay@example.org", "Fay", now=_now(), algo=algo)  # type: ignore[arg-type]
    time.sleep(1.1)
    ks.set_expiry(info.fingerprint, None, now=_now())
    assert ks.get_pgp_cert(info.fingerprint).expiration is None
    gpg.import_key(ks.export_public(info.fingerprint))
    rows = _colons(gpg, info.fingerprint)
    keys = [r for r in rows if r[0] in ("pub", "sub")]
    assert len(keys) == 2 and all(r[6] == "" for r in keys), rows
    assert not _bad_sigs(gpg, info.fingerprint)
    target = _now() + dt.timedelta(days=30)
    time.sleep(1.1)
    ks.set_expiry(info.fingerprint, target, now=_now())
    gpg.import_key(ks.export_public(info.fingerprint))
    keys = [r for r in _colons(gpg, info.fingerprint) if r[0] in ("pub", "sub")]
    assert all(abs(int(r[6]) - int(target.timestamp())) < 3 for r in keys), keys
    assert not _bad_sigs(gpg, info.fingerprint)
    exp = ks.get_pgp_cert(info.fingerprint).expiration
    assert exp is not None and abs((exp - target).total_seconds()) < 3
    # gpg can still use the secret key with the new signatures (and encrypts to it)
    gpg.import_key(ks.export_secret_pgp(info.fingerprint))
    enc = gpg.check("--encrypt", "-r", info.fingerprint, input=b"still works").stdout
    (key,) = ks.decryption_keys("pgp")
    import pysequoia as ps

    assert ps.decrypt(enc, key.decryptor()).bytes == b"still works"


def test_gpg_key_imported_expiry_removed(ks: Keystore, gpg: Gpg) -> None:
    """A key gpg made (unprotected, with an expiry) can have its expiration removed."""
    gpg.check("--quick-gen-key", "Gus <gus@example.org>", "ed25519", "sign,cert", "1y")
    fpr = gpg.fingerprint("gus@example.org")
    gpg.check("--quick-add-key", fpr, "cv25519", "encr", "1y")
    (info,) = ks.import_bytes(gpg.export(fpr, secret=True))
    assert info.expires is not None
    time.sleep(1.1)
    assert ks.set_expiry(fpr, None, now=_now()).expires is None
    gpg.import_key(ks.export_public(fpr))
    keys = [r for r in _colons(gpg, fpr) if r[0] in ("pub", "sub")]
    assert all(r[6] == "" for r in keys), keys
    assert not _bad_sigs(gpg, fpr)


def test_gpg_sees_user_id_added_and_revoked(ks: Keystore, gpg: Gpg) -> None:
    info = ks.generate_pgp("hal@example.org", "Hal", now=_now())
    ks.add_user_id(info.fingerprint, "Hal at Work <hal@work.example>", now=_now())
    gpg.import_key(ks.export_public(info.fingerprint))
    uids = {r[9]: r for r in _colons(gpg, info.fingerprint) if r[0] == "uid"}
    assert set(uids) == {"Hal <hal@example.org>", "Hal at Work <hal@work.example>"}
    assert all(r[1] != "r" for r in uids.values())
    assert not _bad_sigs(gpg, info.fingerprint)
    # gpg encrypts to the new address
    gpg.check("--encrypt", "-r", "hal@work.example", input=b"x")
    time.sleep(1.1)
    ks.revoke_user_id(info.fingerprint, "Hal at Work <hal@work.example>")
    gpg.import_key(ks.export_public(info.fingerprint))
    uids = {r[9]: r for r in _colons(gpg, info.fingerprint) if r[0] == "uid"}
    assert uids["Hal at Work <hal@work.example>"][1] == "r"
    assert uids["Hal <hal@example.org>"][1] != "r"
    assert gpg.run("--encrypt", "-r", "hal@work.example", input=b"x").returncode != 0


def test_passphrase_protected_gpg_key(ks: Keystore, gpg: Gpg) -> None:
    """pysequoia sets an expiration on a protected key; removing one is refused clearly."""
    fpr = gpg.generate("Ida <ida@example.org>", passphrase="ida-pass")
    armored = gpg.check("--armor", "--export-secret-keys", fpr, passphrase="ida-pass").stdout
    ks.import_bytes(armored, passphrase=b"ida-pass")
    with pytest.raises(UsageError, match="passphrase-protected"):
        ks.set_expiry(fpr, None, now=_now())
    target = _now() + dt.timedelta(days=20)
    assert ks.set_expiry(fpr, target, now=_now()).expires is not None
    gpg.import_key(ks.export_public(fpr))
    pub = next(r for r in _colons(gpg, fpr) if r[0] == "pub")
    assert abs(int(pub[6]) - int(target.timestamp())) < 3
    added = ks.add_user_id(fpr, "Ida Two <ida@two.example>", now=_now())
    assert "ida@two.example" in added.emails
    gpg.import_key(ks.export_public(fpr))
    assert "Ida Two <ida@two.example>" in {r[9] for r in _colons(gpg, fpr) if r[0] == "uid"}
