"""MTA-STS at compose time: refresh the recipients' domains off the GUI thread, best effort.

Theory of operation
-------------------
The planner counts a domain as reachable over TLS on every hop (``tls-required``) when its
MTA-STS policy enforces (:func:`client.policy.plan.tls_basis`). The composer asks a
:class:`StsRefresher` — on its own one-thread :class:`ui.workers.Funnel`, so a slow DNS
never delays planning or sending — to look up the domains of the recipients shortly after
they change (:meth:`Session.tls_refresh_recipients`, which stores records and failures and
never raises), then plans again.

It does nothing that cannot matter or cannot work:

* only when the policy can ask for ``tls-required`` at all (its minimum, sensitive or a
  detector's level, or the user's default level) — otherwise no look-up happens;
* never for internal domains (always verified), domains already looked up by this app,
  and, on the real Internet, never for reserved names that no DNS answers (RFC 2606 /
  RFC 6761: ``.test``, ``.example``, ``.invalid``, ``.localhost``, ``example.com`` ...) —
  the demo's domains among them;
* short timeouts (:data:`DNS_TIMEOUT`, :data:`HTTPS_TIMEOUT`); after a DNS time-out or a
  resolver failure (no network: ``DnsError`` other than "no such record") the app stops
  asking for :data:`OFFLINE_PAUSE` seconds, and the other domains of that look-up wait.

Tests inject ``sources`` (a loopback DNS and HTTPS server); then reserved names are looked
up too, since that DNS answers them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from client.policy.levels import Level

if TYPE_CHECKING:
    from client.policy.orgpolicy import OrgPolicy
    from client.services import Session
    from client.transport.tlsknowledge import StsSources

__all__ = ["DNS_TIMEOUT", "HTTPS_TIMEOUT", "OFFLINE_PAUSE", "StsRefresher", "may_need_tls"]

DNS_TIMEOUT = 2.0
HTTPS_TIMEOUT = 4.0
OFFLINE_PAUSE = 300.0
RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost", "local"})
RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})

_lock = threading.Lock()
_looked_up: set[str] = set()  # domains refreshed by this app (records are stored anyway)
_offline_until = 0.0


def reserved(domain: str) -> bool:
    return domain.rsplit(".", 1)[-1] in RESERVED_TLDS or any(
        domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS
    )


def may_need_tls(policy: OrgPolicy, default: Level | None = None) -> bool:
    """Whether any plan under ``policy`` can ask for ``tls-required``."""
    levels = {policy.minimum_level, policy.sensitive_level, default}
    levels.update(rule.level for rule in policy.detectors.values() if rule.enabled)
    return Level.TLS_REQUIRED in levels


class StsRefresher:
    """See the module docstring; :meth:`refresh` runs in a worker thread."""

    def __init__(
        self,
        session: Session,
        *,
        sources: StsSources | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.sources = sources
        self.clock = clock
        # the app's memory of look-ups done (the real Internet), or this refresher's own
        self.looked_up: set[str] = _looked_up if sources is None else set()

    def domains(self, recipients: Sequence[str], policy: OrgPolicy) -> list[str]:
        """The recipient domains worth a look-up now."""
        out: list[str] = []
        with _lock:
            if self.sources is None and self.clock() < _offline_until:
                return []
            for address in recipients:
                if "@" not in address:
                    continue
                domain = address.rsplit("@", 1)[1].strip().lower().rstrip(".")
                if (
                    not domain
                    or domain in out
                    or domain in self.looked_up
                    or policy.is_internal(address)
                    or (self.sources is None and reserved(domain))
                ):
                    continue
                out.append(domain)
        return out

    def refresh(
        self,
        recipients: Sequence[str],
        policy: OrgPolicy,
        *,
        now: datetime,
        default: Level | None = None,
    ) -> list[str]:
        """Look up what is worth it; the domains that now have a stored MTA-STS record."""
        global _offline_until
        from client.policy.mtasts import MtaStsRecord
        from client.transport.dns import DnsError, NoDnsAnswer

        if not may_need_tls(policy, default):
            return []
        sources = self.sources or _internet()
        found: list[str] = []
        for domain in self.domains(recipients, policy):
            result = self.session.tls_refresh_recipients(
                [f"postmaster@{domain}"], sources=sources, now=now
            ).get(domain)
            cause = getattr(result, "__cause__", None)  # the resolver failed or timed out
            offline = isinstance(cause, DnsError) and not isinstance(cause, NoDnsAnswer)
            with _lock:
                if offline and self.sources is None:
                    _offline_until = self.clock() + OFFLINE_PAUSE
                    return found  # no network: the rest would time out too
                if not offline:
                    self.looked_up.add(domain)
            if isinstance(result, MtaStsRecord):
                found.append(domain)
        return found


def _internet() -> StsSources:
    from client.transport.dns import DnsResolver
    from client.transport.tlsknowledge import StsSources

    return StsSources(dns=DnsResolver(timeout=DNS_TIMEOUT), timeout=HTTPS_TIMEOUT)
