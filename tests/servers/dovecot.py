"""Re-export: the Dovecot controller lives in :mod:`client.devrig.dovecot`."""

from client.devrig.dovecot import INSTALL_HINT, Dovecot, DovecotMissing, DovecotUser, free_port

__all__ = ["INSTALL_HINT", "Dovecot", "DovecotMissing", "DovecotUser", "free_port"]
