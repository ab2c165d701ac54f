"""Embedded mail servers on loopback: Dovecot (IMAP + LMTP), a submission server, a CA.

Used by the test suite (``tests/servers`` re-exports these modules) and by the desktop
app's demo mode (``sealmail-gui --demo``), never by normal operation. Needs the
``dovecot`` binaries (``dovecot-imapd dovecot-lmtpd``) and the ``aiosmtpd`` package;
:func:`available` says whether both are there without starting anything.
"""

from __future__ import annotations

__all__ = ["available"]


def available() -> str | None:
    """``None`` when the rig can start here, else why not (in plain words)."""
    import importlib.util

    from client.devrig.dovecot import INSTALL_HINT, DovecotMissing, _find_dovecot

    try:
        _find_dovecot()
    except DovecotMissing:
        return INSTALL_HINT
    if importlib.util.find_spec("aiosmtpd") is None:
        return "the aiosmtpd package is missing (pip install aiosmtpd)"
    return None
