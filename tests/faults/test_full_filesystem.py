"""A really full file system (``ENOSPC``): the profile on a small tmpfs filled to the brim.

Mounting needs root (the CI container runs as root); without it the same cases run with
``RLIMIT_FSIZE`` instead (``EFBIG``, see :mod:`tests.faults.faultkit`), so the test never
skips. Which one ran is printed. On the full file system: ``send`` is refused before any
network I/O and nothing is queued half-way; a key import leaves the keystore as it was;
after space is freed both work and the message is delivered exactly once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.faultkit import (
    CuttingProxy,
    add_account,
    assert_typed_failure,
    big_message,
    fsize_limit,
    leftovers,
    run_cli,
)
from tests.servers.rig import MailRig

ALICE, BOB = "alice@example.test", "bob@example.test"
KEY = "johnny-you-are-fired/assets/public-keys/eve@bigcorporation.asc"


def _try_mount(where: Path) -> bool:
    if os.geteuid() != 0:
        return False
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return res.returncode == 0


def _fill(where: Path) -> Path:
    """Fill the file system at ``where`` until the kernel says ENOSPC."""
    filler = where / "filler"
    with open(filler, "wb") as fh:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                fh.write(chunk)
                fh.flush()
        fh.seek(0, os.SEEK_END)
    for size in (4096, 1):  # the last page-sized holes too
        with contextlib.suppress(OSError), open(filler, "ab") as fh:
            while True:
                fh.write(b"\0" * size)
                fh.flush()
    with pytest.raises(OSError) as info:
        (where / "probe").write_bytes(b"x" * 8192)
    assert info.value.errno == errno.ENOSPC
    with contextlib.suppress(FileNotFoundError):
        (where / "probe").unlink()
    return filler


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = _try_mount(mnt)
    try:
        yield mnt, ("tmpfs" if mounted else "rlimit")
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_file_system_send_and_import(
    disk: tuple[Path, str], mail_rig: MailRig, corpus: Path, tmp_path: Path
) -> None:
    where, mode = disk
    print(f"full file system by {mode}")
    with (
        CuttingProxy("127.0.0.1", mail_rig.imaps_port) as imap,
        CuttingProxy("127.0.0.1", mail_rig.smtps_port) as smtp,
    ):
        profile = where / "profile"
        add_account(
            profile,
            ALICE,
            mail_rig.password(ALICE),
            imap_port=imap.port,
            smtp_port=smtp.port,
            ca_file=mail_rig.ca_file,
        )
        assert run_cli(["outbox", "list"], profile).returncode == 0  # outbox dir exists
        mid, raw = big_message(ALICE, BOB, 256 * 1024)
        msg = tmp_path / "m.eml"  # the user's file is elsewhere
        msg.write_bytes(raw)
        limit: Callable[[], None] | None = None
        filler: Path | None = None
        if mode == "tmpfs":
            filler = _fill(where)
        else:
            limit = fsize_limit(8192)
        keys_before = run_cli(["keys", "list", "--json"], profile).stdout

        res = run_cli(["send", str(msg)], profile, preexec=limit)
        print(assert_typed_failure(res, "cannot write"))
        assert res.returncode == 74
        assert (smtp.connections, imap.connections) == (0, 0)
        assert leftovers(profile) == []
        assert not any((profile / "outbox").glob("*.json"))  # not queued half-way

        res = run_cli(["keys", "import", str(corpus / KEY)], profile, preexec=limit)
        print(assert_typed_failure(res, "cannot write"))
        assert res.returncode == 74
        assert run_cli(["keys", "list", "--json"], profile).stdout == keys_before
        assert leftovers(profile) == []

        if filler is not None:
            filler.unlink()  # space again
        ok = run_cli(["send", str(msg), "--json"], profile)
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["state"] == "done"
        assert run_cli(["keys", "import", str(corpus / KEY)], profile).returncode == 0
    assert mail_rig.message_ids(BOB).count(mid) == 1
    assert mail_rig.message_ids(ALICE, "Sent").count(mid) == 1
