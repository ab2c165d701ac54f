"""Hostile SMTP and IMAP servers that record every byte they receive.

Theory of operation
-------------------
A :class:`HostileServer` listens on a loopback port chosen by the kernel (port 0) and
plays one scripted misbehaviour (``mode``) towards each client, in a thread per
connection. Whatever the client sends — before TLS, and after TLS in the clear if a
handshake ever succeeds — is appended to :attr:`HostileServer.received`, so a test can
assert that no password and no message content ever reached it. Otherwise the servers
say yes to everything (they accept any login and any message), the worst case for a
client that would leak.

Modes (both protocols unless noted):

- ``no-starttls``  plain link, STARTTLS not advertised
- ``starttls-refused``  STARTTLS advertised, answered 454 (SMTP) / ``BAD`` (IMAP)
- ``expired`` / ``wrong-host`` / ``self-signed``  STARTTLS with a bad certificate
- ``tls-expired`` / ``tls-wrong-host`` / ``tls-self-signed``  implicit TLS, bad certificate
- ``preauth``  (IMAP) ``* PREAUTH`` greeting on a plain link
- ``drop-mid-data``  (SMTP) valid TLS, accepts AUTH, closes the link in the middle of DATA
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field

from tests.servers.pki import CertPair, ServerPki

__all__ = ["IMAP_MODES", "SMTP_MODES", "HostileServer"]

_CERT_MODES = ("expired", "wrong-host", "self-signed")
SMTP_MODES = (
    "no-starttls",
    "starttls-refused",
    *_CERT_MODES,
    *(f"tls-{m}" for m in _CERT_MODES),
    "drop-mid-data",
)
IMAP_MODES = (
    "no-starttls",
    "starttls-refused",
    *_CERT_MODES,
    *(f"tls-{m}" for m in _CERT_MODES),
    "preauth",
)
_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class _Closed(Exception):
    pass


class _Conn:
    def __init__(self, sock: socket.socket, record: bytearray, lock: threading.Lock) -> None:
        self.sock: socket.socket = sock
        self.buf = b""
        self.record = record
        self.lock = lock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise _Closed
        with self.lock:
            self.record.extend(chunk)
        self.buf += chunk

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def start_tls(self, cert: CertPair) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert.cert), str(cert.key))
        self.sock = ctx.wrap_socket(self.sock, server_side=True)
        self.buf = b""


@dataclass
class HostileServer:
    protocol: str  # "smtp" or "imap"
    mode: str
    pki: ServerPki
    host: str = "127.0.0.1"
    port: int = 0
    received: bytearray = field(default_factory=bytearray)
    connections: int = 0
    _sock: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: bool = False

    def __post_init__(self) -> None:
        modes = SMTP_MODES if self.protocol == "smtp" else IMAP_MODES
        if self.mode not in modes:
            raise ValueError(f"unknown {self.protocol} hostile mode {self.mode!r}")

    # ------------------------------------------------------------- lifecycle
    def start(self) -> HostileServer:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, 0))
        s.listen(16)
        self.port = s.getsockname()[1]
        self._sock = s
        t = threading.Thread(target=self._accept_loop, name=f"hostile-{self.mode}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def data(self) -> bytes:
        with self._lock:
            return bytes(self.received)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _cert(self) -> CertPair:
        base = self.mode.removeprefix("tls-")
        return {
            "expired": self.pki.expired,
            "wrong-host": self.pki.wrong_host,
            "self-signed": self.pki.self_signed,
        }.get(base, self.pki.good)

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        c = _Conn(sock, self.received, self._lock)
        try:
            if self.mode.startswith("tls-"):
                c.start_tls(self._cert())
            if self.protocol == "smtp":
                self._smtp(c)
            else:
                self._imap(c)
        except (_Closed, OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                c.sock.close()

    # ------------------------------------------------------------------ SMTP
    def _smtp(self, c: _Conn) -> None:
        tls = self.mode.startswith("tls-")
        c.send(b"220 hostile.test ESMTP\r\n")
        while True:
            line = c.readline()
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                caps = [b"250-hostile.test"]
                if not tls and self.mode != "no-starttls":
                    caps.append(b"250-STARTTLS")
                caps += [b"250-AUTH PLAIN LOGIN", b"250-REQUIRETLS", b"250 8BITMIME"]
                c.send(b"\r\n".join(caps) + b"\r\n")
            elif line.upper().startswith(b"STARTTLS"):
                if self.mode == "starttls-refused":
                    c.send(b"454 4.7.0 TLS not available due to temporary reason\r\n")
                    continue
                c.send(b"220 2.0.0 go ahead\r\n")
                c.start_tls(self._cert())
                tls = True
            elif verb == b"AUTH":
                words = line.split()
                if len(words) == 2:
                    c.send(b"334 \r\n")
                    c.readline()
                    if words[1].upper() == b"LOGIN":
                        c.send(b"334 UGFzc3dvcmQ6\r\n")
                        c.readline()
                c.send(b"235 2.7.0 accepted\r\n")
            elif verb == b"DATA":
                c.send(b"354 go on\r\n")
                if self.mode == "drop-mid-data":
                    c.readline()
                    raise _Closed
                while c.readline() != b".\r\n":
                    pass
                c.send(b"250 2.0.0 queued\r\n")
            elif verb == b"QUIT":
                c.send(b"221 bye\r\n")
                return
            else:
                c.send(b"250 2.0.0 ok\r\n")

    # ------------------------------------------------------------------ IMAP
    def _imap_command(self, c: _Conn) -> bytes:
        line = c.readline()
        while (m := _LITERAL.search(line)) is not None:
            if not line.rstrip().endswith(b"+}"):
                c.send(b"+ go on\r\n")
            line += c.read(int(m.group(1)))
            line += c.readline()
        return line

    def _imap(self, c: _Conn) -> None:
        tls = self.mode.startswith("tls-")

        def caps() -> bytes:
            words = [b"IMAP4rev1", b"AUTH=PLAIN", b"IDLE"]
            if not tls and self.mode not in ("no-starttls", "preauth"):
                words.append(b"STARTTLS")
            return b" ".join(words)

        if self.mode == "preauth":
            c.send(b"* PREAUTH [CAPABILITY " + caps() + b"] hostile ready\r\n")
        else:
            c.send(b"* OK [CAPABILITY " + caps() + b"] hostile ready\r\n")
        while True:
            line = self._imap_command(c)
            tag, _, rest = line.partition(b" ")
            cmd = rest.split(b" ", 1)[0].strip().upper()
            if cmd == b"CAPABILITY":
                c.send(b"* CAPABILITY " + caps() + b"\r\n" + tag + b" OK done\r\n")
            elif cmd == b"STARTTLS":
                if self.mode == "starttls-refused":
                    c.send(tag + b" BAD TLS not available\r\n")
                    continue
                c.send(tag + b" OK begin TLS\r\n")
                c.start_tls(self._cert())
                tls = True
            elif cmd == b"AUTHENTICATE":
                c.send(b"+ \r\n")
                c.readline()
                c.send(tag + b" OK logged in\r\n")
            elif cmd == b"LOGOUT":
                c.send(b"* BYE bye\r\n" + tag + b" OK done\r\n")
                return
            elif cmd in (b"SELECT", b"EXAMINE"):
                c.send(
                    b"* 0 EXISTS\r\n* OK [UIDVALIDITY 1] x\r\n" + tag + b" OK [READ-WRITE] ok\r\n"
                )
            else:
                c.send(tag + b" OK done\r\n")
