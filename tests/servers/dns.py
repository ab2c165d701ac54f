"""Re-export: the loopback DNS server lives in :mod:`client.devrig.dnsserver`."""

from client.devrig.dnsserver import DnsServer

__all__ = ["DnsServer"]
