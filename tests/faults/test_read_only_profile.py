"""Read-only profile: ``chmod -R a-w`` on the profile directory.

Root ignores permission bits, so under root the child drops to ``nobody`` (``setpriv``)
and the profile is handed to that user first; as a normal user the child runs as is.
Either way the kernel refuses every write (``EACCES``). Every command must end with
``StorageError`` (``error:`` + ``hint:``, exit 74) — never a traceback or the
internal-error path — and ``send`` must not reach the network: the message is not
queued (the user's file is untouched) and not delivered.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.faultkit import (
    CuttingProxy,
    add_account,
    assert_typed_failure,
    big_message,
    give_to_nobody,
    make_read_only,
    run_cli,
)
from tests.servers.rig import MailRig

ALICE, BOB = "alice@example.test", "bob@example.test"
KEY = "johnny-you-are-fired/assets/public-keys/eve@bigcorporation.asc"
AS_ROOT = os.geteuid() == 0


def _snapshot(profile: Path) -> dict[str, str]:
    return {
        str(p.relative_to(profile)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(profile.rglob("*"))
        if p.is_file()
    }


World = tuple[Path, Path, Path, str, CuttingProxy, CuttingProxy]


@pytest.fixture
def world(
    mail_rig: MailRig, tmp_path_factory: pytest.TempPathFactory, corpus: Path
) -> Iterator[World]:
    base = tmp_path_factory.mktemp("readonly")
    os.chmod(base, 0o755)  # noqa: S103 (nobody must reach the profile inside)
    with (
        CuttingProxy("127.0.0.1", mail_rig.imaps_port) as imap,
        CuttingProxy("127.0.0.1", mail_rig.smtps_port) as smtp,
    ):
        profile = base / "profile"
        add_account(
            profile,
            ALICE,
            mail_rig.password(ALICE),
            imap_port=imap.port,
            smtp_port=smtp.port,
            ca_file=mail_rig.ca_file,
        )
        mid, raw = big_message(ALICE, BOB, 64 * 1024)
        msg = base / "message.eml"
        msg.write_bytes(raw)
        key = base / "key.asc"
        key.write_bytes((corpus / KEY).read_bytes())
        for f in (msg, key):
            os.chmod(f, 0o644)
        if AS_ROOT:
            give_to_nobody(base)
        make_read_only(profile)
        yield profile, msg, key, mid, imap, smtp
        subprocess.run(["chmod", "-R", "u+w", str(profile)], check=True)  # for the cleanup


@pytest.mark.parametrize(
    "command",
    [
        ["send", "{msg}"],
        ["keys", "import", "{key}"],
        ["keys", "list"],
        ["sync"],
        ["outbox", "list"],
        ["outbox", "flush"],
    ],
    ids=lambda c: "-".join(c[:2]).replace("{", "").replace("}", ""),
)
def test_read_only_profile_gives_a_typed_error(
    world: World, mail_rig: MailRig, command: list[str]
) -> None:
    profile, msg, key, mid, imap, smtp = world
    before = _snapshot(profile)
    args = [a.format(msg=msg, key=key) for a in command]
    res = run_cli(args, profile, as_nobody=AS_ROOT)
    line = assert_typed_failure(res, "read-only")
    assert res.returncode == 74, line
    assert _snapshot(profile) == before  # nothing changed, nothing half-written
    assert (imap.connections, smtp.connections) == (0, 0)
    if command[0] == "send":
        assert mid not in mail_rig.message_ids(BOB)
        assert msg.read_bytes().startswith(b"From: ")
