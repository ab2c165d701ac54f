"""Sealmail crypto benchmarks: the same work by Sealmail and by gpg / openssl, same run.

Usage: ``make bench`` or
``python -m bench.run [--size-mb N | --sizes 1K,1M,50M] [--repeat N] [--json FILE]``.

Every cell runs a command as its own process (through :mod:`bench.measure`, so peak RSS is
the command's own) and records wall time and peak RSS, for Sealmail's CLI and for the
reference tool doing the same job on the same message:

* PGP sign+encrypt / decrypt+verify vs ``gpg`` (each side opens a message made *for* it by
  the other, same payload and structure);
* S/MIME sign+encrypt / decrypt+verify vs ``openssl cms -sign|-encrypt`` and
  ``-decrypt|-verify``.

Ratio = Sealmail time / reference time (goal <= 1.0x). "RSS over payload" = (peak RSS of
the big run - peak RSS of the same command on a 1 KB message) / payload (goal <= 1.5x).
One table per size is printed; JSON goes to bench/results/crypto.json (the largest size at
the top level, as before, and every size under ``"sizes"``).

The Sealmail commands run with compiled bytecode, as an installed Sealmail does: a
checkout with ``PYTHONDONTWRITEBYTECODE=1`` would otherwise recompile some 400 modules on
every call (0.2-1 s of each cell). The bytecode goes to a temporary
``PYTHONPYCACHEPREFIX``, so the checkout stays clean; the key set-up warms it.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.gnupg import Gpg  # noqa: E402
from tests.helpers.messages import extract_part, make_message, pgp_mime_encrypted  # noqa: E402
from tests.helpers.pki import make_pki, write_pem  # noqa: E402

ALICE, BOB = "alice@example.org", "bob@example.net"
Measured = tuple[float, float]  # seconds, peak RSS MiB


def run(cmd: list[str], *, env: dict[str, str]) -> Measured:
    """Run ``cmd`` through bench.measure; return (seconds, peak RSS in MiB)."""
    proc = subprocess.run(
        [sys.executable, "-S", str(REPO / "bench" / "measure.py"), "--", *cmd],
        env=env,
        capture_output=True,
        cwd=REPO,
    )
    lines = proc.stderr.decode(errors="replace").splitlines()
    tag = next((line for line in reversed(lines) if line.startswith("@@measure ")), None)
    if proc.returncode != 0 or tag is None:
        raise SystemExit(f"benchmark command failed: {' '.join(cmd)}\n" + "\n".join(lines[-20:]))
    _, seconds, maxrss_kib = tag.split()
    return float(seconds), int(maxrss_kib) / 1024


def chain(*steps: Callable[[], Measured]) -> Measured:
    results = [step() for step in steps]
    return sum(r[0] for r in results), max(r[1] for r in results)


def best(fn: Callable[[], Measured], repeat: int) -> Measured:
    results = [fn() for _ in range(repeat)]
    return min(r[0] for r in results), max(r[1] for r in results)


class Bench:
    def __init__(self, work: Path, gpg: Gpg) -> None:
        self.work, self.gpg = work, gpg
        self.in_app: dict[str, float] = {}
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {
            **env,
            "PYTHONPYCACHEPREFIX": str(work / "pycache"),
            "SEALMAIL_PROFILE": str(work / "profile"),
            "SEALMAIL_PROFILE_PASSPHRASE": "bench",
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        self.sm = [sys.executable, "-m", "client.cli"]
        self.gpg_base = [
            "gpg", "--homedir", str(gpg.home), "--batch", "--yes", "--trust-model", "always",
            "--pinentry-mode", "loopback", "--passphrase", "",
        ]  # fmt: skip

    def sealmail(self, *args: str, input: bytes | None = None) -> bytes:
        return subprocess.run(
            [*self.sm, *args], env=self.env, check=True, capture_output=True, cwd=REPO, input=input
        ).stdout

    def keys(self) -> None:
        w = self.work
        self.sealmail("keys", "generate", "--email", ALICE, "--kind", "pgp")
        self.gpg.generate(f"Bob <{BOB}>")
        (w / "bob.asc").write_bytes(self.gpg.export(BOB))
        self.sealmail("keys", "import", str(w / "bob.asc"))
        keys = json.loads(self.sealmail("keys", "list", "--json"))
        fpr = next(k["fingerprint"] for k in keys if ALICE in k["emails"])
        self.gpg.import_key(self.sealmail("keys", "export", fpr))
        pki = make_pki()
        a_leaf, b_leaf = pki.leaf(ALICE, "rsa2048"), pki.leaf(BOB, "rsa2048")
        for name, obj in (("root.pem", pki.root), ("a.key", a_leaf.key), ("a.pem", a_leaf.cert),
                          ("b.key", b_leaf.key), ("b.pem", b_leaf.cert),
                          ("chain.pem", pki.intermediate)):  # fmt: skip
            write_pem(w / name, obj)
        subprocess.run(
            ["openssl", "pkcs12", "-export", "-inkey", str(w / "a.key"), "-in", str(w / "a.pem"),
             "-certfile", str(w / "chain.pem"), "-passout", "pass:x", "-out", str(w / "a.p12")],
            check=True,
        )  # fmt: skip
        self.sealmail("keys", "import", str(w / "root.pem"), "--trust")
        self.sealmail("keys", "import", str(w / "a.p12"), "--passphrase-fd", "0", input=b"x")
        self.sealmail("keys", "import", str(w / "b.pem"))

    def cells(self, msg: Path, tag: str, repeat: int) -> dict[str, tuple[Measured, Measured]]:
        w, env, sm = self.work, self.env, self.sm
        out: dict[str, tuple[Measured, Measured]] = {}
        f = lambda name: str(w / f"{tag}.{name}")  # noqa: E731

        s = best(lambda: run([*sm, "message", "encrypt", str(msg), "--to", BOB, "--sign",
                              "--method", "pgp", "-o", f("pgp.eml")], env=env), repeat)  # fmt: skip
        g = best(lambda: run([*self.gpg_base, "-a", "-se", "-r", ALICE, "-u", BOB, "-o",
                              f("g.asc"), str(msg)], env=env), repeat)  # fmt: skip
        out["PGP sign+encrypt"] = (s, g)

        Path(f("g.eml")).write_bytes(
            pgp_mime_encrypted(f"From: {BOB}\nTo: {ALICE}", Path(f("g.asc")).read_bytes())
        )
        Path(f("sm.asc")).write_bytes(extract_part(Path(f("pgp.eml")).read_bytes(), 1))
        s = best(lambda: run([*sm, "message", "decrypt", f("g.eml"), "-o", f("d.eml")], env=env),
                 repeat)  # fmt: skip
        g = best(lambda: run([*self.gpg_base, "-d", "-o", f("gd.eml"), f("sm.asc")], env=env),
                 repeat)  # fmt: skip
        out["PGP decrypt+verify"] = (s, g)

        s = best(lambda: run([*sm, "message", "encrypt", str(msg), "--to", BOB, "--sign",
                              "--method", "smime", "-o", f("smime.eml")], env=env), repeat)  # fmt: skip
        o = best(lambda: chain(
            lambda: run(["openssl", "cms", "-sign", "-in", str(msg), "-signer", str(w / "b.pem"),
                         "-inkey", str(w / "b.key"), "-certfile", str(w / "chain.pem"),
                         "-out", f("os.eml")], env=env),
            lambda: run(["openssl", "cms", "-encrypt", "-aes256", "-in", f("os.eml"),
                         "-recip", str(w / "a.pem"), "-out", f("oe.eml")], env=env),
        ), repeat)  # fmt: skip
        out["S/MIME sign+encrypt"] = (s, o)

        s = best(lambda: run([*sm, "message", "decrypt", f("oe.eml"), "-o", f("sd.eml")],
                             env=env), repeat)  # fmt: skip
        o = best(lambda: chain(
            lambda: run(["openssl", "cms", "-decrypt", "-in", f("oe.eml"), "-recip",
                         str(w / "a.pem"), "-inkey", str(w / "a.key"), "-out", f("od.eml")], env=env),
            lambda: run(["openssl", "cms", "-verify", "-in", f("od.eml"), "-CAfile",
                         str(w / "root.pem"), "-out", f("ov.eml")], env=env),
        ), repeat)  # fmt: skip
        out["S/MIME decrypt+verify"] = (s, o)
        self.in_app = {
            "PGP sign+encrypt": self.inproc("pgp-encrypt", str(msg), "--to", BOB, repeat=repeat),
            "PGP decrypt+verify": self.inproc("open", f("g.eml"), repeat=repeat),
            "S/MIME sign+encrypt": self.inproc("smime-encrypt", str(msg), "--to", BOB,
                                               repeat=repeat),
            "S/MIME decrypt+verify": self.inproc("open", f("oe.eml"), repeat=repeat),
        }  # fmt: skip
        return out

    def inproc(self, *args: str, repeat: int) -> float:
        """Best seconds of one operation inside a warm Sealmail process (bench.inproc)."""
        proc = subprocess.run(
            [sys.executable, "-m", "bench.inproc", *args, "--repeat", str(max(repeat, 3))],
            env=self.env, capture_output=True, cwd=REPO, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            raise SystemExit(f"bench.inproc {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
        return float(json.loads(proc.stdout.strip().splitlines()[-1])["seconds"])


def _size(text: str) -> int:
    """``1K``, ``1M``, ``50M`` or a bare number of MiB -> octets."""
    text = text.strip().upper()
    unit = {"K": 1024, "M": 1024 * 1024}.get(text[-1:], 0)
    return int(text[:-1]) * unit if unit else int(text) * 1024 * 1024


def _label(size: int) -> str:
    return f"{size // 1024} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.0f} MB"


def _table(
    size: int,
    repeat: int,
    cells: dict[str, tuple[Measured, Measured]],
    base: dict[str, Any],
    in_app: dict[str, float],
) -> list[dict[str, Any]]:
    size_mb = size / 1024 / 1024
    print(
        f"\nSealmail crypto benchmark: {_label(size)} attachment, best of {repeat}, "
        f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    header = (f"{'operation':24} {'sealmail s':>10} {'ref s':>7} {'ratio':>7} "
              f"{'sealmail MiB':>12} {'ref MiB':>8} {'RSS over payload':>16} "
              f"{'in-app s':>8} {'ratio':>7}")  # fmt: skip
    print(header)
    rows = []
    for name, ((s_t, s_rss), (r_t, r_rss)) in cells.items():
        over = (s_rss - base[name][0][1]) / size_mb if size >= 1024 * 1024 else None
        ratio = s_t / r_t if r_t else float("inf")
        shown = f"{over:15.2f}x" if over is not None else f"{'-':>16}"
        app = in_app[name]
        app_ratio = app / r_t if r_t else float("inf")
        print(f"{name:24} {s_t:10.2f} {r_t:7.2f} {ratio:6.2f}x "
              f"{s_rss:12.0f} {r_rss:8.0f} {shown} {app:8.3f} {app_ratio:6.2f}x")  # fmt: skip
        rows.append({"operation": name, "sealmail_s": s_t, "reference_s": r_t, "ratio": ratio,
                     "sealmail_rss_mib": s_rss, "reference_rss_mib": r_rss,
                     "baseline_rss_mib": base[name][0][1], "rss_over_payload": over,
                     "in_app_s": app, "in_app_ratio": app_ratio})  # fmt: skip
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=None, help="one size in MiB (default 50)")
    ap.add_argument("--sizes", default=None, help="comma-separated sizes, e.g. 1K,1M,50M")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "crypto.json")
    args = ap.parse_args()
    if args.sizes and args.size_mb is not None:
        raise SystemExit("give --size-mb or --sizes, not both")
    sizes = (
        [_size(x) for x in args.sizes.split(",")] if args.sizes else [(args.size_mb or 50) << 20]
    )

    work = Path(tempfile.mkdtemp(prefix="smbench"))
    gpg = Gpg()
    try:
        bench = Bench(work, gpg)
        bench.keys()
        small = work / "small.eml"
        small.write_bytes(make_message(ALICE, BOB, attachments=[("scan.bin", os.urandom(1024))]))
        base = bench.cells(small, "small", args.repeat)
        base_in_app = bench.in_app
        results: list[dict[str, Any]] = []
        for size in sorted(sizes):
            if size <= 1024:
                cells, bench.in_app = base, base_in_app
            else:
                msg = work / f"m{size}.eml"
                payload = os.urandom(size)
                msg.write_bytes(make_message(ALICE, BOB, attachments=[("scan.bin", payload)]))
                del payload
                cells = bench.cells(msg, f"m{size}", args.repeat)
            rows = _table(size, args.repeat, cells, base, bench.in_app)
            results.append({"size_mb": size / 1024 / 1024, "cells": rows})
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "size_mb": results[-1]["size_mb"], "repeat": args.repeat,
            "machine": platform.machine(), "cores": os.cpu_count(),
            "python": platform.python_version(), "load_average": os.getloadavg()[0],
            "cells": results[-1]["cells"], "sizes": results,
        }, indent=2))  # fmt: skip
        print(f"\nJSON: {args.json}")
    finally:
        gpg.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
