"""Fetching a domain's MTA-STS policy (RFC 8461) — the I/O half of :mod:`client.policy.mtasts`.

Theory of operation
-------------------
:func:`fetch_mta_sts` asks DNS for the ``_mta-sts.DOMAIN`` TXT record (through an injected
:class:`~client.transport.dns.DnsResolver`), then GETs
``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` over verified TLS 1.2+ only
(:func:`client.transport.tls.client_context`, host name checked), with a timeout, without
following redirects, requiring HTTP 200 and ``Content-Type: text/plain`` and reading at
most 64 KiB. Both answers are parsed by the sans-I/O module and turned into an
:class:`~client.policy.mtasts.MtaStsRecord` stamped ``now``.

:func:`refresh_mta_sts` applies RFC 8461 §5.1: when the TXT id equals the id of a stored,
unexpired record, the stored record is kept (no HTTPS fetch); otherwise the policy is
fetched again. A failure never removes a valid stored record — the caller keeps using it
until it expires. ``resolve`` maps host names to other addresses while TLS still checks
the real name (like ``curl --resolve``); tests use it to reach a loopback server.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from client.policy.mtasts import (
    MAX_POLICY_BYTES,
    MtaStsRecord,
    NoStsRecord,
    StsFetchFailed,
    StsTimeout,
    StsTlsFailed,
    StsTooLarge,
    parse_sts_policy,
    parse_sts_txt,
)
from client.transport.dns import DnsError, DnsResolver, DnsTimeout, NoDnsAnswer
from client.transport.tls import client_context
from keystore.https import ResolvingHTTPSConnection

__all__ = ["StsSources", "fetch_mta_sts", "policy_url", "refresh_mta_sts"]

POLICY_PATH = "/.well-known/mta-sts.txt"


@dataclass(frozen=True)
class StsSources:
    """Where and how to look; the defaults are the real Internet."""

    dns: DnsResolver = field(default_factory=DnsResolver)
    ca_file: str | None = None
    https_port: int = 443
    resolve: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    timeout: float = 10.0


def policy_url(domain: str) -> str:
    return f"https://mta-sts.{domain}{POLICY_PATH}"


def sts_id(domain: str, sources: StsSources) -> str:
    """The policy id published in ``_mta-sts.DOMAIN`` (typed errors if none)."""
    name = f"_mta-sts.{domain}"
    try:
        records = sources.dns.txt(name)
    except NoDnsAnswer as exc:
        raise NoStsRecord(f"{name} has no TXT record") from exc
    except DnsTimeout as exc:
        raise StsTimeout(str(exc)) from exc
    except DnsError as exc:  # the resolver failed
        raise StsFetchFailed(f"DNS look-up of {name} failed: {exc}") from exc
    return parse_sts_txt(records, domain)


def _read_policy(resp: http.client.HTTPResponse, url: str) -> bytes:
    if resp.status != 200:  # redirects included: RFC 8461 §3.3 forbids following them
        raise StsFetchFailed(f"{url}: HTTP {resp.status} (200 required, no redirects)")
    ctype = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "text/plain":
        raise StsFetchFailed(f"{url}: Content-Type {ctype or 'missing'} (text/plain required)")
    length = resp.getheader("Content-Length")
    if length is not None and length.isdigit() and int(length) > MAX_POLICY_BYTES:
        raise StsTooLarge(f"{url}: {length} bytes announced, more than {MAX_POLICY_BYTES}")
    body = resp.read(MAX_POLICY_BYTES + 1)
    if len(body) > MAX_POLICY_BYTES:
        raise StsTooLarge(f"{url}: more than {MAX_POLICY_BYTES} bytes")
    return body


def _get_policy(domain: str, sources: StsSources) -> bytes:
    host = f"mta-sts.{domain}"
    address = sources.resolve.get(host, (host, sources.https_port))
    conn = ResolvingHTTPSConnection(
        host,
        address[1],
        address=address,
        timeout=sources.timeout,
        ctx=client_context(sources.ca_file),
    )
    url = policy_url(domain)
    try:
        conn.request("GET", POLICY_PATH, headers={"Accept": "text/plain"})
        with conn.getresponse() as resp:
            return _read_policy(resp, url)
    except ssl.SSLCertVerificationError as exc:
        raise StsTlsFailed(f"{url}: certificate not valid: {exc.verify_message}") from exc
    except ssl.SSLError as exc:
        raise StsTlsFailed(f"{url}: TLS failed: {exc.reason}") from exc
    except TimeoutError as exc:
        raise StsTimeout(f"{url}: timed out after {sources.timeout:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise StsFetchFailed(f"{url}: cannot fetch: {exc}") from exc
    finally:
        conn.close()


def fetch_mta_sts(domain: str, sources: StsSources, *, now: datetime) -> MtaStsRecord:
    """TXT id, then the policy over verified HTTPS; the record as seen ``now``."""
    domain = domain.strip().lower().rstrip(".")
    ident = sts_id(domain, sources)
    policy = parse_sts_policy(_get_policy(domain, sources))
    return MtaStsRecord.from_policy(domain, ident, policy, now)


def refresh_mta_sts(
    domain: str,
    stored: MtaStsRecord | None,
    sources: StsSources,
    *,
    now: datetime,
    force: bool = False,
) -> MtaStsRecord:
    """The record to keep: ``stored`` if its id is still published and it is unexpired."""
    domain = domain.strip().lower().rstrip(".")
    if stored is not None and not force and stored.valid(now):
        if sts_id(domain, sources) == stored.policy_id:
            return stored
    return fetch_mta_sts(domain, sources, now=now)
