"""Envelope round trips with the real tools: gpg and openssl are the judges.

gpg -> Sealmail: ``gpg -c`` files (AES-128/192/256, no/ZIP/ZLIB/BZIP2 compression, binary
and armored) and public-key ``gpg -e`` files opened by ``sealmail envelope open``; a
``gpg -c --rfc2440`` file (no MDC) is refused with the Efail explanation.
openssl -> Sealmail: ``openssl cms -encrypt -pwri_password`` (S/MIME, DER and PEM output;
AES-128/192/256-CBC; openssl 3.0 cannot combine PWRI with GCM) and ``openssl cms -encrypt`` to a certificate (.p7m).
Sealmail -> tools: ``envelope create --format gpg`` read by ``gpg -d``, ``--format cms``
read by ``openssl cms -decrypt -pwri_password``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.envelope import open as env_open
from tests.conftest import Cli
from tests.helpers.gnupg import Gpg
from tests.helpers.pki import make_pki, write_pem

PASSWORD = "lemof-netok-zeduz-hizul"
NOW = datetime.now(UTC)


class _NoKeys:
    def pgp_secret_keys(self) -> list[tuple[bytes, bytes | None]]:
        return []


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def openssl(*args: str, input: bytes | None = None) -> bytes:
    proc = subprocess.run(["openssl", *args], input=input, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def _open(data: bytes, password: str = PASSWORD, name: str | None = None) -> env_open.Opened:
    return env_open.open_bytes(
        data,
        keys=_NoKeys(),  # type: ignore[arg-type]
        password=lambda: password.encode(),
        now=NOW,
        filename=name,
    )


def _cli_open(cli: Cli, path: Path, password: str, *extra: str):  # type: ignore[no-untyped-def]
    r, w = os.pipe()
    os.write(w, password.encode())
    os.close(w)
    try:
        return cli("envelope", "open", str(path), "--password-fd", str(r), *extra, pass_fds=(r,))
    finally:
        os.close(r)


# -- gpg -c -> Sealmail --------------------------------------------------------------------


@pytest.mark.parametrize("cipher", ["AES", "AES192", "AES256"])
@pytest.mark.parametrize("compress", ["none", "zip", "zlib", "bzip2"])
@pytest.mark.parametrize("armor", [False, True])
def test_gpg_symmetric_opened(
    gpg: Gpg, tmp_path: Path, cipher: str, compress: str, armor: bool
) -> None:
    data = os.urandom(20_000) + b"compressible " * 2000
    src = tmp_path / "report.pdf"
    src.write_bytes(data)
    out = tmp_path / "report.pdf.gpg"
    gpg.check(
        "--symmetric", "--cipher-algo", cipher, "--compress-algo", compress,
        *(["--armor"] if armor else []), "-o", str(out), str(src), passphrase=PASSWORD,
    )  # fmt: skip
    blob = out.read_bytes()
    assert env_open.detect(blob) is env_open.OpenKind.GPG_SYMMETRIC
    opened = _open(blob, name=out.name)
    assert opened.kind is env_open.OpenKind.GPG_SYMMETRIC
    assert [(f.name, _sha(f.data)) for f in opened.files] == [("report.pdf", _sha(data))]
    with pytest.raises(Exception, match="password"):
        _open(blob, password="wrong-password-here")


def test_gpg_symmetric_via_cli_and_no_mdc_refused(gpg: Gpg, cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "lab.txt"
    src.write_bytes(b"potassium 4.1 mmol/l\n")
    good = tmp_path / "lab.txt.gpg"
    gpg.check("-c", "--cipher-algo", "AES256", "-o", str(good), str(src), passphrase=PASSWORD)
    res = _cli_open(cli, good, PASSWORD, "--json", "-o", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.text)
    assert doc["kind"] == "gpg-symmetric" and doc["message"] is None
    assert doc["files"] == [{"name": "lab.txt", "size": 21, "sha256": _sha(src.read_bytes())}]
    assert (tmp_path / "out" / "lab.txt").read_bytes() == src.read_bytes()

    wrong = _cli_open(cli, good, "not-the-password", "-o", str(tmp_path / "w"))
    assert wrong.returncode == 4 and "password" in wrong.stderr
    assert not (tmp_path / "w").exists() or not list((tmp_path / "w").iterdir())

    legacy = tmp_path / "legacy.gpg"
    gpg.check("--rfc2440", "-c", "--cipher-algo", "AES256", "-o", str(legacy), str(src),
              passphrase=PASSWORD)  # fmt: skip
    res = _cli_open(cli, legacy, PASSWORD, "-o", str(tmp_path / "legacy"))
    assert res.returncode == 7, res.stderr
    assert "integrity" in res.stderr and "Efail" in res.stderr
    assert not (tmp_path / "legacy").exists() or not list((tmp_path / "legacy").iterdir())


def test_gpg_public_key_file_opened(gpg: Gpg, cli: Cli, tmp_path: Path) -> None:
    cli.ok("keys", "generate", "--email", "alice@example.org", "--name", "Alice", "--kind", "pgp")
    keys = json.loads(cli.ok("keys", "list", "--json").text)
    fpr = next(k["fingerprint"] for k in keys if k["kind"] == "pgp")
    gpg.import_key(cli.ok("keys", "export", fpr).stdout)
    src = tmp_path / "scan.png"
    src.write_bytes(os.urandom(50_000))
    out = tmp_path / "scan.png.asc"
    gpg.check("-e", "--armor", "-r", "alice@example.org", "-o", str(out), str(src))
    res = cli("envelope", "open", str(out), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.text)
    assert doc["kind"] == "pgp"
    assert doc["files"][0]["sha256"] == _sha(src.read_bytes())


# -- openssl cms -pwri_password -> Sealmail ------------------------------------------------


@pytest.mark.parametrize("cipher", ["-aes-128-cbc", "-aes-192-cbc", "-aes-256-cbc"])
@pytest.mark.parametrize("outform", ["SMIME", "DER", "PEM"])
def test_openssl_pwri_opened(tmp_path: Path, cipher: str, outform: str) -> None:
    data = os.urandom(40_000)
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    out = openssl(
        "cms", "-encrypt", "-binary", cipher, "-pwri_password", PASSWORD,
        "-in", str(src), "-outform", outform,
    )  # fmt: skip
    assert env_open.detect(out) is env_open.OpenKind.CMS_PASSWORD
    opened = _open(out, name="data.bin.p7m")
    assert opened.kind is env_open.OpenKind.CMS_PASSWORD
    assert [(f.name, _sha(f.data)) for f in opened.files] == [("data.bin", _sha(data))]
    with pytest.raises(Exception, match="password"):
        _open(out, password="wrong-password-here")


def test_openssl_pwri_via_cli(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "note.txt"
    src.write_bytes(b"hello from openssl\n")
    p7m = tmp_path / "note.txt.p7m"
    openssl("cms", "-encrypt", "-binary", "-aes-256-cbc", "-pwri_password", PASSWORD,
            "-in", str(src), "-outform", "DER", "-out", str(p7m))  # fmt: skip
    res = _cli_open(cli, p7m, PASSWORD, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.text)["kind"] == "cms-password"
    assert _cli_open(cli, p7m, "wrong-password-here").returncode == 4


def test_openssl_smime_p7m_opened(cli: Cli, tmp_path: Path) -> None:
    pki = make_pki()
    alice = pki.leaf("alice@example.org", "rsa2048")
    write_pem(tmp_path / "a.key", alice.key)
    write_pem(tmp_path / "a.crt", alice.cert)
    openssl(
        "pkcs12", "-export", "-inkey", str(tmp_path / "a.key"), "-in", str(tmp_path / "a.crt"),
        "-passout", "pass:p12", "-out", str(tmp_path / "a.p12"),
    )  # fmt: skip
    cli.ok("keys", "import", str(tmp_path / "a.p12"), "--passphrase-fd", "0", input=b"p12")
    inner = tmp_path / "inner.eml"
    inner.write_bytes(
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
        b"Content-Type: text/plain\r\n\r\nSee attached.\r\n--XX\r\n"
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="r.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n"
    )
    for outform in ("DER", "SMIME"):
        p7m = tmp_path / f"smime-{outform}.p7m"
        openssl("cms", "-encrypt", "-aes-256-cbc", "-in", str(inner), "-outform", outform,
                "-out", str(p7m), str(tmp_path / "a.crt"))  # fmt: skip
        res = cli("envelope", "open", str(p7m), "--json")
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.text)
        assert doc["kind"] == "smime"
        assert doc["message"].strip() == "See attached."
        assert doc["files"][0]["name"] == "r.pdf"
        assert doc["files"][0]["sha256"] == _sha(b"%PDF-1.4\n")


# -- Sealmail -> gpg / openssl -------------------------------------------------------------


def _create(cli: Cli, src: Path, out: Path, fmt: str) -> None:
    r, w = os.pipe()
    os.write(w, PASSWORD.encode())
    os.close(w)
    try:
        res = cli("envelope", "create", str(src), "--format", fmt, "--password-fd", str(r),
                  "-o", str(out), pass_fds=(r,))  # fmt: skip
    finally:
        os.close(r)
    assert res.returncode == 0, res.stderr


def test_sealmail_gpg_format_read_by_gpg(gpg: Gpg, cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "x-ray.dcm"
    src.write_bytes(os.urandom(100_000))
    out = tmp_path / "x-ray.dcm.gpg"
    _create(cli, src, out, "gpg")
    res = gpg.run("-d", str(out), passphrase=PASSWORD)
    assert res.returncode == 0, res.stderr
    assert res.stdout == src.read_bytes()
    assert res.has("DECRYPTION_OKAY") and res.has("GOODMDC")


def test_sealmail_cms_format_read_by_openssl(cli: Cli, tmp_path: Path) -> None:
    src = tmp_path / "referral.pdf"
    src.write_bytes(os.urandom(70_000))
    out = tmp_path / "referral.pdf.p7m"
    _create(cli, src, out, "cms")
    plain = openssl("cms", "-decrypt", "-binary", "-inform", "DER", "-in", str(out),
                    "-pwri_password", PASSWORD)  # fmt: skip
    assert plain == src.read_bytes()
    # and Sealmail reads its own file too
    assert _open(out.read_bytes(), name=out.name).files[0].data == src.read_bytes()
