"""The Linux package, end to end: build the .deb, install it into a fresh root, run it.

Slow (the PyInstaller freeze takes ~3-4 minutes on 2 cores). ``SEALMAIL_DEB=path/to.deb``
uses a .deb built before (``packaging/linux/build-deb.sh``) instead of building one.

Install: ``dpkg --root=ROOT`` into an empty dpkg database made under ROOT (the real
unpacker: conffiles, file list and status recorded), with ``--force-depends`` because
ROOT holds none of the Debian libraries the package depends on, which the host provides
when the installed programs run. The package has no maintainer scripts (the desktop, MIME
and icon caches are refreshed by dpkg triggers), so no chroot is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
TOOLS = ("dpkg", "dpkg-deb", "xvfb-run", "desktop-file-validate", "xmllint",
         "update-mime-database", "update-desktop-database", "xdg-mime", "gio")  # fmt: skip


def _need_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        # never a skip: `make test` installs these; a missing one is a broken machine
        raise AssertionError(
            f"needs {' '.join(missing)}: apt-get install dpkg xvfb desktop-file-utils "
            "libxml2-utils shared-mime-info xdg-utils libglib2.0-bin (make test does this)"
        )


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_tools()
    prebuilt = os.environ.get("SEALMAIL_DEB")
    if prebuilt:
        return Path(prebuilt)
    out = tmp_path_factory.mktemp("deb")
    # zstd: seconds instead of minutes of xz; the contents are the same
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "COMPRESS": "zstd"}
    t0 = time.monotonic()
    res = subprocess.run(
        [str(REPO / "packaging" / "linux" / "build-deb.sh")],
        env=env, capture_output=True, text=True, timeout=1100, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    print(f"build-deb.sh: {time.monotonic() - t0:.0f}s\n{res.stdout[-600:]}")
    (found,) = out.glob("sealmail_*.deb")
    return found


@pytest.fixture(scope="module")
def root(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    admin = root / "var" / "lib" / "dpkg"
    for sub in ("info", "updates", "triggers"):
        (admin / sub).mkdir(parents=True)
    (admin / "status").touch()
    (admin / "available").touch()
    res = subprocess.run(
        ["dpkg", f"--root={root}", "--force-not-root", "--force-depends",
         "--force-script-chrootless", "--no-triggers", "--log=/dev/null", "-i", str(deb)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return root


def test_dpkg_records_the_install(root: Path) -> None:
    res = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f=${Status} ${Version}",
         "sealmail"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert res.stdout == f"install ok installed {VERSION}"
    files = subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-L", "sealmail"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for path in ("/opt/sealmail/sealmail", "/opt/sealmail/sealmail-gui", "/usr/bin/sealmail",
                 "/usr/bin/sealmail-gui", "/etc/sealmail/README",
                 "/usr/share/applications/org.sealmail.Sealmail.desktop",
                 "/usr/share/metainfo/org.sealmail.Sealmail.metainfo.xml",
                 "/usr/share/mime/packages/sealmail.xml",
                 "/usr/share/icons/hicolor/scalable/apps/org.sealmail.Sealmail.svg",
                 "/usr/share/icons/hicolor/256x256/apps/org.sealmail.Sealmail.png"):  # fmt: skip
        assert path in files
    assert os.readlink(root / "usr/bin/sealmail") == "/opt/sealmail/sealmail"
    assert os.readlink(root / "usr/bin/sealmail-gui") == "/opt/sealmail/sealmail-gui"
    assert not (root / "etc/sealmail/policy.json").exists()  # the policy is IT's, not ours


def test_control_declares_dependencies(deb: Path) -> None:
    control = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Depends"], capture_output=True, text=True, check=True
    ).stdout
    deps = {d.strip().split()[0] for d in control.split(",")}
    assert {"gnupg", "libc6", "libxcb-cursor0", "libxkbcommon-x11-0", "libfontconfig1"} <= deps


def _clean_env(tmp: Path) -> dict[str, str]:
    """No venv, no PYTHONPATH: the frozen programs must need no Python of the machine."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "QT_", "SEALMAIL_"))}  # fmt: skip
    env["PATH"] = "/usr/bin:/bin"
    env["HOME"] = str(tmp)
    return env


def test_cli_runs_from_the_installed_files(root: Path, tmp_path: Path) -> None:
    exe = root / "opt/sealmail/sealmail"
    t0 = time.monotonic()
    res = subprocess.run([str(exe), "--version"], env=_clean_env(tmp_path),
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"sealmail {VERSION}"
    print(f"sealmail --version: {elapsed * 1000:.0f} ms")
    example = root / "usr/share/doc/sealmail/examples/policy.json"
    res = subprocess.run([str(exe), "policy", "validate", str(example)],
                         env=_clean_env(tmp_path), capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr  # jsonschema, stdnum, ICD code lists all bundled
    note = tmp_path / "note.txt"
    note.write_text("Patient SSN 536-90-4399, diagnosis E11.9 (type 2 diabetes).\n")
    res = subprocess.run([str(exe), "policy", "scan", str(note), "--json"],
                         env=_clean_env(tmp_path), capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    found = {f["type"] for f in json.loads(res.stdout)["findings"]}
    assert {"us-ssn", "icd-10-cm"} <= found, res.stdout
    # native and data parts the import scanner cannot see on its own
    bundle = root / "opt/sealmail"
    assert list(bundle.rglob("public_suffix_list.dat")), "PSL data missing (MX autoconfig)"
    assert list(bundle.rglob("hyperscan*")), "hyperscan missing (scanner keyword pass)"


def test_gui_demo_screenshot_from_the_installed_files(root: Path, tmp_path: Path) -> None:
    shot = tmp_path / "demo.png"
    env = {**_clean_env(tmp_path), "SEALMAIL_TIMING": "1"}
    t0 = time.monotonic()
    res = subprocess.run(
        ["xvfb-run", "-a", "-s", "-screen 0 1280x900x24", str(root / "opt/sealmail/sealmail-gui"),
         "--demo", "--screenshot", str(shot)],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stderr[-3000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 10_000  # a window, not an empty image
    print(f"sealmail-gui --demo --screenshot: {elapsed:.1f}s; {res.stderr.strip()[-300:]}")


def test_desktop_file_validates(root: Path) -> None:
    desktop = root / "usr/share/applications/org.sealmail.Sealmail.desktop"
    res = subprocess.run(["desktop-file-validate", str(desktop)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert res.returncode == 0 and "error" not in res.stdout, res.stdout
    text = desktop.read_text()
    assert "Exec=sealmail-gui %u" in text
    for mime in ("application/pkcs7-mime", "application/pgp-encrypted",
                 "application/x-sealmail-envelope", "x-scheme-handler/mailto"):  # fmt: skip
        assert mime in text


@pytest.fixture(scope="module")
def xdg(root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The installed MIME XML and desktop file compiled into caches inside ROOT, and an
    environment in which xdg-mime sees ROOT's data only (plus the base freedesktop types)."""
    share = root / "usr/share"
    shutil.copy("/usr/share/mime/packages/freedesktop.org.xml", share / "mime/packages/")
    res = subprocess.run(["update-mime-database", "-V", str(share / "mime")],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    subprocess.run(["update-desktop-database", str(share / "applications")], check=True)
    home = tmp_path_factory.mktemp("home")
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(home), "XDG_DATA_DIRS": str(share),
        "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CONFIG_DIRS": str(home / "etc-xdg"), "XDG_CURRENT_DESKTOP": "X-Generic",
    }  # fmt: skip


def test_mime_xml_is_well_formed(root: Path) -> None:
    subprocess.run(["xmllint", "--noout", str(root / "usr/share/mime/packages/sealmail.xml"),
                    str(root / "usr/share/metainfo/org.sealmail.Sealmail.metainfo.xml")],
                   check=True)  # fmt: skip


def _filetype(path: Path, env: dict[str, str]) -> str:
    """The type GLib (GNOME's file manager, GTK file choosers) gives the file. xdg-mime's
    generic back end (File::MimeInfo) is not used here: it ignores magic when several globs
    match, and calls any ``.asc`` text/plain even with the system's own database."""
    out = subprocess.run(["gio", "info", "-a", "standard::content-type", str(path)], env=env,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return out.rsplit("standard::content-type:", 1)[1].strip()


def test_file_types_are_recognised(root: Path, xdg: dict[str, str], tmp_path: Path) -> None:
    page = REPO / "client/envelope/page.html"
    envelope = tmp_path / "secure-message.html"  # the name Sealmail gives envelopes
    envelope.write_bytes(page.read_bytes())
    plain = tmp_path / "index.html"
    plain.write_text("<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>")
    named = tmp_path / "letter.sealmail.html"
    named.write_text("<!DOCTYPE html><html><head></head></html>")
    cases = {
        envelope: "application/x-sealmail-envelope",  # by magic, over the *.html glob
        named: "application/x-sealmail-envelope",  # by its glob
        plain: "text/html",  # ordinary web pages stay the browser's
    }
    for ext, mime in ((".p7m", "application/pkcs7-mime"), (".pgp", "application/pgp-encrypted"),
                      (".gpg", "application/pgp-encrypted")):  # fmt: skip
        f = tmp_path / f"message{ext}"
        f.write_bytes(b"\x30\x82\x01\x00" + bytes(64))
        cases[f] = mime
    asc = tmp_path / "message.asc"
    asc.write_text("-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n")
    cases[asc] = "application/pgp-encrypted"
    got = {p.name: _filetype(p, xdg) for p in cases}
    assert got == {p.name: m for p, m in cases.items()}


def test_sealmail_is_the_handler(xdg: dict[str, str]) -> None:
    for mime in ("x-scheme-handler/mailto", "application/pkcs7-mime",
                 "application/pgp-encrypted", "application/x-sealmail-envelope"):  # fmt: skip
        res = subprocess.run(["xdg-mime", "query", "default", mime], env=xdg,
                             capture_output=True, text=True, check=True)  # fmt: skip
        assert res.stdout.strip() == "org.sealmail.Sealmail.desktop", mime
