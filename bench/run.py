"""Sealmail benchmarks: the same work done by Sealmail and by the reference tool, same run.

Usage: ``make bench`` (or ``python -m bench.run [--size-mb N] [--repeat N] [--json FILE]``).

Each cell runs a command as a separate process and records wall time and the process's
peak RSS (from ``wait4``), for Sealmail's CLI and for ``gpg`` / ``openssl cms`` doing the
same job on the same message. Ratios are Sealmail / reference (lower is better; goal
<= 1.0x for time). "RSS over payload" is (peak RSS - the idle CLI's RSS) / payload size
(goal <= 1.5x). Results are printed as a table and written as JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.gnupg import Gpg  # noqa: E402
from tests.helpers.messages import extract_part, make_message  # noqa: E402
from tests.helpers.pki import make_pki, write_pem  # noqa: E402

ALICE, BOB = "alice@example.org", "bob@example.net"


@dataclass
class Cell:
    name: str
    sealmail_s: float
    reference_s: float
    sealmail_rss_mb: float
    reference_rss_mb: float

    @property
    def ratio(self) -> float:
        return self.sealmail_s / self.reference_s if self.reference_s else float("inf")


def run(
    cmd: list[str], *, env: dict[str, str], stdin: Path | None = None, stdout: Path | None = None
) -> tuple[float, float]:
    """Run ``cmd``; return (seconds, peak RSS in MiB)."""
    fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
    fout = open(stdout, "wb") if stdout else subprocess.DEVNULL
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        err = proc.stderr.read().decode() if proc.stderr else ""
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if stdin:
            fin.close()  # type: ignore[union-attr]
        if stdout:
            fout.close()  # type: ignore[union-attr]
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def best(fn, repeat: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    results = [fn() for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "crypto.json")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="smbench"))
    gpg = Gpg()
    try:
        env = {
            **os.environ,
            "SEALMAIL_PROFILE": str(work / "profile"),
            "SEALMAIL_PROFILE_PASSPHRASE": "bench",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        sm = [sys.executable, "-m", "client.cli"]

        def sealmail(*a: str) -> None:
            subprocess.run([*sm, *a], env=env, check=True, capture_output=True, cwd=REPO)

        payload = os.urandom(args.size_mb * 1024 * 1024)
        msg = work / "in.eml"
        msg.write_bytes(make_message(ALICE, BOB, attachments=[("scan.bin", payload)]))
        size_mb = len(payload) / 1024 / 1024

        # ---- keys: Alice in Sealmail (PGP + S/MIME), Bob in gpg / openssl
        sealmail("keys", "generate", "--email", ALICE, "--kind", "pgp")
        gpg.generate(f"Bob <{BOB}>")
        (work / "bob.asc").write_bytes(gpg.export(BOB))
        sealmail("keys", "import", str(work / "bob.asc"))
        keys = json.loads(
            subprocess.run(
                [*sm, "keys", "list", "--json"], env=env, check=True, capture_output=True, cwd=REPO
            ).stdout
        )
        alice_fpr = next(k["fingerprint"] for k in keys if ALICE in k["emails"])
        gpg.import_key(
            subprocess.run(
                [*sm, "keys", "export", alice_fpr],
                env=env,
                check=True,
                capture_output=True,
                cwd=REPO,
            ).stdout
        )
        pki = make_pki()
        a_leaf, b_leaf = pki.leaf(ALICE, "rsa2048"), pki.leaf(BOB, "rsa2048")
        write_pem(work / "root.pem", pki.root)
        write_pem(work / "a.key", a_leaf.key)
        write_pem(work / "a.pem", a_leaf.cert)
        write_pem(work / "b.key", b_leaf.key)
        write_pem(work / "b.pem", b_leaf.cert)
        write_pem(work / "chain.pem", pki.intermediate)
        subprocess.run(
            [
                "openssl",
                "pkcs12",
                "-export",
                "-inkey",
                str(work / "a.key"),
                "-in",
                str(work / "a.pem"),
                "-certfile",
                str(work / "chain.pem"),
                "-passout",
                "pass:x",
                "-out",
                str(work / "a.p12"),
            ],
            check=True,
        )
        sealmail("keys", "import", str(work / "root.pem"), "--trust")
        subprocess.run(
            [*sm, "keys", "import", str(work / "a.p12"), "--passphrase-fd", "0"],
            input=b"x",
            env=env,
            check=True,
            capture_output=True,
            cwd=REPO,
        )
        sealmail("keys", "import", str(work / "b.pem"))

        idle = best(lambda: run([*sm, "--version"], env=env), 1)[1]
        gpg_base = [
            "gpg",
            "--homedir",
            str(gpg.home),
            "--batch",
            "--yes",
            "--trust-model",
            "always",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]
        cells: list[Cell] = []

        # ---- PGP sign+encrypt
        pgp_out = work / "pgp.eml"
        s = best(
            lambda: run(
                [
                    *sm,
                    "message",
                    "encrypt",
                    str(msg),
                    "--to",
                    BOB,
                    "--sign",
                    "--method",
                    "pgp",
                    "-o",
                    str(pgp_out),
                ],
                env=env,
            ),
            args.repeat,
        )
        g = best(
            lambda: run(
                [
                    *gpg_base,
                    "-a",
                    "-se",
                    "-r",
                    ALICE,
                    "-u",
                    BOB,
                    "-o",
                    str(work / "g.asc"),
                    str(msg),
                ],
                env=env,
            ),
            args.repeat,
        )
        cells.append(Cell("PGP sign+encrypt", s[0], g[0], s[1], g[1]))

        # ---- PGP decrypt+verify: gpg made it for Alice, both open the same bytes
        ct = (work / "g.asc").read_bytes()
        from tests.helpers.messages import pgp_mime_encrypted

        (work / "g.eml").write_bytes(pgp_mime_encrypted(f"From: {BOB}\nTo: {ALICE}", ct))
        s = best(
            lambda: run(
                [*sm, "message", "decrypt", str(work / "g.eml"), "-o", str(work / "d.eml")], env=env
            ),
            args.repeat,
        )
        (work / "sm.asc").write_bytes(extract_part(pgp_out.read_bytes(), 1))
        # gpg opens the message Sealmail made for Bob (same payload, same structure)
        g = best(
            lambda: run(
                [*gpg_base, "-d", "-o", str(work / "gd.eml"), str(work / "sm.asc")], env=env
            ),
            args.repeat,
        )
        cells.append(Cell("PGP decrypt+verify", s[0], g[0], s[1], g[1]))

        # ---- S/MIME sign+encrypt vs openssl cms -sign | -encrypt
        sm_out = work / "smime.eml"
        s = best(
            lambda: run(
                [
                    *sm,
                    "message",
                    "encrypt",
                    str(msg),
                    "--to",
                    BOB,
                    "--sign",
                    "--method",
                    "smime",
                    "-o",
                    str(sm_out),
                ],
                env=env,
            ),
            args.repeat,
        )

        def ossl_protect() -> tuple[float, float]:
            t1, r1 = run(
                [
                    "openssl",
                    "cms",
                    "-sign",
                    "-in",
                    str(msg),
                    "-signer",
                    str(work / "b.pem"),
                    "-inkey",
                    str(work / "b.key"),
                    "-certfile",
                    str(work / "chain.pem"),
                    "-out",
                    str(work / "os.eml"),
                ],
                env=env,
            )
            t2, r2 = run(
                [
                    "openssl",
                    "cms",
                    "-encrypt",
                    "-aes256",
                    "-in",
                    str(work / "os.eml"),
                    "-recip",
                    str(work / "a.pem"),
                    "-out",
                    str(work / "oe.eml"),
                ],
                env=env,
            )
            return t1 + t2, max(r1, r2)

        o = best(ossl_protect, args.repeat)
        cells.append(Cell("S/MIME sign+encrypt", s[0], o[0], s[1], o[1]))

        # ---- S/MIME decrypt+verify: Sealmail opens openssl's message, openssl opens Sealmail's
        s = best(
            lambda: run(
                [*sm, "message", "decrypt", str(work / "oe.eml"), "-o", str(work / "sd.eml")],
                env=env,
            ),
            args.repeat,
        )

        def ossl_open() -> tuple[float, float]:
            t1, r1 = run(
                [
                    "openssl",
                    "cms",
                    "-decrypt",
                    "-in",
                    str(work / "oe.eml"),
                    "-recip",
                    str(work / "a.pem"),
                    "-inkey",
                    str(work / "a.key"),
                    "-out",
                    str(work / "od.eml"),
                ],
                env=env,
            )
            t2, r2 = run(
                [
                    "openssl",
                    "cms",
                    "-verify",
                    "-in",
                    str(work / "od.eml"),
                    "-CAfile",
                    str(work / "root.pem"),
                    "-out",
                    str(work / "ov.eml"),
                ],
                env=env,
            )
            return t1 + t2, max(r1, r2)

        o = best(ossl_open, args.repeat)
        cells.append(Cell("S/MIME decrypt+verify", s[0], o[0], s[1], o[1]))

        # ---- print
        print(
            f"\nSealmail crypto benchmark: {size_mb:.0f} MB attachment, best of {args.repeat}, "
            f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        print(
            f"{'operation':24} {'sealmail s':>10} {'ref s':>8} {'ratio':>7} "
            f"{'sealmail RSS MB':>16} {'ref RSS MB':>11} {'RSS over payload':>17}"
        )
        for c in cells:
            over = (c.sealmail_rss_mb - idle) / size_mb
            print(
                f"{c.name:24} {c.sealmail_s:10.2f} {c.reference_s:8.2f} {c.ratio:6.2f}x "
                f"{c.sealmail_rss_mb:16.0f} {c.reference_rss_mb:11.0f} {over:16.2f}x"
            )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "size_mb": size_mb,
                    "repeat": args.repeat,
                    "idle_rss_mb": idle,
                    "machine": platform.machine(),
                    "cores": os.cpu_count(),
                    "cells": [{**asdict(c), "ratio": c.ratio} for c in cells],
                },
                indent=2,
            )
        )
        print(f"\nJSON: {args.json}")
    finally:
        gpg.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
