"""A real HTTPS server on 127.0.0.1, port 0, for WKD tests; and a throwaway test CA.

:class:`HttpsController` starts a :class:`http.server.ThreadingHTTPServer` wrapped in TLS
in a thread, waits until a TLS handshake-free TCP connect succeeds (no sleeps), re-raises
start-up errors in the caller, and stops it on :meth:`stop`. Content is a dict
``{(host, path): (status, body)}`` so one server can play several virtual hosts
(``openpgpkey.example.org`` and ``example.org``); the client reaches it through
``WkdSettings.resolve``. Requests are recorded in ``requests``.
"""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["HttpsController", "TestCA"]

START_TIMEOUT = 10.0


@dataclass
class TestCA:
    """A CA made in the test; issues server certificates for host names."""

    __test__ = False  # not a pytest class
    name: str = "Sealmail Test CA"
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    cert: x509.Certificate = field(init=False)

    def __post_init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, hosts: list[str], directory: Path, name: str = "server") -> tuple[Path, Path]:
        """(certificate chain PEM, key PEM) for ``hosts``."""
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path = directory / f"{name}.crt"
        key_path = directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        self.request.do_handshake()  # in the handler thread; failures close the socket
        super().setup()

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        self.server.requests.append((host, self.path))
        status, body = self.server.content.get((host, self.path), (404, b"not found"))
        if self.server.block is not None:
            self.server.block.wait(30)
        self.send_response(status)
        ctype = self.server.content_types.get((host, self.path), "application/octet-stream")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    content: dict[tuple[str, str], tuple[int, bytes]]
    content_types: dict[tuple[str, str], str]
    requests: list[tuple[str, str]]
    block: threading.Event | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # bad TLS clients and readiness probes are expected here


class HttpsController:
    """Start/stop a TLS HTTP server on 127.0.0.1:0 serving ``content``."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert, self.key = cert, key
        self.content: dict[tuple[str, str], tuple[int, bytes]] = {}
        #: Content-Type per (host, path); application/octet-stream when not given
        self.content_types: dict[tuple[str, str], str] = {}
        self.requests: list[tuple[str, str]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self) -> HttpsController:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        server = _Server(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        server.socket = ctx.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
        server.content = self.content
        server.content_types = self.content_types
        server.requests = self.requests
        self._server = server
        self.port = server.server_address[1]
        failed: list[BaseException] = []

        def run() -> None:
            try:
                server.serve_forever(poll_interval=0.05)
            except BaseException as exc:  # re-raised in the caller below
                failed.append(exc)

        self._thread = threading.Thread(target=run, name="https-test-server", daemon=True)
        self._thread.start()
        try:  # ready when a TCP connect succeeds
            socket.create_connection(("127.0.0.1", self.port), timeout=START_TIMEOUT).close()
        except OSError as exc:
            self.stop()
            raise RuntimeError(
                f"test HTTPS server did not come up on port {self.port}: {exc}; "
                "is loopback networking available?"
            ) from exc
        if failed:
            raise RuntimeError("test HTTPS server failed to start") from failed[0]
        return self

    def hold_responses(self) -> threading.Event:
        """Make every answer wait until the returned event is set (timeout tests)."""
        assert self._server is not None
        self._server.block = threading.Event()
        return self._server.block

    def stop(self) -> None:
        if self._server is not None:
            if self._server.block is not None:
                self._server.block.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
