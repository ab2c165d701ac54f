"""Account autoconfiguration: Thunderbird autoconfig XML, then well-known host names.

Theory of operation
-------------------
:func:`discover` tries, in order, for ``user@domain``:

1. ``https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>``
2. ``https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml``
3. as Thunderbird does, the domain's MX: the best MX host's registrable base domain (by
   the Public Suffix List, ``publicsuffixlist``), when it differs from ``<domain>``, gets
   the same two look-ups (``autoconfig.<base>/…`` and ``<base>/.well-known/…``) — how a
   domain hosted by a provider finds the provider's settings. DNS goes through the
   injected :attr:`AutoconfigSources.dns` (the system resolver by default); the answer is
   marked :attr:`Discovered.via_mx` so callers can say where it came from.
4. well-known names, each probed with a *verified* TLS handshake: IMAP on
   ``imap.<domain>:993`` / ``mail.<domain>:993`` (implicit TLS), SMTP on
   ``smtp.<domain>:465`` / ``mail.<domain>:465`` (implicit TLS) and ``:587`` (STARTTLS).

HTTP is only ever HTTPS verified with :func:`client.transport.tls.client_context` (no
plain-HTTP fallback, redirects are not followed), answers are capped at
:attr:`AutoconfigSources.max_bytes`, and the XML is parsed with ``xml.etree`` only after
any DTD (``<!DOCTYPE``, ``<!ENTITY``) has been refused — so no entity is ever expanded.

Nothing weaker than verified TLS is accepted silently: a configuration whose best offer
for a protocol is plaintext is returned with :attr:`Discovered.weaknesses` set, and
callers must refuse it unless the user explicitly allows it. Even then the account is
stored as STARTTLS, which the transport enforces before LOGIN — a password is never sent
over plaintext. :attr:`AutoconfigSources.resolve` maps host names to other addresses
(like ``curl --resolve``) while TLS still checks the real name; tests use it to reach a
local server.
"""

from __future__ import annotations

import functools
import http.client
import re
import socket
import ssl
import urllib.parse
import xml.etree.ElementTree as ET  # parsed only after DTDs are refused (_parse)
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from client.errors import TransportError
from client.transport.dns import DnsError, DnsResolver
from client.transport.tls import client_context
from keystore.https import ResolvingHTTPSConnection

__all__ = [
    "AutoconfigError",
    "AutoconfigSources",
    "Discovered",
    "ServerSetting",
    "autoconfig_urls",
    "base_domain",
    "discover",
    "parse_config",
]

Security = Literal["tls", "starttls", "plain"]
MAX_BYTES = 64 * 1024
_HOST = re.compile(
    r"(?=.{1,253}\Z)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?",
    re.I,
)
_DTD = re.compile(rb"<!(?!--|\[CDATA\[)")
_SOCKET = {"ssl": "tls", "tls": "tls", "starttls": "starttls", "plain": "plain"}
_RANK = {"tls": 0, "starttls": 1, "plain": 2}


class AutoconfigError(TransportError):
    """No usable configuration was found (every source failed or was refused)."""


@dataclass(frozen=True)
class ServerSetting:
    protocol: Literal["imap", "smtp"]
    host: str
    port: int
    security: Security
    username: str

    @property
    def weak(self) -> bool:
        return self.security == "plain"

    def to_json(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "security": self.security,
            "username": self.username,
        }


@dataclass(frozen=True)
class Discovered:
    email: str
    imap: ServerSetting
    smtp: ServerSetting
    source: str  # the URL, or "well-known host names"
    tried: tuple[str, ...] = ()  # what failed before, with the reason
    via_mx: str = ""  # "MX host -> base domain" when found through the domain's MX

    @property
    def weaknesses(self) -> tuple[str, ...]:
        return tuple(
            f"{s.protocol} server {s.host}:{s.port} is offered only without TLS"
            for s in (self.imap, self.smtp)
            if s.weak
        )

    def to_json(self) -> dict[str, object]:
        return {
            "email": self.email,
            "source": self.source,
            "imap": self.imap.to_json(),
            "smtp": self.smtp.to_json(),
            "weaknesses": list(self.weaknesses),
            "tried": list(self.tried),
            "via_mx": self.via_mx or None,
        }


@dataclass(frozen=True)
class AutoconfigSources:
    """Where and how to look; the defaults are the real Internet."""

    ca_file: str | None = None
    https_port: int = 443
    resolve: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    probe_resolve: Mapping[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    timeout: float = 10.0
    max_bytes: int = MAX_BYTES
    probe: bool = True
    dns: DnsResolver | None = field(default_factory=DnsResolver)  # None: no MX step


def _split(email: str) -> tuple[str, str]:
    local, sep, domain = email.rpartition("@")
    domain = domain.strip().lower().rstrip(".")
    if not sep or not local or not _HOST.fullmatch(domain) or "." not in domain:
        raise AutoconfigError(f"{email!r} is not an address with a domain")
    return local, domain


def autoconfig_urls(email: str, domain: str | None = None) -> list[tuple[str, str]]:
    """(host, path) of the autoconfig documents for ``email`` (on ``domain``), in order."""
    if domain is None:
        _local, domain = _split(email)
    query = urllib.parse.urlencode({"emailaddress": email})
    return [
        (f"autoconfig.{domain}", f"/mail/config-v1.1.xml?{query}"),
        (domain, "/.well-known/autoconfig/mail/config-v1.1.xml"),
    ]


def _fetch(host: str, path: str, sources: AutoconfigSources) -> bytes:
    address = sources.resolve.get(host, (host, sources.https_port))
    conn = ResolvingHTTPSConnection(
        host,
        address[1],
        address=address,
        timeout=sources.timeout,
        ctx=client_context(sources.ca_file),
    )
    try:
        conn.request("GET", path, headers={"Accept": "application/xml, text/xml"})
        resp = conn.getresponse()
        if resp.status != 200:  # redirects included: they are not followed
            raise AutoconfigError(f"HTTP {resp.status}")
        length = resp.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > sources.max_bytes:
            raise AutoconfigError(f"{length} bytes announced, more than {sources.max_bytes} bytes")
        body = resp.read(sources.max_bytes + 1)
        if len(body) > sources.max_bytes:
            raise AutoconfigError(f"more than {sources.max_bytes} bytes")
        return body
    except ssl.SSLCertVerificationError as exc:
        raise AutoconfigError(f"certificate not valid: {exc.verify_message}") from exc
    except ssl.SSLError as exc:
        raise AutoconfigError(f"TLS failed: {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise AutoconfigError(f"cannot fetch: {exc}") from exc
    finally:
        conn.close()


def _parse(body: bytes) -> ET.Element:
    if _DTD.search(body):
        raise AutoconfigError("the document has a DTD or entity declarations; refused")
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise AutoconfigError("only UTF-8 documents are accepted")
    try:
        return ET.fromstring(body)  # noqa: S314 - DTDs refused above: no entity is expanded
    except ET.ParseError as exc:
        raise AutoconfigError(f"not well-formed XML: {exc}") from exc


def _text(el: ET.Element, name: str) -> str:
    child = el.find(name)
    return (child.text or "").strip() if child is not None else ""


def _username(template: str, email: str) -> str:
    local, domain = _split(email)
    if not template:
        return email
    return (
        template.replace("%EMAILADDRESS%", email)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )


def _server(el: ET.Element, protocol: Literal["imap", "smtp"], email: str) -> ServerSetting | None:
    host = _text(el, "hostname").lower().rstrip(".")
    port = _text(el, "port")
    sock = _SOCKET.get(_text(el, "socketType").lower())
    if not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if sock is None:
        return None
    return ServerSetting(protocol, host, int(port), sock, _username(_text(el, "username"), email))  # type: ignore[arg-type]


def parse_config(body: bytes, email: str, source: str = "") -> Discovered:
    """The best IMAP and SMTP offer of a Thunderbird ``config-v1.1.xml`` document."""
    root = _parse(body)
    if root.tag != "clientConfig":
        raise AutoconfigError("not a clientConfig document")
    provider = root.find("emailProvider")
    if provider is None:
        raise AutoconfigError("no emailProvider in the document")
    best: dict[str, ServerSetting] = {}
    for tag, kind in (("incomingServer", "imap"), ("outgoingServer", "smtp")):
        for el in provider.findall(tag):
            if (el.get("type") or "").lower() != kind:
                continue
            s = _server(el, kind, email)  # type: ignore[arg-type]
            if s is not None and (
                kind not in best or _RANK[s.security] < _RANK[best[kind].security]
            ):
                best[kind] = s
    if "imap" not in best or "smtp" not in best:
        raise AutoconfigError("the document offers no usable IMAP and SMTP server")
    return Discovered(email, best["imap"], best["smtp"], source)


def _probe(host: str, port: int, security: Security, sources: AutoconfigSources) -> None:
    """A verified TLS handshake with ``host:port`` (STARTTLS for submission on 587)."""
    address = sources.probe_resolve.get((host, port), (host, port))
    ctx = client_context(sources.ca_file)
    try:
        with socket.create_connection(address, sources.timeout) as sock:
            if security == "starttls":
                f = sock.makefile("rb")
                if not f.readline(1024).startswith(b"220"):
                    raise AutoconfigError("no SMTP greeting")
                sock.sendall(b"EHLO sealmail.invalid\r\n")
                lines = []
                while True:
                    line = f.readline(1024)
                    lines.append(line)
                    if len(line) < 4 or line[3:4] != b"-":
                        break
                if not any(x[4:].upper().startswith(b"STARTTLS") for x in lines):
                    raise AutoconfigError("STARTTLS not offered")
                sock.sendall(b"STARTTLS\r\n")
                if not f.readline(1024).startswith(b"220"):
                    raise AutoconfigError("STARTTLS refused")
            with ctx.wrap_socket(sock, server_hostname=host):
                pass
    except ssl.SSLCertVerificationError as exc:
        raise AutoconfigError(f"certificate not valid: {exc.verify_message}") from exc
    except ssl.SSLError as exc:
        raise AutoconfigError(f"TLS failed: {exc.reason}") from exc
    except OSError as exc:
        raise AutoconfigError(f"cannot connect: {exc.strerror or exc}") from exc


def _well_known(email: str, sources: AutoconfigSources, tried: list[str]) -> Discovered | None:
    _local, domain = _split(email)
    found: dict[str, ServerSetting] = {}
    candidates: list[tuple[Literal["imap", "smtp"], str, int, Security]] = [
        ("imap", f"imap.{domain}", 993, "tls"),
        ("imap", f"mail.{domain}", 993, "tls"),
        ("smtp", f"smtp.{domain}", 465, "tls"),
        ("smtp", f"smtp.{domain}", 587, "starttls"),
        ("smtp", f"mail.{domain}", 465, "tls"),
        ("smtp", f"mail.{domain}", 587, "starttls"),
    ]
    for proto, host, port, sec in candidates:
        if proto in found:
            continue
        try:
            _probe(host, port, sec, sources)
        except AutoconfigError as exc:
            tried.append(f"{host}:{port}: {exc}")
            continue
        found[proto] = ServerSetting(proto, host, port, sec, email)
    if "imap" in found and "smtp" in found:
        return Discovered(email, found["imap"], found["smtp"], "well-known host names")
    return None


def base_domain(host: str) -> str | None:
    """The registrable domain of ``host`` (Public Suffix List), or None for a suffix."""
    base = _psl().privatesuffix(host.lower().rstrip("."))
    return str(base) if base else None


@functools.cache
def _psl() -> Any:
    from publicsuffixlist import PublicSuffixList  # ships its own copy of the list: offline

    return PublicSuffixList()


def mx_base_domain(domain: str, sources: AutoconfigSources, tried: list[str]) -> tuple[str, str]:
    """(best MX host, its base domain) when that differs from ``domain``, else ("", "")."""
    if sources.dns is None:
        return "", ""
    try:
        records = sources.dns.mx(domain)
    except DnsError as exc:
        tried.append(f"MX {domain}: {exc}")
        return "", ""
    if not records:
        tried.append(f"MX {domain}: none")
        return "", ""
    host = records[0][1]
    base = base_domain(host) if _HOST.fullmatch(host) else None
    if base is None or base == domain:
        tried.append(f"MX {domain}: {host} is not in another registrable domain")
        return "", ""
    return host, base


def _documents(
    email: str, domain: str, sources: AutoconfigSources, tried: list[str]
) -> Discovered | None:
    for host, path in autoconfig_urls(email, domain):
        url = f"https://{host}{path}"
        try:
            found = parse_config(_fetch(host, path, sources), email, url)
        except AutoconfigError as exc:
            tried.append(f"{url}: {exc}")
            continue
        return Discovered(found.email, found.imap, found.smtp, url, tuple(tried))
    return None


def discover(email: str, sources: AutoconfigSources | None = None) -> Discovered:
    """The first configuration found for ``email``; :class:`AutoconfigError` if none."""
    sources = sources or AutoconfigSources()
    tried: list[str] = []
    _local, domain = _split(email)
    found_doc = _documents(email, domain, sources, tried)
    if found_doc is not None:
        return found_doc
    mx_host, base = mx_base_domain(domain, sources, tried)
    if base:
        found_doc = _documents(email, base, sources, tried)
        if found_doc is not None:
            return replace(found_doc, via_mx=f"{mx_host} -> {base}")
    if sources.probe:
        found_wk = _well_known(email, sources, tried)
        if found_wk is not None:
            return Discovered(
                found_wk.email, found_wk.imap, found_wk.smtp, found_wk.source, tuple(tried)
            )
    raise AutoconfigError(
        f"no configuration found for {email}: " + "; ".join(tried),
        hint="Give the servers with --imap HOST:PORT --smtp HOST:PORT.",
    )
