"""A real GnuPG home for interop tests: the installed ``gpg`` is the judge.

Each :class:`Gpg` owns a short temporary GNUPGHOME (the agent's socket path must stay
short) and kills its gpg-agent on :meth:`close`, so cached passphrases never leak between
tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Gpg", "GpgResult"]


@dataclass
class GpgResult:
    returncode: int
    stdout: bytes
    stderr: str
    status: list[str] = field(default_factory=list)

    def has(self, keyword: str) -> bool:
        return any(line.split()[1:2] == [keyword] for line in self.status if line.strip())


class Gpg:
    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="g", dir="/tmp"))
        os.chmod(self.home, 0o700)
        (self.home / "gpg-agent.conf").write_text("allow-loopback-pinentry\n")

    def run(
        self, *args: str, input: bytes | None = None, passphrase: str | None = None
    ) -> GpgResult:
        status_r, status_w = os.pipe()
        cmd = [
            "gpg",
            "--homedir",
            str(self.home),
            "--batch",
            "--yes",
            "--no-tty",
            "--status-fd",
            str(status_w),
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            passphrase or "",
            "--trust-model",
            "always",
            *args,
        ]
        try:
            proc = subprocess.run(
                cmd, input=input, capture_output=True, pass_fds=(status_w,), timeout=120
            )
        finally:
            os.close(status_w)
        with os.fdopen(status_r, "rb") as f:
            status = f.read().decode("utf-8", "replace").splitlines()
        return GpgResult(
            proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"), status
        )

    def check(
        self, *args: str, input: bytes | None = None, passphrase: str | None = None
    ) -> GpgResult:
        res = self.run(*args, input=input, passphrase=passphrase)
        if res.returncode != 0:
            raise AssertionError(f"gpg {' '.join(args)} failed: {res.stderr}")
        return res

    def generate(self, uid: str, algo: str = "ed25519", passphrase: str = "") -> str:
        """Make a key (``ed25519``/cv25519, ``rsa3072``, ``nistp256``); return its fingerprint."""
        email = uid.split("<")[-1].rstrip(">")
        if algo == "ed25519":
            self.check(
                "--quick-gen-key", uid, "ed25519", "sign,cert", "never", passphrase=passphrase
            )
            sub = "cv25519"
        elif algo == "nistp256":
            self.check(
                "--quick-gen-key", uid, "nistp256", "sign,cert", "never", passphrase=passphrase
            )
            sub = "nistp256"
        else:
            self.check("--quick-gen-key", uid, algo, "sign,cert", "never", passphrase=passphrase)
            sub = algo
        fpr = self.fingerprint(email)
        self.check("--quick-add-key", fpr, sub, "encr", "never", passphrase=passphrase)
        return fpr

    def fingerprint(self, email: str) -> str:
        out = self.check("--with-colons", "--list-keys", email).stdout.decode()
        for line in out.splitlines():
            if line.startswith("fpr:"):
                return line.split(":")[9]
        raise AssertionError(f"no key for {email}")

    def export(self, who: str, *, secret: bool = False, armor: bool = True) -> bytes:
        args = ["--export-secret-keys" if secret else "--export"]
        if armor:
            args.insert(0, "--armor")
        return self.check(*args, who).stdout

    def import_key(self, data: bytes) -> None:
        self.check("--import", input=data)

    def close(self) -> None:
        subprocess.run(
            ["gpgconf", "--homedir", str(self.home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(self.home, ignore_errors=True)
