"""An aiosmtpd submission server: STARTTLS and implicit TLS, AUTH against Dovecot, LMTP.

Theory of operation
-------------------
:class:`Submission` runs an asyncio loop in a thread with two listeners bound to port 0 on
loopback: ``starttls_port`` (plain, STARTTLS required before AUTH and mail) and
``tls_port`` (implicit TLS). AUTH PLAIN/LOGIN is checked against Dovecot's own auth
service through its ``auth-client`` socket (the same passwd-file Dovecot serves IMAP
from), so one set of users works for both. An accepted message is delivered into Dovecot
by LMTP *before* the 250 reply, so "accepted" means "in the recipient's mailbox".

Options: ``requiretls=True`` advertises REQUIRETLS (RFC 8689) and accepts the MAIL
parameter; DSN (RFC 3461) parameters are always accepted and recorded. Every accepted
envelope is appended to :attr:`Submission.accepted` for tests. ``start()`` returns when the
sockets listen and re-raises start-up errors in the caller.
"""

from __future__ import annotations

import asyncio
import base64
import os
import smtplib
import socket
import ssl
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Accepted", "Submission", "dovecot_auth"]

START_TIMEOUT = 10.0


@dataclass(frozen=True)
class Accepted:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    mail_options: tuple[str, ...]
    rcpt_options: tuple[str, ...]
    data: bytes
    user: str | None
    tls: bool


def dovecot_auth(socket_path: Path, user: str, password: str, *, service: str = "smtp") -> bool:
    """Check a login against Dovecot's auth-client socket (auth protocol 1.x, PLAIN)."""
    resp = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(socket_path))
        s.sendall(f"VERSION\t1\t2\nCPID\t{os.getpid()}\n".encode())
        buf = b""
        while b"DONE\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                return False
            buf += chunk
        s.sendall(f"AUTH\t1\tPLAIN\tservice={service}\tsecured\tno-penalty\tresp={resp}\n".encode())
        line = b""
        while not line.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                return False
            line += chunk
        return line.startswith(b"OK\t1")


class _Handler:
    def __init__(self, owner: Submission) -> None:
        self.owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        extra = ["250-DSN", "250-ENHANCEDSTATUSCODES"]
        if self.owner.requiretls and _is_tls(server, session):
            extra.append("250-REQUIRETLS")
        return [*responses[:-1], *extra, responses[-1]]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        opts = tuple(envelope.mail_options)
        if "REQUIRETLS" in opts and not _is_tls(server, session):
            return "550 5.7.30 REQUIRETLS support required"
        data = envelope.original_content or b""
        rcpts = list(envelope.rcpt_tos)
        refused: dict[str, Any] = {}
        try:
            refused = await asyncio.get_running_loop().run_in_executor(
                None, self.owner.deliver_many, envelope.mail_from or "", rcpts, data
            )
        except smtplib.SMTPException as exc:
            return f"451 4.3.0 local delivery failed: {exc}"
        if len(refused) == len(rcpts):
            return "550 5.1.1 no such user"
        self.owner.accepted.append(
            Accepted(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(rcpts),
                mail_options=opts,
                rcpt_options=tuple(envelope.rcpt_options),
                data=data,
                user=str(session.auth_data) if session.auth_data else None,
                tls=_is_tls(server, session),
            )
        )
        return "250 2.0.0 OK delivered"


def _is_tls(server: SMTP, session: Session) -> bool:
    return bool(session.ssl) or getattr(server, "_implicit_tls", False)


class _Session(Session):
    """aiosmtpd's session without the deprecated ``login_data`` warning (tests turn warnings
    into errors, and aiosmtpd itself still sets the attribute)."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SMTP(SMTP):
    """aiosmtpd plus the MAIL parameters REQUIRETLS, RET, ENVID and RCPT NOTIFY, ORCPT."""

    _implicit_tls = False

    def _create_session(self) -> Session:
        return _Session(self.loop)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if arg:
            words = arg.split()
            kept = [w for w in words if not _known(w, ("REQUIRETLS", "RET=", "ENVID="))]
            extra = [w.upper() for w in words if w not in kept]
            if "REQUIRETLS" in extra and not getattr(self, "_requiretls_offered", False):
                await self.push("555 5.5.4 REQUIRETLS not offered")
                return
            arg = " ".join(kept)
            await super().smtp_MAIL(arg)
            if self.envelope is not None and self.envelope.mail_from:
                self.envelope.mail_options.extend(extra)
            return
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if arg:
            words = arg.split()
            kept = [w for w in words if not _known(w, ("NOTIFY=", "ORCPT="))]
            extra = [w.upper() for w in words if w not in kept]
            before = len(self.envelope.rcpt_tos) if self.envelope else 0
            await super().smtp_RCPT(" ".join(kept))
            if self.envelope is not None and len(self.envelope.rcpt_tos) > before:
                self.envelope.rcpt_options.extend(extra)
            return
        await super().smtp_RCPT(arg)

    async def smtp_EHLO(self, hostname: str) -> None:
        assert self.session is not None
        self._requiretls_offered = bool(
            getattr(self.event_handler, "owner", None)
            and self.event_handler.owner.requiretls
            and (self._implicit_tls or self._tls_protocol is not None)
        )
        await super().smtp_EHLO(hostname)


def _known(word: str, names: tuple[str, ...]) -> bool:
    up = word.upper()
    return any(up == n or (n.endswith("=") and up.startswith(n)) for n in names)


@dataclass
class Submission:
    """The submission server. ``deliver(user, raw)`` drops a message straight into Dovecot."""

    cert_file: Path
    key_file: Path
    auth_socket: Path
    lmtp_port: int
    host: str = "127.0.0.1"
    requiretls: bool = False
    size_limit: int = 32 << 20  # octets (EHLO SIZE); aiosmtpd's default, as many servers
    starttls_port: int = 0
    tls_port: int = 0
    accepted: list[Accepted] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _servers: list[asyncio.base_events.Server] = field(default_factory=list)

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        ok = dovecot_auth(self.auth_socket, user, auth_data.password.decode("utf-8", "replace"))
        if not ok:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=user)

    def deliver_many(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, Any]:
        # one recipient per LMTP transaction: smtplib reads a single reply after DATA,
        # while LMTP answers once per recipient
        refused: dict[str, Any] = {}
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=30) as lmtp:
            for rcpt in rcpts:
                try:
                    lmtp.sendmail(mail_from, [rcpt], data)
                except smtplib.SMTPRecipientsRefused as exc:
                    refused.update(exc.recipients)
                    lmtp.rset()
        return refused

    def deliver(self, user: str, raw: bytes, *, mail_from: str = "rig@example.test") -> None:
        refused = self.deliver_many(mail_from, [user], raw)
        if refused:
            raise RuntimeError(f"LMTP refused {user}: {refused}")

    def _factory(self, implicit: bool) -> SMTP:
        tls = self._tls_context()
        with warnings.catch_warnings():
            # implicit TLS: the link is TLS from the first byte, aiosmtpd cannot tell
            warnings.simplefilter("ignore")
            proto = self._make(tls, implicit)
        proto._implicit_tls = implicit
        return proto

    def _make(self, tls: ssl.SSLContext, implicit: bool) -> _SMTP:
        return _SMTP(
            _Handler(self),
            hostname="submission.test",
            tls_context=None if implicit else tls,
            require_starttls=not implicit,
            auth_required=True,
            auth_require_tls=not implicit,
            authenticator=self.authenticate,
            decode_data=False,
            enable_SMTPUTF8=True,
            data_size_limit=self.size_limit,
        )

    def start(self) -> Submission:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                plain = loop.run_until_complete(
                    loop.create_server(lambda: self._factory(False), self.host, 0)
                )
                implicit = loop.run_until_complete(
                    loop.create_server(
                        lambda: self._factory(True), self.host, 0, ssl=self._tls_context()
                    )
                )
                self._servers = [plain, implicit]
                self.starttls_port = plain.sockets[0].getsockname()[1]
                self.tls_port = implicit.sockets[0].getsockname()[1]
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                for s in self._servers:
                    s.close()
                    loop.run_until_complete(s.wait_closed())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="submission-server", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise TimeoutError(
                f"the submission server did not listen within {START_TIMEOUT}s "
                "(is the machine overloaded?)"
            )
        if errors:
            raise RuntimeError("the submission server failed to start") from errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> Submission:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
