"""The GnuPG backend against real GnuPG homes: list, encrypt to, sign with, decrypt via gpg-agent.

Two homes: ``mine`` (the user's GnuPG home that Sealmail is pointed at) and ``theirs``
(correspondents). In ``mine``: Ivy (own key, ultimate), Kim (imported and locally
certified: full validity), Jon (imported, never certified: unknown validity).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pysequoia as ps
import pytest

from keystore import discovery, settings
from keystore.errors import GnupgError, NoKeyForRecipient, UsageError
from keystore.store import Keystore
from tests.conftest import Cli
from tests.helpers.gnupg import Gpg
from tests.helpers.memkeyring import MemoryKeyring


def now_real() -> dt.datetime:
    """The real clock when used (gpg stamps keys with it; see test_keystore_gpg_openssl)."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Homes:
    mine: Gpg
    theirs: Gpg
    ivy: str
    kim: str
    jon: str


@pytest.fixture(scope="module")
def homes() -> Iterator[Homes]:
    mine, theirs = Gpg(), Gpg()
    try:
        ivy = mine.generate("Ivy <ivy@example.org>")
        kim = theirs.generate("Kim <kim@example.org>")
        jon = theirs.generate("Jon <jon@example.org>")
        for fpr in (kim, jon):
            mine.import_key(theirs.export(fpr))
        mine.check("--quick-lsign-key", kim, "Kim <kim@example.org>")
        theirs.import_key(mine.export(ivy))
        theirs.check("--quick-lsign-key", ivy, "Ivy <ivy@example.org>")
        yield Homes(mine, theirs, ivy, kim, jon)
    finally:
        mine.close()  # kills each home's gpg-agent
        theirs.close()


@pytest.fixture
def ks(tmp_path: Path, homes: Homes) -> Iterator[Keystore]:
    store = Keystore.open(tmp_path / "profile", keyring_backend=MemoryKeyring(), env={})
    store.set_gnupg_home(homes.mine.home)
    yield store
    store.close()
    MemoryKeyring.store.clear()


def test_setting_on_and_off(tmp_path: Path, homes: Homes) -> None:
    store = Keystore.open(tmp_path / "p2", keyring_backend=MemoryKeyring(), env={})
    try:
        assert store.gnupg is None and store.gnupg_keys() == []
        store.set_gnupg_home(homes.mine.home)
        assert settings.load_settings(store.profile)["gnupg_home"] == str(homes.mine.home)
        path = store.profile.file(settings.SETTINGS_FILE)
        assert path.stat().st_mode & 0o777 == 0o600
        again = Keystore.open(tmp_path / "p2", keyring_backend=MemoryKeyring(), env={})
        assert again.gnupg is not None and again.gnupg.home == homes.mine.home
        again.close()
        store.set_gnupg_home(None)
        assert store.gnupg is None and "gnupg_home" not in settings.load_settings(store.profile)
        with pytest.raises(UsageError, match="does not exist"):
            store.set_gnupg_home(tmp_path / "nope")
        with pytest.raises(UsageError, match="backend is off"):
            store.gnupg_decrypt(b"x")
    finally:
        store.close()


def test_list_keys_with_gpg_validity(ks: Keystore, homes: Homes) -> None:
    infos = {i.fingerprint: i for i in ks.gnupg_keys()}
    assert set(infos) == {homes.ivy, homes.kim, homes.jon}
    assert all(i.origin == "gnupg" and i.kind == "pgp" for i in infos.values())
    assert infos[homes.ivy].secret and not infos[homes.kim].secret
    assert infos[homes.ivy].confirmed and infos[homes.kim].confirmed
    assert not infos[homes.jon].confirmed  # valid=True in python-gnupg would not say this
    assert infos[homes.kim].emails == ("kim@example.org",)


def test_recipient_keys_use_trusted_gnupg_keys_only(ks: Keystore, homes: Homes) -> None:
    found = ks.recipient_keys("Kim@Example.org", now=now_real())
    assert [str(c.fingerprint).upper() for c in found.pgp] == [homes.kim]
    assert [k.fingerprint for k in found.gnupg] == [homes.kim]
    st = discovery.address_status(ks, "kim@example.org", now=now_real()).to_json()
    assert st["usable"] and st["methods"][0]["origin"] == "gnupg"
    assert st["methods"][0]["user_id"] == "Kim <kim@example.org>"
    jon = ks.recipient_keys("jon@example.org", now=now_real())
    assert not jon.any and any("not trusted in the GnuPG keyring" in r for r in jon.reasons)
    # Sealmail encrypts to the GnuPG key itself (pysequoia); Kim's gpg reads it
    msg = ps.encrypt(b"for kim", list(found.pgp))
    assert homes.theirs.check("--decrypt", input=msg).stdout == b"for kim"


def test_store_key_wins_over_the_same_gnupg_key(ks: Keystore, homes: Homes) -> None:
    ks.import_bytes(homes.theirs.export(homes.kim))
    found = ks.recipient_keys("kim@example.org", now=now_real())
    assert len(found.pgp) == 1 and found.gnupg == ()


def test_decrypt_via_gpg_agent_and_signer_trust(ks: Keystore, homes: Homes) -> None:
    signed_by_kim = homes.theirs.check(
        "--encrypt", "--sign", "-u", homes.kim, "-r", homes.ivy, "--armor", input=b"from kim"
    ).stdout
    res = ks.gnupg_decrypt(signed_by_kim)
    assert res.data == b"from kim" and res.signer == homes.kim and res.trusted
    assert res.key_fingerprint == homes.ivy
    signed_by_jon = homes.theirs.check(
        "--encrypt", "--sign", "-u", homes.jon, "-r", homes.ivy, input=b"from jon"
    ).stdout
    res = ks.gnupg_decrypt(signed_by_jon)
    # a good signature by an untrusted key: python-gnupg says valid, Sealmail says untrusted
    assert res.data == b"from jon" and res.signer == homes.jon and not res.trusted
    not_for_us = homes.theirs.check("--encrypt", "-r", homes.kim, input=b"x").stdout
    with pytest.raises(GnupgError, match="decrypt"):
        ks.gnupg_decrypt(not_for_us)


def test_sign_with_gnupg_key_verified_by_gpg(ks: Keystore, homes: Homes) -> None:
    sig = ks.gnupg_sign(b"signed text", homes.ivy)
    assert sig.startswith(b"-----BEGIN PGP SIGNATURE")
    (homes.mine.home / "data.txt").write_bytes(b"signed text")
    (homes.mine.home / "data.sig").write_bytes(sig)
    res = homes.theirs.check(
        "--verify", str(homes.mine.home / "data.sig"), str(homes.mine.home / "data.txt")
    )
    assert res.has("GOODSIG") and res.has("VALIDSIG")
    backend = ks.gnupg
    assert backend is not None
    good = backend.verify(b"signed text", sig)
    assert good.signer == homes.ivy and good.trusted
    assert backend.verify(b"signed text!", sig).signer is None


def test_gnupg_encrypt_to_trusted_key(ks: Keystore, homes: Homes) -> None:
    enc = ks.gnupg_encrypt(b"via gpg", ["kim@example.org"], now=now_real(), sign_with=homes.ivy)
    res = homes.theirs.check("--decrypt", input=enc)
    assert res.stdout == b"via gpg" and res.has("GOODSIG")
    with pytest.raises(NoKeyForRecipient, match=r"jon@example\.org"):
        ks.gnupg_encrypt(b"x", ["jon@example.org"], now=now_real())


def test_protected_gnupg_key_with_loopback_passphrase(tmp_path: Path) -> None:
    home = Gpg()
    store = Keystore.open(tmp_path / "p3", keyring_backend=MemoryKeyring(), env={})
    try:
        lea = home.generate("Lea <lea@example.org>", passphrase="lea pass")
        store.set_gnupg_home(home.home)
        enc = home.check("--encrypt", "-r", lea, input=b"for lea").stdout
        subprocess.run(["gpgconf", "--homedir", str(home.home), "--kill", "gpg-agent"], check=False)
        with pytest.raises(GnupgError):
            store.gnupg_decrypt(enc, passphrase="wrong")
        assert store.gnupg_decrypt(enc, passphrase="lea pass").data == b"for lea"
    finally:
        store.close()
        home.close()


def test_cli_gnupg_switch(cli: Cli, homes: Homes) -> None:
    on = json.loads(cli.ok("keys", "gnupg", "--home", str(homes.mine.home), "--json").stdout)
    assert on["gnupg_home"] == str(homes.mine.home) and on["keys"] == 3 and on["secret_keys"] == 1
    listed = json.loads(cli.ok("keys", "list", "--json").stdout)
    assert {k["fingerprint"] for k in listed if k["origin"] == "gnupg"} == {
        homes.ivy,
        homes.kim,
        homes.jon,
    }
    st = json.loads(cli.ok("keys", "status", "kim@example.org", "--json").stdout)
    assert st["usable"] and st["methods"][0]["origin"] == "gnupg"
    off = json.loads(cli.ok("keys", "gnupg", "--off", "--json").stdout)
    assert off["gnupg_home"] is None
    st = json.loads(cli.ok("keys", "status", "kim@example.org", "--json").stdout)
    assert not st["usable"]
    bad = cli("keys", "gnupg", "--home", "/nonexistent/gnupg")
    assert bad.returncode == 2 and "does not exist" in bad.stderr
