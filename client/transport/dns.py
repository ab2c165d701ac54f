"""DNS look-ups (TXT, MX) through dnspython — a thin shell.

Theory of operation
-------------------
:class:`DnsResolver` asks the system's resolver (``/etc/resolv.conf`` and friends) unless
``nameservers`` is given; tests give a loopback server and port
(:mod:`client.devrig.dnsserver`). Answers are returned as plain data; dnspython's
exceptions are translated once into :class:`DnsError` (``NoDnsAnswer`` when the name or
the record type does not exist, ``DnsTimeout`` when nobody answered). DNSSEC is not
checked: callers treat DNS as a hint and rely on verified TLS for anything that matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from client.errors import TransportError

__all__ = ["DnsError", "DnsResolver", "DnsTimeout", "NoDnsAnswer"]


class DnsError(TransportError):
    """A DNS look-up failed."""

    hint = "Check the network and the system's DNS resolver."
    temporary = True


class NoDnsAnswer(DnsError):
    hint = "The domain publishes no such record; check the spelling of the domain."
    temporary = False


class DnsTimeout(DnsError):
    hint = "No DNS server answered in time; check the network and try again."


@dataclass(frozen=True)
class DnsResolver:
    """Where DNS questions go; the default is the system's resolver."""

    nameservers: Sequence[str] | None = None
    port: int = 53
    timeout: float = 5.0

    def _resolver(self) -> dns.resolver.Resolver:
        if self.nameservers is None:
            r = dns.resolver.Resolver(configure=True)
        else:
            r = dns.resolver.Resolver(configure=False)
            r.nameservers = list(self.nameservers)
            r.port = self.port
        r.lifetime = self.timeout
        r.timeout = self.timeout
        return r

    def _query(self, name: str, rdtype: str) -> dns.resolver.Answer:
        try:
            return self._resolver().resolve(name, rdtype, search=False, raise_on_no_answer=True)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
            raise NoDnsAnswer(f"no {rdtype} record for {name}") from exc
        except dns.exception.Timeout as exc:
            raise DnsTimeout(f"DNS look-up of {name} {rdtype} timed out") from exc
        except dns.resolver.NoNameservers as exc:
            raise DnsError(f"no DNS server could answer for {name} {rdtype}") from exc
        except (dns.exception.DNSException, OSError, ValueError) as exc:
            raise DnsError(f"DNS look-up of {name} {rdtype} failed: {exc}") from exc

    def txt(self, name: str) -> list[str]:
        """Each TXT record of ``name``, its strings joined (RFC 7208 style)."""
        out = []
        for rdata in self._query(name, "TXT"):
            strings: Sequence[bytes] = rdata.strings
            out.append(b"".join(strings).decode("utf-8", "replace"))
        return out

    def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, host) of ``name``'s MX records, best first; a null MX gives []."""
        found = []
        for rdata in self._query(name, "MX"):
            host = rdata.exchange.to_text(omit_final_dot=True).lower()
            if host and host != ".":
                found.append((int(rdata.preference), host))
        return sorted(found)
