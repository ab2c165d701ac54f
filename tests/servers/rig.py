"""Re-export: ``MailRig`` lives in :mod:`client.devrig.rig` (the demo mode starts it too)."""

from client.devrig.rig import DEFAULT_USERS, MailRig

__all__ = ["DEFAULT_USERS", "MailRig"]
