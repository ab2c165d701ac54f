"""Re-export: the test CA and server certificates live in :mod:`client.devrig.pki`."""

from client.devrig.pki import HOSTS, CertPair, ServerPki

__all__ = ["HOSTS", "CertPair", "ServerPki"]
