"""Large attachments in messages built with the ``email`` package, without its slow paths.

Theory of operation
-------------------
``EmailMessage.as_bytes`` runs the stdlib generator over every body: for a 25 MB
attachment it splits a 33 MB base64 string into lines with one regex call and searches it
for the boundary with another (each held the GIL 200-400 ms, freezing the app while it
sent: issue 8), and base64-encodes in 57-octet steps. :class:`Bulk` attaches a short
*stand-in* body instead, lets the generator write the (now small) message, and splices the
real base64 lines in place of the stand-in's single line — in ~1 MiB windows
(:func:`client.mime.raw.b64_pieces`). The bytes are the same as the generator's: base64
never contains ``-``, so the boundary the generator picked cannot collide with the real
bodies (tests/unit/test_bulk.py compares both).
"""

from __future__ import annotations

import base64
import hashlib
from email.message import EmailMessage
from email.policy import Policy

from client.mime.raw import b64_pieces

__all__ = ["Bulk"]


class Bulk:
    """Attachments whose base64 is written after the generator has run."""

    def __init__(self) -> None:
        self._stand_ins: list[tuple[bytes, bytes]] = []  # (stand-in line, real data)

    def add_attachment(
        self, msg: EmailMessage, data: bytes, *, maintype: str, subtype: str, filename: str
    ) -> None:
        """``msg.add_attachment(data, ...)`` (base64), with the body written later."""
        n = len(self._stand_ins)
        stand_in = b"sealmail-bulk-%d-" % n + hashlib.sha256(data).digest()[:24]
        msg.add_attachment(
            stand_in, maintype=maintype, subtype=subtype, filename=filename, cte="base64"
        )
        self._stand_ins.append((base64.b64encode(stand_in), data))

    def as_bytes(self, msg: EmailMessage, policy: Policy | None = None) -> bytes:
        """The message as ``msg.as_bytes(policy=policy)`` writes it, real bodies in place."""
        policy = policy or msg.policy
        linesep = policy.linesep.encode("ascii")
        out = msg.as_bytes(policy=policy)
        pieces: list[bytes] = []
        pos = 0
        for line, data in self._stand_ins:
            marker = linesep + line + linesep
            at = out.find(marker, pos)
            if at < 0:
                raise AssertionError("the generator did not write a stand-in body")
            pieces.append(out[pos : at + len(linesep)])
            pieces.extend(b64_pieces(data, linesep))
            pos = at + len(marker)
        pieces.append(out[pos:])
        return b"".join(pieces)
