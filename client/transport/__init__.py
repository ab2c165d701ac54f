"""IMAP and SMTP transport, accounts, autoconfig, sync and the durable outbox.

The I/O shells (:mod:`.tls`, :mod:`.imap`, :mod:`.smtp`) talk to the network; the state
machines (:mod:`.outbox_state`, :mod:`.sync`) are sans-I/O tables.
"""

__all__: list[str] = []
