"""Re-export: the submission server lives in :mod:`client.devrig.submission`."""

from client.devrig.submission import Accepted, Submission, dovecot_auth

__all__ = ["Accepted", "Submission", "dovecot_auth"]
