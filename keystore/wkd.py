"""OpenPGP Web Key Directory lookups (draft-koch-openpgp-webkey-service).

Theory of operation
-------------------
An address ``local@domain`` is looked up at two URLs, in this order:

* *advanced*: ``https://openpgpkey.<domain>/.well-known/openpgpkey/<domain>/hu/<hash>?l=<local>``
* *direct*: ``https://<domain>/.well-known/openpgpkey/hu/<hash>?l=<local>``

where ``<hash>`` is the z-base-32 encoding of the SHA-1 of the *lower-cased* local part
(:func:`wkd_hash`). The advanced method is used when its host exists and answers; any
failure there falls through to the direct method; when both fail, the most telling
error wins (TLS > timeout > too large > network > not published), so a bad
certificate is never hidden behind a 404.

Transport: :mod:`http.client` over TLS verified with the system trust store, or only
the CA file in :class:`WkdSettings` (tests, organisations with an internal CA); a
named timeout on connect and on every read; a size cap on the body; no redirects
are followed (the draft forbids nothing, but a redirect off the domain would defeat
the point); no cookies, no proxies. ``resolve`` maps a host name to ``(ip, port)``
like ``curl --resolve`` (tests run the server on 127.0.0.1, port 0) while the TLS
host name check still uses the real name.

:func:`fetch_wkd` only fetches and checks bytes: the answer must hold an OpenPGP
certificate with a user id for the address (:class:`~keystore.errors.WrongKeyForAddress`
otherwise). Storing it (as ``origin="discovered"``) and the cache are in
:mod:`keystore.discovery`.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from keystore import openpgp as pgp
from keystore.errors import (
    DiscoveryError,
    DiscoveryNetworkError,
    DiscoveryTimeout,
    DiscoveryTlsError,
    InvalidKeyMaterial,
    KeyNotPublished,
    ResponseTooLarge,
    UsageError,
    WrongKeyForAddress,
)
from keystore.https import ResolvingHTTPSConnection

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "WkdAnswer",
    "WkdSettings",
    "fetch_wkd",
    "split_address",
    "wkd_hash",
    "wkd_urls",
    "zbase32",
]

log = logging.getLogger(__name__)

#: Seconds for connecting and for each read from a key directory.
DEFAULT_TIMEOUT = 10.0
#: Largest answer accepted (a key with many signatures stays far below this).
DEFAULT_MAX_BYTES = 256 * 1024
_ZB32 = "ybndrfg8ejkmcpqxot1uwisza345h769"


def zbase32(data: bytes) -> str:
    """z-base-32 (RFC 6189 section 5.1.6 alphabet), no padding."""
    bits = int.from_bytes(data, "big")
    nbits = len(data) * 8
    out = []
    for shift in range(nbits - 5, -5, -5):
        chunk = (bits >> shift) & 31 if shift >= 0 else (bits << -shift) & 31
        out.append(_ZB32[chunk])
    return "".join(out)


def split_address(email: str) -> tuple[str, str]:
    addr = email.strip()
    local, sep, domain = addr.rpartition("@")
    if not sep or not local or not domain or any(c.isspace() or c in "/?#" for c in domain):
        raise UsageError(f"not an email address: {email!r}")
    return local, domain.lower().rstrip(".")


def wkd_hash(local: str) -> str:
    """z-base-32 of SHA-1 of the lower-cased local part (32 characters)."""
    digest = hashlib.sha1(local.lower().encode("utf-8"), usedforsecurity=False).digest()
    return zbase32(digest)


def wkd_urls(email: str) -> list[tuple[str, str, str]]:
    """``(method, host, path)`` for the advanced then the direct method."""
    local, domain = split_address(email)
    h = wkd_hash(local)
    q = quote(local, safe="")
    return [
        ("advanced", f"openpgpkey.{domain}", f"/.well-known/openpgpkey/{domain}/hu/{h}?l={q}"),
        ("direct", domain, f"/.well-known/openpgpkey/hu/{h}?l={q}"),
    ]


@dataclass(frozen=True)
class WkdSettings:
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    ca_file: str | None = None  # None: the system trust store
    port: int = 443
    resolve: Mapping[str, tuple[str, int]] = field(default_factory=dict)

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        if ctx is None:
            ctx = ssl.create_default_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx


@dataclass(frozen=True)
class WkdAnswer:
    """Certificates fetched for an address, already filtered to those naming it."""

    email: str
    method: str  # "advanced" or "direct"
    url: str
    certs: tuple[bytes, ...]  # binary public certificates
    fingerprints: tuple[str, ...]


def _get(host: str, path: str, settings: WkdSettings) -> bytes:
    address = settings.resolve.get(host, (host, settings.port))
    conn = ResolvingHTTPSConnection(
        host,
        address[1],
        address=address,
        timeout=settings.timeout,
        ctx=settings.ssl_context(),
    )
    url = f"https://{host}{path}"
    resp: http.client.HTTPResponse | None = None
    try:
        conn.request("GET", path, headers={"Accept": "application/octet-stream"})
        resp = conn.getresponse()
        if resp.status == 404:
            raise KeyNotPublished(f"no key published at {url}")
        if resp.status != 200:
            raise DiscoveryNetworkError(f"{url} answered HTTP {resp.status}")
        length = resp.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > settings.max_bytes:
            raise ResponseTooLarge(f"{url} announced {length} bytes")
        body = resp.read(settings.max_bytes + 1)
        if len(body) > settings.max_bytes:
            raise ResponseTooLarge(f"{url} sent more than {settings.max_bytes} bytes")
        return body
    except DiscoveryError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise DiscoveryTlsError(
            f"{host}: certificate did not verify ({exc.verify_message})"
        ) from exc
    except ssl.SSLError as exc:
        raise DiscoveryTlsError(f"{host}: TLS failed ({exc.reason})") from exc
    except TimeoutError as exc:
        raise DiscoveryTimeout(f"{host} did not answer within {settings.timeout} s") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DiscoveryNetworkError(f"{host}: {exc}") from exc
    finally:
        if resp is not None:
            resp.close()
        conn.close()


_SEVERITY: tuple[type[DiscoveryError], ...] = (
    DiscoveryTlsError,
    WrongKeyForAddress,
    DiscoveryTimeout,
    ResponseTooLarge,
    DiscoveryNetworkError,
    KeyNotPublished,
)


def _rank(exc: DiscoveryError) -> int:
    for i, cls in enumerate(_SEVERITY):
        if isinstance(exc, cls):
            return i
    return len(_SEVERITY)


def _for_address(email: str, body: bytes, url: str) -> tuple[tuple[bytes, ...], tuple[str, ...]]:
    try:
        materials = pgp.parse_keys(body)
    except InvalidKeyMaterial as exc:
        raise WrongKeyForAddress(f"{url} did not serve an OpenPGP key: {exc}") from exc
    addr = email.strip().lower()
    keep = [m for m in materials if addr in pgp.cert_facts(m.cert).emails]
    if not keep:
        raise WrongKeyForAddress(f"wrong key for address: {url} served no key for {addr}")
    return (
        tuple(bytes(m.cert) for m in keep),
        tuple(m.fingerprint.upper() for m in keep),
    )


def fetch_wkd(email: str, settings: WkdSettings | None = None) -> WkdAnswer:
    """Look ``email`` up (advanced, then direct); raises a :class:`DiscoveryError`."""
    settings = settings or WkdSettings()
    errors: list[DiscoveryError] = []
    for method, host, path in wkd_urls(email):
        url = f"https://{host}{path}"
        try:
            body = _get(host, path, settings)
            certs, fprs = _for_address(email, body, url)
        except DiscoveryError as exc:
            log.info("WKD %s lookup failed: %s", method, exc)
            errors.append(exc)
            continue
        return WkdAnswer(email.strip().lower(), method, url, certs, fprs)
    raise min(errors, key=_rank)
