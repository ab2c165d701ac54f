"""One crypto operation timed inside a warm Sealmail process: the cost the app pays.

Usage (bench.run calls it, one process per cell)::

    python -m bench.inproc {pgp-encrypt,smime-encrypt,open} FILE [--to ADDR] [--repeat N]

The profile comes from ``SEALMAIL_PROFILE`` / ``SEALMAIL_PROFILE_PASSPHRASE`` as for the
CLI. The session is opened and the operation run once untimed (imports, unlocking the
profile, loading keys: what the app does once at start), then timed ``--repeat`` times;
the best time is printed as JSON. The reference in bench.run's table is still the ``gpg`` /
``openssl`` process doing the same job, so this ratio answers "how long does the user of
the app wait, compared with a tool that shells out to gpg or openssl", not "which
process starts faster" (that is the CLI row).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from client.commands.common import profile_passphrase
    from client.services import Session

    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("op", choices=("pgp-encrypt", "smime-encrypt", "open"))
    ap.add_argument("file", type=Path)
    ap.add_argument("--to", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    raw = args.file.read_bytes()
    profile = os.environ.get("SEALMAIL_PROFILE")
    session = Session.open(profile, profile_passphrase=profile_passphrase)

    def once() -> None:
        now = datetime.now(UTC)
        if args.op == "open":
            opened = session.message_open(raw, now=now, require="encrypted")
            report = opened.report
            # decrypted and a signature checked (openssl's message has no From header, so
            # its good signature is reported as a signer mismatch: still verified work)
            checked = {"good", "signer-mismatch"}
            if not (report.encrypted and report.signatures) or any(
                x.status not in checked for x in report.signatures
            ):
                sigs = [(x.status, x.detail) for x in report.signatures]
                raise SystemExit(f"not opened as encrypted and signed: {report.layers} {sigs}")
        else:
            session.message_encrypt(
                raw, to=[args.to], sender=None, method=args.op.split("-")[0], sign=True,
                now=now, rng=os.urandom,
            )  # fmt: skip

    once()  # warm: imports, profile unlock, key loading
    best = float("inf")
    for _ in range(args.repeat):
        t = time.perf_counter()
        once()
        best = min(best, time.perf_counter() - t)
    print(json.dumps({"op": args.op, "seconds": best}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
