"""Keystore bugs found by the corpus tests, now fixed (regression tests).

Both were in ``keystore/openpgp.py`` (``_is_protected``, called by ``parse_keys``) and
``keystore/store.py`` (``_pgp_row`` reading ``cert.expiration``): pysequoia's accessors
apply Sequoia's StandardPolicy *now*, so a key whose self-signatures use SHA-1 (every
GnuPG 1 key of 2014, e.g. Mailpile's keyring) or a revoked key (no valid certifying
key) raised RuntimeError, which became InvalidKeyMaterial and aborted the whole import.
GnuPG imports both; old mail encrypted to them must stay readable. Weak keys import
with a ``weak`` reason and are never offered for new mail.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.vectors import profiles

SHA1_KEY = "CF5E5F03E48E7C3028794CCE3D955B5D7848252F"


@pytest.fixture(autouse=True)
def _headless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")


@pytest.mark.parametrize("name", ["pubring.gpg", "secring.gpg"])
def test_import_gnupg1_keyring_with_sha1_self_signatures(tmp_path: Path, name: str) -> None:
    ks = profiles.build("empty", tmp_path / "p")
    try:
        data = (profiles.CORPUS / "mailpile" / "gpg-keyring" / name).read_bytes()
        infos = ks.import_bytes(data)
        by_fpr = {i.fingerprint: i for i in infos}
        assert set(by_fpr) >= {SHA1_KEY}
        weak = by_fpr[SHA1_KEY]
        assert weak.weak and "SHA-1" in weak.weak
        assert weak.emails == ("team+testing@mailpile.is",)
        assert weak.secret == (name == "secring.gpg")
        # never offered for new mail, and the reason says why
        found = ks.recipient_keys("team+testing@mailpile.is", now=dt.datetime.now(dt.UTC))
        assert not found.any
        assert any("SHA-1" in r for r in found.reasons)
        # strong keys in the same file are not flagged
        assert not by_fpr["F65ADEC2AE546D6F46E68940A75DF4FD8E315672"].weak
    finally:
        ks.close()


def test_import_revoked_secret_key(tmp_path: Path) -> None:
    ks = profiles.build("empty", tmp_path / "p")
    try:
        path = "thunderbird-openpgp/keys/carol@pgp.icu-0xEF2FD01608AFD744-revoked-secret.asc"
        (info,) = ks.import_bytes((profiles.CORPUS / path).read_bytes())
        assert info.secret and info.revoked
        assert not ks.recipient_keys("carol@pgp.icu", now=dt.datetime.now(dt.UTC)).any
        # still usable to read old mail
        (key,) = ks.decryption_keys("pgp")
        assert key.decryptor() is not None
    finally:
        ks.close()
