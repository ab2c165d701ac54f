"""One small HTTPS client piece shared by key discovery (WKD) and mail autoconfig.

:class:`ResolvingHTTPSConnection` checks TLS against ``host`` (the name in the URL) but may
connect to another address — how tests point a real domain name at a loopback server
without touching DNS, and how a caller pins an address it already resolved.
"""

from __future__ import annotations

import http.client
import socket
import ssl

__all__ = ["ResolvingHTTPSConnection"]


class ResolvingHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``host`` (checked in TLS) at ``address``."""

    def __init__(
        self, host: str, port: int, *, address: tuple[str, int], timeout: float, ctx: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=ctx)
        self._address = address
        self._ctx = ctx

    def connect(self) -> None:
        sock = socket.create_connection(self._address, self.timeout)
        try:
            self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
