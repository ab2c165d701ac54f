"""Real mail servers for tests: Dovecot, an aiosmtpd submission server, hostile servers.

Start here: :mod:`tests.servers.fixtures` (pytest fixtures) and :class:`MailRig`.
"""
