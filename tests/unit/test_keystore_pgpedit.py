"""Own OpenPGP keys re-signed by Sealmail: expiration set/removed, user ids added/revoked."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pysequoia as ps
import pytest
from pysequoia.packet import PacketPile, Tag

from keystore import openpgp, pgpedit
from keystore.errors import NoSigningKey, UsageError
from keystore.store import Keystore
from tests.conftest import Cli
from tests.helpers.memkeyring import MemoryKeyring

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def ks(tmp_path: Path) -> Iterator[Keystore]:
    store = Keystore.open(tmp_path / "profile", keyring_backend=MemoryKeyring(), env={})
    yield store
    store.close()
    MemoryKeyring.store.clear()


@pytest.mark.parametrize("algo", ["cv25519", "rsa3072"])
def test_expiration_removed_set_and_removed_again(ks: Keystore, algo: str) -> None:
    info = ks.generate_pgp("ann@example.org", "Ann", now=NOW, algo=algo)  # type: ignore[arg-type]
    assert info.expires is not None
    never = ks.set_expiry(info.fingerprint, None, now=NOW)
    assert never.expires is None
    cert = ks.get_pgp_cert(info.fingerprint)
    assert cert.expiration is None
    soon = NOW + dt.timedelta(days=5)
    dated = ks.set_expiry(info.fingerprint, soon, now=NOW)
    assert dated.expires is not None and abs((dated.expires - soon).total_seconds()) < 2
    assert ks.get_pgp_cert(info.fingerprint).expiration == dated.expires
    # the secret key kept in the profile carries the same signatures and still works
    key = ks.get_pgp_tsk(info.fingerprint)
    assert key.cert.expiration == dated.expires
    enc = ps.encrypt(b"hi", [ks.get_pgp_cert(info.fingerprint)], signer=key.signer())
    assert ps.decrypt(enc, key.decryptor()).bytes == b"hi"
    assert ks.set_expiry(info.fingerprint, None, now=NOW).expires is None
    # expired at a later time, usable again after removing the expiration
    later = NOW + dt.timedelta(days=10)
    assert ks.recipient_keys("ann@example.org", now=later).pgp


def test_expiry_applies_to_subkeys(ks: Keystore) -> None:
    info = ks.generate_pgp("sub@example.org", now=NOW)
    ks.set_expiry(info.fingerprint, NOW + dt.timedelta(days=2), now=NOW)
    raw = bytes(ks.get_pgp_cert(info.fingerprint))
    periods: dict[str, tuple[dt.datetime, dt.timedelta | None]] = {}
    created: dict[str, dt.datetime] = {}
    current = None
    for p in PacketPile.from_bytes(raw):
        if p.tag in (Tag.PublicKey, Tag.PublicSubkey):
            current = "primary" if p.tag == Tag.PublicKey else "sub"
            created[current] = p.key_created
        elif p.tag == Tag.Signature and current is not None:
            if p.signature_created and (
                current not in periods or p.signature_created >= periods[current][0]
            ):
                periods[current] = (p.signature_created, p.key_validity_period)
    assert set(periods) == {"primary", "sub"}
    for tag, (_, period) in periods.items():
        assert period is not None
        assert abs((created[tag] + period) - (NOW + dt.timedelta(days=2))).total_seconds() < 2


def test_not_own_key_refused(ks: Keystore, tmp_path: Path) -> None:
    other = Keystore.open(tmp_path / "other", keyring_backend=MemoryKeyring(), env={})
    info = other.generate_pgp("bob@example.org", now=NOW)
    ks.import_bytes(other.export_public(info.fingerprint))
    other.close()
    with pytest.raises(NoSigningKey):
        ks.set_expiry(info.fingerprint, None)
    with pytest.raises(NoSigningKey):
        ks.add_user_id(info.fingerprint, "Bob <b2@example.org>", now=NOW)


def test_protected_key_cannot_be_resigned() -> None:
    key = openpgp.generate("p@example.org", now=NOW)
    raw = bytearray(bytes(key.tsk))
    # flip the primary's S2K usage octet to "protected": pgpedit must refuse, not misparse
    body_start = 2
    pub_len = pgpedit._public_len(bytes(raw[body_start:]))
    raw[body_start + pub_len] = 254
    with pytest.raises(UsageError, match="passphrase"):
        pgpedit.parse_own_key(bytes(raw))


def test_user_id_add_revoke_and_validity_at_a_time(ks: Keystore) -> None:
    t0 = dt.datetime.now(dt.UTC)
    info = ks.generate_pgp("carl@example.org", "Carl", now=t0)
    added = ks.add_user_id(info.fingerprint, "Carl Work <carl@work.example>", now=t0)
    assert set(added.emails) == {"carl@example.org", "carl@work.example"}
    assert ks.recipient_keys("carl@work.example", now=t0).pgp
    uids = {u.user_id: u for u in ks.user_ids(info.fingerprint, now=t0)}
    assert uids["Carl Work <carl@work.example>"].valid
    with pytest.raises(UsageError, match="already"):
        ks.add_user_id(info.fingerprint, "Carl Work <carl@work.example>", now=t0)
    time.sleep(1.1)  # revocation one second later than the certification
    revoked = ks.revoke_user_id(info.fingerprint, "Carl Work <carl@work.example>")
    assert revoked.emails == ("carl@example.org",)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    found = ks.recipient_keys("carl@work.example", now=after)
    assert not found.pgp and found.reasons
    uids = {u.user_id: u for u in ks.user_ids(info.fingerprint, now=after)}
    gone = uids["Carl Work <carl@work.example>"]
    assert not gone.valid and "revoked" in gone.reason and gone.revoked_at is not None
    # the same user id judged before its revocation was valid
    before = {u.user_id: u for u in ks.user_ids(info.fingerprint, now=t0)}
    assert before["Carl Work <carl@work.example>"].valid
    assert uids["Carl <carl@example.org>"].valid
    with pytest.raises(UsageError, match="only user id"):
        ks.revoke_user_id(info.fingerprint, "Carl <carl@example.org>")
    with pytest.raises(UsageError, match="no live user id"):
        ks.revoke_user_id(info.fingerprint, "Nobody <n@example.org>")


def test_new_user_id_keeps_preferences_and_expiry(ks: Keystore) -> None:
    info = ks.generate_pgp("dora@example.org", now=NOW)
    ks.add_user_id(info.fingerprint, "Dora <dora@second.example>", now=NOW)
    cert = ks.get_pgp_cert(info.fingerprint)
    assert cert.expiration == info.expires
    # user ids from before: the primary stays the original one
    assert str(cert.user_ids[0]) == "<dora@example.org>"


def test_cli_expire_never_and_uid(cli: Cli) -> None:
    out = cli.ok("keys", "generate", "--email", "eve@example.org", "--kind", "pgp", "--json")
    fpr = json.loads(out.stdout)["fingerprint"]
    assert json.loads(cli.ok("keys", "expire", fpr, "--never", "--json").stdout)["expires"] is None
    listed = cli.ok("keys", "list").text
    assert "expires never" in listed
    res = json.loads(cli.ok("keys", "expire", fpr, "--in", "30", "--json").stdout)
    assert res["expires"] is not None
    cli.ok("keys", "uid", "add", fpr, "--uid", "Eve <eve@other.example>")
    st = json.loads(cli.ok("keys", "status", "eve@other.example", "--json").stdout)
    assert st["usable"] and st["methods"][0]["user_id"] == "Eve <eve@other.example>"
    time.sleep(1.1)
    cli.ok("keys", "uid", "revoke", fpr, "--uid", "Eve <eve@other.example>")
    st = json.loads(cli.ok("keys", "status", "eve@other.example", "--json").stdout)
    assert not st["usable"]
    uids = json.loads(cli.ok("keys", "uid", "list", fpr, "--json").stdout)
    by = {u["user_id"]: u for u in uids}
    assert by["Eve <eve@other.example>"]["valid"] is False
    assert by["<eve@example.org>"]["valid"] is True
    bad = cli("keys", "uid", "revoke", fpr, "--uid", "<eve@example.org>")
    assert bad.returncode == 2 and "only user id" in bad.stderr
