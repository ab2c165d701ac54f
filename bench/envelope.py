"""Envelope benchmark: create and open a 25 MB envelope in Sealmail (in-process, and the
CLI as a process) and unlock it in Chromium (Debian's, via Playwright), offline.

Usage: ``python -m bench.envelope [--size-mb 25] [--json FILE]``. Prints one line per
measurement; ``--json`` also writes them (seconds) to FILE.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from client.envelope import create as env_create  # noqa: E402
from client.envelope import format as fmt  # noqa: E402
from client.envelope import open as env_open  # noqa: E402

PASSWORD = "bazok-tifum-ruveg-nodal"  # noqa: S105 (a benchmark password)


class _NoKeys:
    def pgp_secret_keys(self) -> list[tuple[bytes, bytes | None]]:
        return []


def _browser(path: Path) -> float:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        ctx = b.new_context(offline=True)
        page = ctx.new_page()
        page.goto(path.as_uri())
        page.fill("#password", PASSWORD)
        t0 = time.perf_counter()
        page.click("#open")
        page.wait_for_selector("#status.ok, #status.error", timeout=180_000)
        elapsed = time.perf_counter() - t0
        b.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=float, default=25)
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    out: dict[str, float] = {"size_mb": args.size_mb}
    data = os.urandom(int(args.size_mb * 1024 * 1024) - 4096)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    created = env_create.create(
        "bench", [fmt.Attachment("big.bin", data)], PASSWORD.encode(), now=now
    )
    out["create_s"] = time.perf_counter() - t0
    print(f"sealmail create (in-process): {out['create_s']:.2f} s")
    t0 = time.perf_counter()
    opened = env_open.open_bytes(
        created.data,
        keys=_NoKeys(),
        password=lambda: PASSWORD.encode(),
        now=now,  # type: ignore[arg-type]
    )
    out["open_s"] = time.perf_counter() - t0
    print(f"sealmail open (in-process):   {out['open_s']:.2f} s")
    assert hashlib.sha256(opened.files[0].data).digest() == hashlib.sha256(data).digest()
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "env.html"
        page.write_bytes(created.data)
        env = {**os.environ, "SEALMAIL_PROFILE": str(Path(tmp) / "p"),
               "SEALMAIL_PROFILE_PASSPHRASE": "bench", "SEALMAIL_PASSPHRASE": PASSWORD,
               "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}  # fmt: skip
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "client.cli", "envelope", "open", str(page), "-o",
             str(Path(tmp) / "out")], check=True, env=env, cwd=REPO, capture_output=True,
        )  # fmt: skip
        out["cli_open_save_s"] = time.perf_counter() - t0
        print(f"sealmail CLI open + save:     {out['cli_open_save_s']:.2f} s")
        out["chromium_unlock_s"] = _browser(page)
        print(f"chromium unlock (offline):    {out['chromium_unlock_s']:.2f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
