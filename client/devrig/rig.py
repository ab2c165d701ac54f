"""``MailRig``: Dovecot + the submission server + a test CA, as one object for tests and demos.

>>> with MailRig.start(users={"alice@example.test": "pw-a"}) as rig:   # doctest: +SKIP
...     rig.deliver("alice@example.test", b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
...     rig.imap_port, rig.imaps_port, rig.smtp_port, rig.smtps_port, rig.ca_file

Users log in with their address; ``rig.password(user)`` returns the password.
``rig.imap(user)`` is a logged-in :class:`imapclient.IMAPClient` over verified TLS for
checking server-side state (it is test plumbing, not the code under test).
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.devrig.dovecot import Dovecot, DovecotUser
from client.devrig.pki import ServerPki
from client.devrig.submission import Submission

__all__ = ["DEFAULT_USERS", "MailRig"]

DEFAULT_USERS: Mapping[str, str] = {
    "alice@example.test": "alice-imap-secret-7Q",
    "bob@example.test": "bob-imap-secret-9Z",
    "carol@example.test": "carol-imap-secret-3K",
}


@dataclass
class MailRig:
    pki: ServerPki
    dovecot: Dovecot
    submission: Submission
    users: Mapping[str, str]
    host: str = "127.0.0.1"
    _tmp: Path | None = None

    @classmethod
    def start(
        cls,
        users: Mapping[str, str] | None = None,
        *,
        requiretls: bool = True,
        size_limit: int = 32 << 20,
    ) -> MailRig:
        users = dict(users or DEFAULT_USERS)
        tmp = Path(tempfile.mkdtemp(prefix="sm-rig-"))
        pki = ServerPki.make(tmp / "pki")
        dv = Dovecot(pki.good, [DovecotUser(u, p) for u, p in users.items()]).start()
        try:
            sub = Submission(
                pki.good.cert,
                pki.good.key,
                dv.auth_socket,
                dv.lmtp_port,
                requiretls=requiretls,
                size_limit=size_limit,
            ).start()
        except BaseException:
            dv.stop()
            raise
        return cls(pki=pki, dovecot=dv, submission=sub, users=users, _tmp=tmp)

    def stop(self) -> None:
        self.submission.stop()
        self.dovecot.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> MailRig:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ facts
    @property
    def ca_file(self) -> Path:
        return self.pki.ca_file

    @property
    def imap_port(self) -> int:
        """STARTTLS IMAP."""
        return self.dovecot.imap_port

    @property
    def imaps_port(self) -> int:
        return self.dovecot.imaps_port

    @property
    def smtp_port(self) -> int:
        """STARTTLS submission."""
        return self.submission.starttls_port

    @property
    def smtps_port(self) -> int:
        return self.submission.tls_port

    def password(self, user: str) -> str:
        return self.users[user]

    # ------------------------------------------------------------------ actions
    def deliver(self, user: str, raw: bytes, *, mail_from: str = "rig@example.test") -> None:
        """Put ``raw`` into ``user``'s INBOX through LMTP (as if it arrived from outside)."""
        self.submission.deliver(user, raw, mail_from=mail_from)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def imap(self, user: str) -> Any:
        """A logged-in IMAPClient (implicit TLS) for checking the server side in tests."""
        import imapclient  # type: ignore[import-untyped]

        c = imapclient.IMAPClient(
            self.host, self.imaps_port, ssl=True, ssl_context=self.ssl_context(), timeout=30
        )
        c.login(user, self.users[user])
        return c

    def message_ids(self, user: str, folder: str = "INBOX") -> list[str]:
        """The Message-ID header of every message in ``folder`` (in UID order)."""
        c = self.imap(user)
        try:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            out: list[str] = []
            for i in range(0, len(uids), 1000):
                chunk = uids[i : i + 1000]
                data = c.fetch(chunk, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
                for uid in sorted(data):
                    raw = data[uid][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode()
                    out.append(raw.partition(":")[2].strip())
            return out
        finally:
            c.logout()

    def clear(self, user: str) -> None:
        """Empty every folder of ``user`` (for session-scoped rigs shared between tests)."""
        c = self.imap(user)
        try:
            for _flags, _delim, name in c.list_folders():
                c.select_folder(name)
                uids = c.search("ALL")
                if uids:
                    c.delete_messages(uids)
                    c.expunge()
        finally:
            c.logout()
