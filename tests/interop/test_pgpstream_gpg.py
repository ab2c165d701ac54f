"""client.crypto.pgpstream against the installed GnuPG 2.2 (the judge), both directions.

gpg -> us: messages gpg writes (sign+encrypt with every compression, armored and
binary, 0 octets and 5 MB, ``gpg -c`` with several ciphers, no-MDC messages, hidden
recipients, passphrase-protected exported keys) decrypt with our layer, and
``pysequoia.verify`` accepts the decrypted packet stream.
us -> gpg: messages we write (signed by a pysequoia key, to gpg-made RSA, Curve25519 and
NIST P-256 keys, to pysequoia keys and to passwords) decrypt and verify in ``gpg``, with
an MDC. Keys are made once per module; every test imports them into its own GNUPGHOME
(the ``gpg`` fixture), whose agent is killed at teardown.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pysequoia
import pytest

from client.crypto import pgpstream
from client.errors import (
    BadPassword,
    DecryptionFailed,
    UnauthenticatedCiphertext,
    UnsupportedMessage,
)
from tests.helpers.gnupg import Gpg

KEY_PASSPHRASE = "dave secret passphrase"


@dataclass(frozen=True)
class GpgKeys:
    public: bytes  # all public keys
    secret: dict[str, bytes]  # name -> armored secret key export
    fpr: dict[str, str]
    emails: dict[str, str]


@pytest.fixture(scope="module")
def gpg_keys() -> Iterator[GpgKeys]:
    g = Gpg()
    try:
        spec = {
            "alice": ("ed25519", ""),
            "bob": ("rsa3072", ""),
            "carol": ("nistp256", ""),
            "dave": ("ed25519", KEY_PASSPHRASE),
        }
        fpr, secret, emails = {}, {}, {}
        for name, (algo, pp) in spec.items():
            email = f"{name}@example.org"
            emails[name] = email
            fpr[name] = g.generate(f"{name.title()} <{email}>", algo, passphrase=pp)
            secret[name] = g.check(
                "--armor", "--export-secret-keys", fpr[name], passphrase=pp
            ).stdout
        public = g.check("--export").stdout
        yield GpgKeys(public, secret, fpr, emails)
    finally:
        g.close()


@pytest.fixture(scope="module")
def seq_key() -> pysequoia.Tsk:
    return pysequoia.Tsk.generate("Sealmail User <me@sealmail.test>")


def _store(*certs: pysequoia.Cert):  # type: ignore[no-untyped-def]
    return lambda _ids: list(certs)


def _gpg_with(gpg: Gpg, keys: GpgKeys, *names: str) -> Gpg:
    gpg.import_key(keys.public)
    for name in names:
        pp = KEY_PASSPHRASE if name == "dave" else ""
        gpg.check("--import", input=keys.secret[name], passphrase=pp)
    return gpg


def _gpg_encrypt(gpg: Gpg, keys: GpgKeys, data: bytes, to: str, *extra: str) -> bytes:
    args = ["--sign", "--local-user", keys.fpr["alice"], "--encrypt", "-r", keys.fpr[to]]
    return gpg.check(*args, *extra, input=data).stdout


def _alice_cert(keys: GpgKeys) -> pysequoia.Cert:
    certs = pysequoia.Cert.split_bytes(keys.public)
    return next(c for c in certs if c.fingerprint.upper() == keys.fpr["alice"])


# -- gpg -> us -------------------------------------------------------------------------------


@pytest.mark.parametrize("armor", [True, False], ids=["armored", "binary"])
@pytest.mark.parametrize("compress", ["zip", "zlib", "bzip2", "none"])
@pytest.mark.parametrize("to", ["alice", "bob", "carol"], ids=["cv25519", "rsa3072", "p256"])
def test_gpg_sign_encrypt_decrypts_and_verifies(
    gpg: Gpg, gpg_keys: GpgKeys, to: str, compress: str, armor: bool
) -> None:
    _gpg_with(gpg, gpg_keys, "alice")
    text = b"Hello from gpg\r\nline two \xc3\xa4\n"
    extra = ["--compress-algo", compress] + (["--armor"] if armor else [])
    msg = _gpg_encrypt(gpg, gpg_keys, text, to, *extra)
    assert msg.startswith(b"-----BEGIN PGP MESSAGE-----") == armor

    stream = pgpstream.decrypt(msg, secret_keys=[gpg_keys.secret[to]])

    assert stream.literal == text
    assert stream.signed
    assert stream.integrity == "MDC"
    assert stream.compression == (None if compress == "none" else compress.upper())
    assert stream.decrypted_with != "password"
    verified = pysequoia.verify(bytes=stream.packets, store=_store(_alice_cert(gpg_keys)))
    assert verified.bytes == text
    assert len(verified.valid_sigs) == 1


@pytest.mark.parametrize("compress", ["zip", "zlib", "bzip2", "none"])
@pytest.mark.parametrize("size", [0, 5 * 1024 * 1024], ids=["empty", "5MB"])
def test_gpg_attachments(gpg: Gpg, gpg_keys: GpgKeys, compress: str, size: int) -> None:
    _gpg_with(gpg, gpg_keys, "alice")
    data = os.urandom(size // 2) + bytes(size - size // 2)  # half random, half zeros
    msg = _gpg_encrypt(gpg, gpg_keys, data, "bob", "--compress-algo", compress, "--armor")
    stream = pgpstream.decrypt(msg, secret_keys=[gpg_keys.secret["bob"]])
    assert stream.literal == data
    verified = pysequoia.verify(bytes=stream.packets, store=_store(_alice_cert(gpg_keys)))
    assert len(verified.valid_sigs) == 1


def test_gpg_to_a_pysequoia_key(gpg: Gpg, gpg_keys: GpgKeys, seq_key: pysequoia.Tsk) -> None:
    _gpg_with(gpg, gpg_keys, "alice")
    gpg.import_key(bytes(seq_key.extract_certificate()))
    fpr = seq_key.extract_certificate().fingerprint.upper()
    msg = gpg.check(
        "--sign", "--local-user", gpg_keys.fpr["alice"], "--encrypt", "-r", fpr, input=b"hi"
    ).stdout
    stream = pgpstream.decrypt(msg, secret_keys=[bytes(seq_key)])
    assert stream.literal == b"hi"
    assert stream.compression in {"ZIP", "ZLIB", "BZIP2"}  # gpg compresses by default
    verified = pysequoia.verify(bytes=stream.packets, store=_store(_alice_cert(gpg_keys)))
    assert len(verified.valid_sigs) == 1


def test_gpg_multiple_and_hidden_recipients(gpg: Gpg, gpg_keys: GpgKeys) -> None:
    _gpg_with(gpg, gpg_keys, "alice")
    msg = gpg.check(
        "--encrypt", "-R", gpg_keys.fpr["bob"], "-r", gpg_keys.fpr["carol"], input=b"hidden"
    ).stdout
    stream = pgpstream.decrypt(msg, secret_keys=[gpg_keys.secret["bob"]])
    assert stream.literal == b"hidden"
    assert not stream.signed
    assert "0000000000000000" in stream.recipient_key_ids
    stream = pgpstream.decrypt(msg, secret_keys=[gpg_keys.secret["carol"]])
    assert stream.literal == b"hidden"
    with pytest.raises(DecryptionFailed):
        pgpstream.decrypt(msg, secret_keys=[gpg_keys.secret["alice"]])


def test_gpg_passphrase_protected_key(gpg: Gpg, gpg_keys: GpgKeys) -> None:
    _gpg_with(gpg, gpg_keys)
    msg = gpg.check("--encrypt", "-r", gpg_keys.fpr["dave"], input=b"for dave").stdout
    secret = gpg_keys.secret["dave"]
    stream = pgpstream.decrypt(msg, secret_keys=[secret], key_passphrase=KEY_PASSPHRASE.encode())
    assert stream.literal == b"for dave"
    # several candidates: the right one is found
    stream = pgpstream.decrypt(
        msg, secret_keys=[secret], key_passphrase=[b"nope", KEY_PASSPHRASE.encode()]
    )
    assert stream.literal == b"for dave"
    with pytest.raises(BadPassword):
        pgpstream.decrypt(msg, secret_keys=[secret], key_passphrase=b"wrong")
    with pytest.raises(BadPassword):
        pgpstream.decrypt(msg, secret_keys=[secret])


@pytest.mark.parametrize("compress", ["none", "zlib", "bzip2"])
@pytest.mark.parametrize(
    "cipher", ["AES", "AES192", "AES256", "CAMELLIA128", "CAMELLIA256", "3DES", "CAST5"]
)
def test_gpg_symmetric(gpg: Gpg, cipher: str, compress: str) -> None:
    msg = gpg.check(
        "-c", "--cipher-algo", cipher, "--compress-algo", compress, passphrase="pw 1", input=b"sym"
    ).stdout
    stream = pgpstream.decrypt(msg, passwords=[b"other", b"pw 1"])
    assert stream.literal == b"sym"
    assert stream.integrity == "MDC"
    assert stream.decrypted_with == "password"
    with pytest.raises(BadPassword):
        pgpstream.decrypt(msg, passwords=[b"wrong"])
    with pytest.raises(DecryptionFailed):
        pgpstream.decrypt(msg)


def test_gpg_symmetric_twofish_is_unsupported(gpg: Gpg) -> None:
    msg = gpg.check("-c", "--cipher-algo", "TWOFISH", passphrase="pw", input=b"x").stdout
    with pytest.raises(UnsupportedMessage):
        pgpstream.decrypt(msg, passwords=[b"pw"])


@pytest.mark.parametrize(
    "args",
    [
        ("--rfc2440", "-c", "--cipher-algo", "CAST5"),
        ("-c", "--cipher-algo", "CAST5", "--rfc2440", "--disable-mdc"),
        # gpg 2.2.40: --rfc2440 wins over --force-mdc, the message still has no MDC
        ("--rfc2440", "--force-mdc", "-c", "--cipher-algo", "AES256"),
    ],
    ids=["rfc2440-cast5", "disable-mdc", "rfc2440-force-mdc"],
)
def test_gpg_without_mdc_is_refused(gpg: Gpg, args: tuple[str, ...]) -> None:
    res = gpg.run(*args, passphrase="pw", input=b"efail")
    if res.returncode != 0:
        pytest.fail(f"gpg could not make a no-MDC message: {res.stderr}")
    listing = gpg.run("--list-packets", "--passphrase", "pw", input=res.stdout)
    assert ":encrypted data packet:" in listing.stdout.decode()  # tag 9, no MDC
    with pytest.raises(UnauthenticatedCiphertext):
        pgpstream.decrypt(res.stdout, passwords=[b"pw"])


# -- us -> gpg -------------------------------------------------------------------------------


def _assert_gpg_reads(res_status: list[str], *, signed: bool) -> None:
    keywords = {line.split()[1] for line in res_status if len(line.split()) > 1}
    assert "DECRYPTION_OKAY" in keywords
    assert "DECRYPTION_FAILED" not in keywords
    info = [line for line in res_status if "DECRYPTION_INFO" in line]
    assert info and info[0].split()[2] == "2", info  # mdc_method 2 = SHA-1 MDC
    if signed:
        assert {"GOODSIG", "VALIDSIG"} <= keywords


@pytest.mark.parametrize("to", ["alice", "bob", "carol"], ids=["cv25519", "rsa3072", "p256"])
def test_our_sign_encrypt_reads_in_gpg(
    gpg: Gpg, gpg_keys: GpgKeys, seq_key: pysequoia.Tsk, to: str
) -> None:
    _gpg_with(gpg, gpg_keys, to)
    cert = seq_key.extract_certificate()
    gpg.import_key(bytes(cert))
    data = b"signed by sealmail \xe2\x9c\x93\n" * 100
    inner = pysequoia.sign(seq_key.signer(), data, mode=pysequoia.SignatureMode.INLINE, armor=False)
    recipient = [c for c in pysequoia.Cert.split_bytes(gpg_keys.public)]
    to_cert = next(c for c in recipient if c.fingerprint.upper() == gpg_keys.fpr[to])
    msg = pgpstream.enarmor(pgpstream.encrypt(inner, recipients=[bytes(to_cert)]))

    res = gpg.run("--decrypt", input=msg)

    assert res.returncode == 0, res.stderr
    assert res.stdout == data
    _assert_gpg_reads(res.status, signed=True)
    assert "not integrity protected" not in res.stderr


def test_our_message_to_a_pysequoia_key_reads_in_gpg(gpg: Gpg, seq_key: pysequoia.Tsk) -> None:
    """pysequoia alone would write SEIPDv2 here (its keys advertise it); we write v1."""
    gpg.check("--import", input=bytes(seq_key))
    cert = bytes(seq_key.extract_certificate())
    inner = pysequoia.sign(
        seq_key.signer(), b"to myself", mode=pysequoia.SignatureMode.INLINE, armor=False
    )
    msg = pgpstream.encrypt(inner, recipients=[cert])

    res = gpg.run("--decrypt", input=msg)

    assert res.returncode == 0, res.stderr
    assert res.stdout == b"to myself"
    _assert_gpg_reads(res.status, signed=True)
    # and pysequoia's own SEIPDv2 message to the same key is what gpg 2.2 cannot read
    seq_msg = pysequoia.encrypt(b"x", recipients=[seq_key.extract_certificate()], armor=False)
    assert gpg.run("--decrypt", input=seq_msg).returncode != 0


def test_our_password_message_reads_in_gpg(gpg: Gpg) -> None:
    inner = pgpstream.literal_packet(b"by password", filename=b"note.txt")
    msg = pgpstream.encrypt(inner, passwords=[b"correct horse"], cipher="AES-128")
    res = gpg.run("--decrypt", input=msg, passphrase="correct horse")
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"by password"
    _assert_gpg_reads(res.status, signed=False)


def test_our_message_to_key_and_password(gpg: Gpg, gpg_keys: GpgKeys) -> None:
    _gpg_with(gpg, gpg_keys, "bob")
    certs = pysequoia.Cert.split_bytes(gpg_keys.public)
    bob = next(c for c in certs if c.fingerprint.upper() == gpg_keys.fpr["bob"])
    msg = pgpstream.encrypt(
        pgpstream.literal_packet(b"both"), recipients=[bytes(bob)], passwords=[b"pw"]
    )
    res = gpg.run("--decrypt", input=msg)
    assert res.returncode == 0, res.stderr
    assert res.stdout == b"both"
    assert pgpstream.decrypt(msg, passwords=[b"pw"]).literal == b"both"
    assert pgpstream.decrypt(msg, secret_keys=[gpg_keys.secret["bob"]]).literal == b"both"
