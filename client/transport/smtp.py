"""The SMTP submission shell: smtplib over verified TLS, translated into Sealmail's errors.

Theory of operation
-------------------
:func:`submit_connect` opens implicit TLS or plain + STARTTLS. On a plain link STARTTLS
must be offered and succeed before AUTH or any mail command; otherwise the socket is
closed (:class:`~client.errors.TlsRequired`) and nothing else is sent. AUTH happens only on
the TLS link. :meth:`SmtpSession.send` speaks MAIL/RCPT/DATA itself (through smtplib's
public ``mail``/``rcpt``/``putcmd``/``getreply``) so the caller can record, durably, the
instant before the end-of-data dot is sent (``before_commit``): that is what lets the
outbox tell "never reached the server" from "maybe accepted" after a crash.

REQUIRETLS (RFC 8689) is requested when asked and refused locally when the server does not
offer it (:class:`~client.errors.RequireTlsUnavailable`); DSN parameters (RFC 3461) are
added when the server offers DSN. Replies map 4xx → :class:`TemporaryFailure`,
5xx → :class:`ServerRefused`; network errors → :class:`ConnectionFailed`.
"""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from client.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    RequireTlsUnavailable,
    ServerRefused,
    TemporaryFailure,
    TlsRequired,
    TransportError,
)
from client.mime.raw import dot_stuff
from client.transport.tls import client_context, tls_errors

__all__ = ["SendResult", "SmtpSession", "smtp_errors", "submit_connect"]

Security = Literal["tls", "starttls"]
TIMEOUT = 60.0


@dataclass(frozen=True)
class SendResult:
    code: int
    reply: str
    refused: dict[str, tuple[int, str]]  # recipients the server refused (others got it)


def _reply_error(code: int, text: bytes | str, what: str) -> TransportError:
    msg = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    msg = f"{what}: {code} {msg}"[:300]
    if 400 <= code < 500:
        return TemporaryFailure(msg)
    return ServerRefused(msg)


@contextlib.contextmanager
def smtp_errors(host: str) -> Iterator[None]:
    """The one place where smtplib/ssl/socket errors become Sealmail errors."""
    try:
        with tls_errors(host):
            yield
    except TransportError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise AuthenticationFailed(f"{host} rejected the login ({exc.smtp_code})") from exc
    except smtplib.SMTPServerDisconnected as exc:
        raise ConnectionFailed(f"{host} closed the SMTP connection") from exc
    except smtplib.SMTPResponseException as exc:
        raise _reply_error(exc.smtp_code, exc.smtp_error, host) from exc
    except smtplib.SMTPException as exc:
        raise ServerRefused(f"{host}: {exc}"[:300]) from exc
    except (TimeoutError, OSError) as exc:
        raise ConnectionFailed(f"cannot talk to {host}: {exc}") from exc


def submit_connect(
    host: str,
    port: int,
    *,
    security: Security,
    username: str,
    password: str,
    ca_file: str | None = None,
    timeout: float = TIMEOUT,
    local_hostname: str = "sealmail.invalid",
) -> SmtpSession:
    ctx = client_context(ca_file)
    conn: smtplib.SMTP | None = None
    with smtp_errors(host):
        try:
            if security == "tls":
                conn = smtplib.SMTP_SSL(
                    host, port, local_hostname=local_hostname, timeout=timeout, context=ctx
                )
                conn.ehlo()
            else:
                conn = smtplib.SMTP(host, port, local_hostname=local_hostname, timeout=timeout)
                conn.ehlo()
                if not conn.has_extn("starttls"):
                    raise TlsRequired(f"{host} does not offer STARTTLS on port {port}")
                try:
                    code, _text = conn.starttls(context=ctx)
                except smtplib.SMTPResponseException as exc:
                    raise TlsRequired(f"{host} refused STARTTLS ({exc.smtp_code})") from exc
                if code != 220:
                    raise TlsRequired(f"{host} refused STARTTLS ({code})")
                conn.ehlo()
            if not conn.has_extn("auth"):
                raise ServerRefused(f"{host} offers no AUTH over TLS")
            conn.login(username, password)
        except smtplib.SMTPNotSupportedError as exc:
            _close(conn)
            raise TlsRequired(f"{host} does not offer STARTTLS") from exc
        except BaseException:
            _close(conn)
            raise
    assert conn is not None
    return SmtpSession(conn, host)


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    with contextlib.suppress(Exception):
        if conn.sock is not None:
            conn.sock.close()
    conn.sock = None
    conn.file = None


class SmtpSession:
    """An authenticated submission session over TLS."""

    def __init__(self, conn: smtplib.SMTP, host: str) -> None:
        self.conn = conn
        self.host = host

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.quit()
        _close(self.conn)

    @property
    def offers_requiretls(self) -> bool:
        return self.conn.has_extn("requiretls")

    def send(
        self,
        mail_from: str,
        rcpts: Sequence[str],
        raw: bytes,
        *,
        require_tls: bool = False,
        envid: str | None = None,
        before_commit: Callable[[], None] = lambda: None,
    ) -> SendResult:
        """MAIL, RCPT, DATA; ``before_commit()`` runs right before the final dot."""
        c = self.conn
        opts: list[str] = []
        rcpt_opts: list[str] = []
        if require_tls:
            if not self.offers_requiretls:
                raise RequireTlsUnavailable(f"{self.host} does not offer REQUIRETLS")
            opts.append("REQUIRETLS")
        if c.has_extn("dsn"):
            opts.append("RET=HDRS")
            if envid:
                opts.append("ENVID=" + _xtext(envid))
            rcpt_opts.append("NOTIFY=FAILURE,DELAY")
        if c.has_extn("size"):
            opts.append(f"SIZE={len(raw)}")
        if not raw.isascii() and c.has_extn("8bitmime"):
            opts.append("BODY=8BITMIME")
        with smtp_errors(self.host):
            code, text = c.mail(mail_from, opts)
            if code != 250:
                c.rset()
                raise _reply_error(code, text, "MAIL FROM")
            refused: dict[str, tuple[int, str]] = {}
            for r in rcpts:
                code, text = c.rcpt(r, rcpt_opts)
                if code not in (250, 251):
                    refused[r] = (code, text.decode("utf-8", "replace"))
            if len(refused) == len(rcpts):
                c.rset()
                first = next(iter(refused.values()))
                raise _reply_error(first[0], first[1], "RCPT TO")
            c.putcmd("data")
            code, text = c.getreply()
            if code != 354:
                raise _reply_error(code, text, "DATA")
            body = dot_stuff(raw)  # windowed: no long GIL hold on 47 MB
            c.send(body)
            before_commit()
            c.send(b".\r\n")
            code, text = c.getreply()
            if code != 250:
                raise _reply_error(code, text, "end of DATA")
        return SendResult(code, text.decode("utf-8", "replace"), refused)


def _xtext(value: str) -> str:
    """RFC 3461 xtext: printable ASCII except '+' and '=' as is, the rest as +HH."""
    return "".join(
        ch if 33 <= ord(ch) <= 126 and ch not in "+=" else f"+{ord(ch):02X}"
        for ch in value.encode("utf-8").decode("latin-1")
    )
