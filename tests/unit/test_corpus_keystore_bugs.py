"""Keystore bugs found by the corpus tests (strict xfails: they flip when fixed).

Both are in ``keystore/openpgp.py`` (``_is_protected``, called by ``parse_keys``) and
``keystore/store.py`` (``_pgp_row`` reading ``cert.expiration``): pysequoia's accessors
apply Sequoia's StandardPolicy *now*, so a key whose self-signatures use SHA-1 (every
GnuPG 1 key of 2014, e.g. Mailpile's keyring) or a revoked key (no valid certifying
key) raises RuntimeError, which becomes InvalidKeyMaterial and aborts the whole import.
GnuPG imports both; old mail encrypted to them must stay readable.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vectors import profiles


@pytest.fixture(autouse=True)
def _headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


@pytest.mark.xfail(
    strict=True,
    reason="BUG keystore/openpgp.py _is_protected + store.py _pgp_row: SHA-1-bound keys "
    "raise InvalidKeyMaterial ('No binding signature ... SHA1 is not considered secure')",
)
@pytest.mark.parametrize("name", ["pubring.gpg", "secring.gpg"])
def test_import_gnupg1_keyring_with_sha1_self_signatures(tmp_path: Path, name: str) -> None:
    ks = profiles.build("empty", tmp_path / "p")
    try:
        data = (profiles.CORPUS / "mailpile" / "gpg-keyring" / name).read_bytes()
        infos = ks.import_bytes(data)
        assert {i.fingerprint for i in infos} >= {"CF5E5F03E48E7C3028794CCE3D955B5D7848252F"}
    finally:
        ks.close()


@pytest.mark.xfail(
    strict=True,
    reason="BUG keystore/openpgp.py _is_protected: a revoked secret key raises "
    "InvalidKeyMaterial ('No suitable certifying key') instead of importing as revoked",
)
def test_import_revoked_secret_key(tmp_path: Path) -> None:
    ks = profiles.build("empty", tmp_path / "p")
    try:
        path = "thunderbird-openpgp/keys/carol@pgp.icu-0xEF2FD01608AFD744-revoked-secret.asc"
        (info,) = ks.import_bytes((profiles.CORPUS / path).read_bytes())
        assert info.secret and info.revoked
    finally:
        ks.close()
