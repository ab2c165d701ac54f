"""A small authoritative DNS server on loopback UDP, for tests and the demo mode.

Theory of operation
-------------------
:class:`DnsServer` binds ``127.0.0.1:0`` (UDP), answers in a thread with dnspython's
message API (:func:`dns.message.from_wire` / :func:`dns.message.make_response`) from
``records`` — ``{(name, type): [rdata text, ...]}``, e.g.
``{("_mta-sts.example.test", "TXT"): ['"v=STSv1; id=1"']}`` — and says NXDOMAIN for a
name with no record of any type, NOERROR with no answer otherwise. ``records`` may be
changed while it runs. ``silent`` names are never answered (timeout tests). Every question
is recorded in ``queries``. Never used by normal operation.
"""

from __future__ import annotations

import socket
import threading

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsServer"]


class DnsServer:
    def __init__(self, records: dict[tuple[str, str], list[str]] | None = None) -> None:
        self.records: dict[tuple[str, str], list[str]] = dict(records or {})
        self.silent: set[str] = set()
        self.queries: list[tuple[str, str]] = []
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.port = 0

    def __enter__(self) -> DnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> DnsServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.1)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="dns-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                wire, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self._answer(wire)
            except dns.exception.DNSException:
                continue  # not a DNS query: dropped
            if reply is not None:
                self._sock.sendto(reply, peer)

    def _answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            if name in self.silent:
                return None
            texts = self.records.get((name, rdtype))
            if texts:
                rrset = dns.rrset.from_text_list(question.name, 300, "IN", rdtype, texts)
                response.answer.append(rrset)
            elif not any(n == name for n, _t in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response.to_wire()
