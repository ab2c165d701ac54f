"""TLS client contexts: verified, host name checked, TLS 1.2 minimum, CA file per account.

Theory of operation
-------------------
Every connection Sealmail makes to a mail server gets its context from
:func:`client_context`. There is deliberately no switch to turn verification off: an
account either trusts the system store or exactly the CA file given for it. Failures of
the handshake become :class:`~client.errors.TlsRequired` in :func:`tls_errors`, the one
place where ``ssl`` exceptions are translated; a link that merely drops (EOF inside TLS)
is :class:`~client.errors.ConnectionFailed`, retried like any network failure.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path

from client.errors import ConnectionFailed, TlsRequired

__all__ = ["client_context", "tls_errors"]


def client_context(ca_file: str | Path | None = None) -> ssl.SSLContext:
    """A verifying client context; with ``ca_file`` only that CA bundle is trusted."""
    if ca_file is not None and not Path(ca_file).is_file():
        raise TlsRequired(
            f"the CA file {ca_file} does not exist",
            hint="Give an existing PEM file with --ca-file, or leave it out for the system store.",
        )
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@contextlib.contextmanager
def tls_errors(host: str) -> Iterator[None]:
    """Translate handshake failures into :class:`TlsRequired` (nothing was sent)."""
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise TlsRequired(
            f"the certificate of {host} is not valid: {exc.verify_message or exc.reason}"
        ) from exc
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
        # the link went down (cut, reset, server restart): a network failure to retry, not a
        # TLS policy failure to hold for good; nothing was sent in the clear either way
        raise ConnectionFailed(f"the connection to {host} was lost during TLS: {exc}") from exc
    except ssl.SSLError as exc:
        raise TlsRequired(f"TLS with {host} failed: {exc.reason or exc}") from exc
