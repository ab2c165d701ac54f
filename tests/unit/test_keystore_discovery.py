"""Discovery: WKD against a real local HTTPS server, Autocrypt peers, harvested S/MIME certs, status."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pysequoia as ps
import pytest
from asn1crypto import cms as asn1_cms
from cryptography.hazmat.primitives import serialization

from keystore import autocrypt, discovery, wkd
from keystore.errors import (
    DiscoveryTimeout,
    DiscoveryTlsError,
    KeyNotPublished,
    ResponseTooLarge,
    WrongKeyForAddress,
)
from keystore.store import Keystore
from tests.helpers.memkeyring import MemoryKeyring
from tests.helpers.pki_matrix import EMAIL, NOW, Matrix, make_matrix
from tests.servers.https import HttpsController, TestCA

REAL_NOW = dt.datetime.now(dt.UTC)
ADDR = "Alice.Doe@example.org"
HOSTS = ["openpgpkey.example.org", "example.org"]


@pytest.fixture
def make_ks(tmp_path: Path) -> Iterator[Callable[[str], Keystore]]:
    opened: list[Keystore] = []

    def make(name: str = "profile") -> Keystore:
        ks = Keystore.open(tmp_path / name, keyring_backend=MemoryKeyring(), env={})
        opened.append(ks)
        return ks

    yield make
    for ks in opened:
        ks.close()
    MemoryKeyring.store.clear()


@pytest.fixture
def ks(make_ks: Callable[[str], Keystore]) -> Keystore:
    return make_ks("profile")


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Public keys made by a second keystore: alice, a second alice key, and mallory."""
    d = tmp_path_factory.mktemp("keys")
    with Keystore.open(d / "maker", keyring_backend=MemoryKeyring(), env={}) as maker:
        out = {}
        for name, email in [("alice", ADDR), ("alice2", ADDR), ("mallory", "mallory@example.org")]:
            info = maker.generate_pgp(email, name, now=REAL_NOW)
            out[name] = maker.export_public(info.fingerprint)
            out[name + ".fpr"] = info.fingerprint.encode()
    MemoryKeyring.store.clear()
    return out


def _binary(armored: bytes) -> bytes:
    return bytes(ps.Cert.from_bytes(armored))


@pytest.fixture
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def server(tmp_path: Path, ca: TestCA) -> Iterator[HttpsController]:
    cert, key = ca.issue(HOSTS, tmp_path)
    ctl = HttpsController(cert, key).start()
    yield ctl
    ctl.stop()


def _settings(server: HttpsController, ca_file: Path, **kw: object) -> wkd.WkdSettings:
    resolve = {h: ("127.0.0.1", server.port) for h in HOSTS}
    return wkd.WkdSettings(ca_file=str(ca_file), resolve=resolve, **kw)  # type: ignore[arg-type]


def _publish(server: HttpsController, body: bytes, *, method: str = "advanced") -> None:
    for m, host, path in wkd.wkd_urls(ADDR):
        if m == method:
            server.content[(host, path)] = (200, body)


# --- pure parts -----------------------------------------------------------------------


def test_wkd_hash_matches_the_draft_example() -> None:
    assert wkd.wkd_hash("Joe.Doe") == "iy9q119eutrkn8s1mk4r39qejnbu3n5q"
    (adv, direct) = wkd.wkd_urls("Joe.Doe@Example.ORG")
    assert adv == (
        "advanced",
        "openpgpkey.example.org",
        "/.well-known/openpgpkey/example.org/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe",
    )
    assert direct[1:] == (
        "example.org",
        "/.well-known/openpgpkey/hu/iy9q119eutrkn8s1mk4r39qejnbu3n5q?l=Joe.Doe",
    )


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    kind = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    return kind, name


def test_every_module_declares_its_exports() -> None:
    for module in (wkd, discovery, autocrypt):
        names = module.__all__
        assert names == sorted(names, key=_isort_key)
        assert all(hasattr(module, n) for n in names)


# --- WKD against a real HTTPS server ------------------------------------------------


def test_wkd_advanced_method_finds_and_stores_a_discovered_key(
    ks: Keystore, server: HttpsController, ca: TestCA, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    _publish(server, _binary(keys["alice"]))
    settings = _settings(server, ca.write_ca(tmp_path / "ca.pem"))
    res = discovery.discover_wkd(ks, ADDR, now=REAL_NOW, settings=settings)
    assert res.fingerprints == (keys["alice.fpr"].decode(),) and not res.from_cache
    info = ks.get(res.fingerprints[0])
    assert info.origin == "discovered" and not info.confirmed
    assert ks.recipient_keys(ADDR, now=REAL_NOW).pgp  # usable for encryption
    # the cache answers the second time without asking the server
    asked = len(server.requests)
    again = discovery.discover_wkd(ks, ADDR, now=REAL_NOW, settings=settings)
    assert again.from_cache and len(server.requests) == asked
    # after the TTL, it asks again
    later = discovery.discover_wkd(
        ks, ADDR, now=REAL_NOW + discovery.TTL_FOUND + dt.timedelta(minutes=1), settings=settings
    )
    assert not later.from_cache and len(server.requests) > asked


def test_wkd_falls_back_to_the_direct_method(
    ks: Keystore, server: HttpsController, ca: TestCA, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    _publish(server, keys["alice"], method="direct")  # armored is accepted too
    settings = _settings(server, ca.write_ca(tmp_path / "ca.pem"))
    res = discovery.discover_wkd(ks, ADDR, now=REAL_NOW, settings=settings)
    assert res.detail.startswith("https://example.org/.well-known/openpgpkey/hu/")
    assert [h for h, _ in server.requests] == ["openpgpkey.example.org", "example.org"]


def test_wkd_404_is_key_not_published_and_cached(
    ks: Keystore, server: HttpsController, ca: TestCA, tmp_path: Path
) -> None:
    settings = _settings(server, ca.write_ca(tmp_path / "ca.pem"))
    with pytest.raises(KeyNotPublished) as err:
        discovery.discover_wkd(ks, ADDR, now=REAL_NOW, settings=settings)
    assert "ask them" in err.value.hint
    asked = len(server.requests)
    with pytest.raises(KeyNotPublished, match="cached"):
        discovery.discover_wkd(ks, ADDR, now=REAL_NOW, settings=settings)
    assert len(server.requests) == asked


def test_wkd_refuses_a_key_without_the_address(
    ks: Keystore, server: HttpsController, ca: TestCA, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    _publish(server, _binary(keys["mallory"]))
    settings = _settings(server, ca.write_ca(tmp_path / "ca.pem"))
    with pytest.raises(WrongKeyForAddress, match="wrong key for address"):
        discovery.discover_wkd(ks, ADDR, now=REAL_NOW, settings=settings)
    assert ks.list() == []


def test_wkd_bad_tls_is_refused(
    ks: Keystore, server: HttpsController, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    _publish(server, _binary(keys["alice"]))
    other_ca = TestCA(name="Not The Server's CA")  # the server's cert does not chain to it
    settings = _settings(server, other_ca.write_ca(tmp_path / "other.pem"))
    with pytest.raises(DiscoveryTlsError) as err:
        discovery.discover_wkd(ks, ADDR, now=REAL_NOW, settings=settings)
    assert "certificate" in str(err.value) and "trust store" in err.value.hint
    assert ks.list() == []


def test_wkd_wrong_host_name_is_bad_tls(
    ks: Keystore, tmp_path: Path, ca: TestCA, keys: dict[str, bytes]
) -> None:
    cert, key = ca.issue(["elsewhere.example"], tmp_path, name="wrong")
    ctl = HttpsController(cert, key).start()
    try:
        _publish(ctl, _binary(keys["alice"]))
        with pytest.raises(DiscoveryTlsError):
            discovery.discover_wkd(
                ks, ADDR, now=REAL_NOW, settings=_settings(ctl, ca.write_ca(tmp_path / "ca.pem"))
            )
    finally:
        ctl.stop()


def test_wkd_timeout_and_size_cap(
    ks: Keystore, server: HttpsController, ca: TestCA, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    _publish(server, _binary(keys["alice"]) * 50)
    ca_file = ca.write_ca(tmp_path / "ca.pem")
    with pytest.raises(ResponseTooLarge):
        wkd.fetch_wkd(ADDR, _settings(server, ca_file, max_bytes=1000))
    release = server.hold_responses()
    try:
        with pytest.raises(DiscoveryTimeout) as err:
            wkd.fetch_wkd(ADDR, _settings(server, ca_file, timeout=0.5))
        assert "in time" in err.value.hint
    finally:
        release.set()


def test_discovered_key_never_replaces_a_confirmed_one(
    ks: Keystore, server: HttpsController, ca: TestCA, tmp_path: Path, keys: dict[str, bytes]
) -> None:
    confirmed = ks.import_bytes(keys["alice"])[0]
    _publish(server, _binary(keys["alice2"]))
    settings = _settings(server, ca.write_ca(tmp_path / "ca.pem"))
    discovery.discover_wkd(ks, ADDR, now=REAL_NOW, settings=settings)
    found = ks.recipient_keys(ADDR, now=REAL_NOW)
    assert str(found.pgp[0].fingerprint).upper() == confirmed.fingerprint
    status = discovery.address_status(ks, ADDR, now=REAL_NOW).to_json()
    assert status["changed_key"] and status["changed_from"] == confirmed.fingerprint
    assert status["methods"][0]["confirmed"] and not status["methods"][1]["confirmed"]
    assert ks.get(confirmed.fingerprint).origin == "imported"


# --- Autocrypt ------------------------------------------------------------------------


def _ac(addr: str, key: bytes, prefer: str = "mutual") -> str:
    data = base64.b64encode(_binary(key)).decode()
    return f"addr={addr}; prefer-encrypt={prefer}; keydata={data}"


def test_autocrypt_header_parsing() -> None:
    assert autocrypt.parse_header("addr=a@b.c; keydata=AAAA") is not None
    assert autocrypt.parse_header("addr=a@b.c; keydata=AAAA; critical=1") is None
    assert autocrypt.parse_header("addr=a@b.c; keydata=AAAA; _extra=1") is not None
    assert autocrypt.parse_header("addr=a@b.c") is None
    assert autocrypt.parse_header("addr=a@b.c; keydata=!!!") is None
    h = autocrypt.parse_header("addr=A@B.c; prefer-encrypt=mutual; keydata=AA AA")
    assert h is not None and h.addr == "a@b.c" and h.prefer_encrypt == "mutual"
    two = ["addr=a@b.c; keydata=AAAA", "addr=a@b.c; keydata=AAAA"]
    assert autocrypt.header_for_sender(two, "a@b.c") is None


def test_autocrypt_peerstate_and_changed_key(ks: Keystore, keys: dict[str, bytes]) -> None:
    t1 = REAL_NOW - dt.timedelta(days=2)
    out = discovery.process_autocrypt(
        ks, ADDR, [_ac(ADDR, keys["alice"])], message_date=t1, now=REAL_NOW
    )
    assert out.updated and out.fingerprint == keys["alice.fpr"].decode()
    assert ks.get(out.fingerprint).origin == "discovered"
    st = discovery.address_status(ks, ADDR, now=REAL_NOW).to_json()
    assert st["discovered_only"] and st["autocrypt"]["prefer_encrypt"] == "mutual"
    assert not st["changed_key"]
    # an older message changes nothing
    old = discovery.process_autocrypt(
        ks, ADDR, [_ac(ADDR, keys["alice2"])], message_date=t1 - dt.timedelta(days=1), now=REAL_NOW
    )
    assert not old.updated
    # a newer one with another key: taken, and flagged as a change
    new = discovery.process_autocrypt(
        ks, ADDR, [_ac(ADDR, keys["alice2"], "nopreference")], message_date=REAL_NOW, now=REAL_NOW
    )
    assert new.updated and new.changed_from == keys["alice.fpr"].decode()
    assert discovery.address_status(ks, ADDR, now=REAL_NOW).changed_key
    # a header for another address, or a key without the address, is ignored
    assert not discovery.process_autocrypt(
        ks, ADDR, [_ac("x@example.org", keys["alice"])], message_date=REAL_NOW, now=REAL_NOW
    ).updated
    wrong = discovery.process_autocrypt(
        ks,
        "mallory@example.org",
        [_ac("mallory@example.org", keys["alice"])],
        message_date=REAL_NOW,
        now=REAL_NOW,
    )
    assert not wrong.updated and wrong.detail == "wrong key for address"


def test_autocrypt_never_replaces_a_confirmed_key(ks: Keystore, keys: dict[str, bytes]) -> None:
    confirmed = ks.import_bytes(keys["alice"])[0]
    out = discovery.process_autocrypt(
        ks, ADDR, [_ac(ADDR, keys["alice2"])], message_date=REAL_NOW, now=REAL_NOW
    )
    assert out.changed_from == confirmed.fingerprint
    first = ks.recipient_keys(ADDR, now=REAL_NOW).pgp[0]
    assert str(first.fingerprint).upper() == confirmed.fingerprint


# --- S/MIME harvesting ----------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return make_matrix()


def _caps(*oids: str) -> bytes:
    return asn1_cms.SMIMECapabilites([{"capability_id": o} for o in oids]).dump()


def test_harvest_records_chain_and_gcm_capability(ks: Keystore, matrix: Matrix) -> None:
    ks.import_bytes(matrix.pki.root.public_bytes(serialization.Encoding.PEM), trust=True)
    leaf = matrix.leaves["good"].cert
    chain = [leaf, matrix.pki.intermediate]
    gcm = "2.16.840.1.101.3.4.1.46"
    cbc = "2.16.840.1.101.3.4.1.42"
    infos = discovery.harvest_smime(ks, chain, _caps(gcm, cbc), seen=NOW)
    assert infos[0].origin == "discovered" and not infos[0].confirmed
    assert ks.smime_supports_gcm(leaf)
    # an older message's capabilities do not overwrite newer ones
    discovery.harvest_smime(ks, chain, _caps(cbc), seen=NOW - dt.timedelta(days=1))
    assert ks.smime_supports_gcm(leaf)
    discovery.harvest_smime(ks, chain, [cbc], seen=NOW + dt.timedelta(days=1))
    assert not ks.smime_supports_gcm(leaf)
    st = discovery.address_status(ks, EMAIL, now=NOW).to_json()
    assert st["methods"] == [
        {
            "method": "smime",
            "fingerprint": infos[0].fingerprint,
            "origin": "discovered",
            "confirmed": False,
            "expires": leaf.not_valid_after_utc.isoformat(),
            "gcm": False,
        }
    ]


def test_status_reasons_when_nothing_is_usable(ks: Keystore) -> None:
    st = discovery.address_status(ks, "nobody@example.org", now=REAL_NOW).to_json()
    assert not st["usable"] and st["methods"] == []
    assert st["reasons"] == ["no OpenPGP key or certificate for nobody@example.org"]
