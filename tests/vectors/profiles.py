"""Keystores for the corpus tests: which corpus keys each group of vectors is opened with.

Each *profile* names the key files (relative to ``../shared/corpus``) imported into a fresh
Sealmail keystore, with the passwords the corpus MANIFEST gives, and which certificates
become S/MIME trust anchors. :func:`build` makes the keystore in a directory (headless
passphrase path, cheap scrypt parameters) — the tests share one keystore per profile per
module.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

from keystore.secrets import KdfParams
from keystore.store import Keystore

__all__ = ["CORPUS", "PROFILES", "KeyFile", "Profile", "build"]

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"


@dataclass(frozen=True)
class KeyFile:
    path: str
    password: bytes | None = None
    trust: bool = False


@dataclass(frozen=True)
class Profile:
    keys: tuple[KeyFile, ...]
    notes: str = ""
    extra: tuple[str, ...] = field(default=())


def _k(path: str, password: str | None = None, *, trust: bool = False) -> KeyFile:
    return KeyFile(path, None if password is None else password.encode(), trust)


TB = "thunderbird-openpgp/keys/"
PROFILES: dict[str, Profile] = {
    # Bob decrypts every *.env* message; TestCA is the anchor. Fran/Fran-ec for interop.
    "tb-smime": Profile(
        (
            _k("thunderbird-smime/TestCA.pem", trust=True),
            _k("thunderbird-smime/Bob.p12", "nss"),
            _k("thunderbird-smime/Fran.p12", "nss"),
            _k("thunderbird-smime/Fran-ec.p12", "nss"),
        )
    ),
    # Alice/Bob secrets without passphrase, Carol's secret (passphrase "x"), Benny public.
    "tb-openpgp": Profile(
        (
            _k(TB + "alice@openpgp.example-0xf231550c4f47e38e-secret.asc"),
            _k(TB + "bob@openpgp.example-0xfbfcc82a015e7330-secret.asc"),
            _k(TB + "carol@example.com-0x3099ff1238852b9f-pub.asc"),
            _k(TB + "benny-hashwell-0xc55ccd9c5ab482b2-pub.asc"),
            # Thunderbird S/MIME material for the mixed PGP/S-MIME vectors
            _k("thunderbird-smime/TestCA.pem", trust=True),
            _k("thunderbird-smime/Bob.p12", "nss"),
        )
    ),
    # the revoked carol@pgp.icu secret opens enc-to-carol@pgp.icu-revoked.eml
    "tb-openpgp-revoked": Profile(
        (
            _k(TB + "carol@pgp.icu-0xEF2FD01608AFD744-revoked-secret.asc"),
            _k(TB + "alice@openpgp.example-0xf231550c4f47e38e-pub.asc"),
        )
    ),
    # Carol's secret (passphrase "x") only where needed: unlocking it is slow
    "tb-openpgp-carol": Profile(
        (
            _k(TB + "carol@example.com-0x3099ff1238852b9f-secret.asc", "x"),
            _k(TB + "alice@openpgp.example-0xf231550c4f47e38e-pub.asc"),
        )
    ),
    "autocrypt": Profile(
        (
            _k("autocrypt-protected-headers/bob@openpgp.example.sec.asc"),
            _k("autocrypt-protected-headers/alice@openpgp.example.pub.asc"),
            _k("autocrypt-protected-headers/sample-ca.pem", trust=True),
            _k("autocrypt-protected-headers/bob.p12", "bob"),  # PEM-armored PKCS#12
        )
    ),
    # RFC 9216 LAMPS keys: Bob decrypts, the RSA sample CA is the anchor.
    "lamps": Profile(
        (
            _k("rfc9216-ca/Sample_LAMPS_RSA_Certification_Authority.selfsigned.pem", trust=True),
            _k("rfc9216-examples-cms/certs-and-keys/lamps-bob.encrypt.crt"),
            _k("rfc9216-examples-cms/certs-and-keys/lamps-bob.decrypt.p8.pem"),
        )
    ),
    "rfc4134": Profile(
        (
            _k("rfc4134/CarlRSASelf.cer", trust=True),
            _k("rfc4134/CarlDSSSelf.cer", trust=True),
            _k("rfc4134/BobRSASignByCarl.cer"),
            _k("rfc4134/BobPrivRSAEncrypt.pri"),
        )
    ),
    # No trust anchor for the Gmail CSE chain (GK COMARCH ROOT CA is not ours).
    "empty": Profile(()),
    "deltachat": Profile(
        (
            _k("deltachat/key/alice-secret.asc"),
            _k("deltachat/key/bob-secret.asc"),
        )
    ),
    "notmuch": Profile(
        (
            _k("notmuch/openpgp4-secret-key.asc"),
            _k("notmuch/smime/ca.crt", trust=True),
        )
    ),
    # GnuPG 1 keyrings (2014 keys, SHA-1 self-signatures)
    "mailpile": Profile(
        (
            _k("mailpile/gpg-keyring/pubring.gpg"),
            _k("mailpile/gpg-keyring/secring.gpg"),
        )
    ),
    "covert": Profile(
        (
            _k("covert-content-attacks/assets/secret-keys/manager@bigcorporation-sec.asc"),
            _k(
                "covert-content-attacks/assets/secret-keys/manager@bigcorporation.pfx",
                "test12345678",
            ),
        )
    ),
    # No private keys; the GlobalSign intermediate is the anchor (at 2019-06-01).
    "johnny": Profile(
        (
            _k("johnny-you-are-fired/assets/public-keys/manager@bigcorporation.asc"),
            _k("johnny-you-are-fired/assets/public-keys/eve@bigcorporation.asc"),
            _k("johnny-you-are-fired/assets/certificates/intermediate_ca.crt", trust=True),
        )
    ),
}

_PKCS12_ARMOR = re.compile(rb"-----BEGIN PKCS12-----(.*?)-----END PKCS12-----", re.S)


def _material(path: Path) -> bytes:
    data = path.read_bytes()
    m = _PKCS12_ARMOR.search(data)
    if m:  # autocrypt's bob.p12 is PEM-armored; Sealmail imports DER PKCS#12
        return base64.b64decode(b"".join(m.group(1).split()))
    return data


def build(name: str, directory: Path) -> Keystore:
    """A keystore in ``directory`` holding profile ``name``'s keys."""
    ks = Keystore.open(
        directory,
        passphrase="corpus tests",
        env={},
        secret_store="passphrase",
        kdf=KdfParams(n=2**10),
    )
    for key in PROFILES[name].keys:
        ks.import_bytes(_material(CORPUS / key.path), passphrase=key.password, trust=key.trust)
    return ks
