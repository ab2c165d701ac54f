"""pytest fixtures for the mail servers; ``tests/conftest.py`` imports them all.

- ``mail_rig`` (session): one Dovecot + submission server (:class:`MailRig`) for the whole
  run; tests that need empty mailboxes call ``rig.clear(user)`` or use fresh users.
- ``fresh_rig`` (function): a private rig, for tests that stop servers or need isolation.
- ``hostile`` (function): a factory for recording hostile servers (:mod:`tests.servers.hostile`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.servers.rig import MailRig

__all__ = ["fresh_rig", "hostile", "mail_rig"]


@pytest.fixture(scope="session")
def mail_rig() -> Iterator[MailRig]:
    rig = MailRig.start()
    try:
        yield rig
    finally:
        rig.stop()


@pytest.fixture
def fresh_rig() -> Iterator[MailRig]:
    rig = MailRig.start()
    try:
        yield rig
    finally:
        rig.stop()


@pytest.fixture
def hostile(mail_rig: MailRig) -> Iterator[Callable[..., Any]]:
    from tests.servers.hostile import HostileServer

    started: list[HostileServer] = []

    def make(protocol: str, mode: str) -> HostileServer:
        srv = HostileServer(protocol, mode, mail_rig.pki).start()
        started.append(srv)
        return srv

    try:
        yield make
    finally:
        for s in started:
            s.stop()
