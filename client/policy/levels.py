"""Protection levels, ordered from weakest to strongest.

Theory of operation
-------------------
A :class:`Level` is what a message (or one copy of it) must get before it leaves:

``tls`` < ``tls-required`` < ``signed`` < ``encrypted`` < ``encrypted+signed``

* ``tls`` — verified TLS to the user's own submission server; the floor for everything.
* ``tls-required`` — TLS on every hop (REQUIRETLS, RFC 8689) or a partner domain on the
  organisation's verified-TLS list; otherwise the planner escalates to ``encrypted``.
* ``signed`` — an S/MIME or OpenPGP signature (integrity and origin, no confidentiality).
* ``encrypted`` — end to end: S/MIME, OpenPGP, or a password envelope.
* ``encrypted+signed`` — both.

Levels only ever go up: :meth:`Level.raise_to` is ``max``. Users may raise, never lower
below what the organisation policy or the content demands.
"""

from __future__ import annotations

import enum

from client.policy.errors import InvalidLevel

__all__ = ["Level"]


class Level(enum.Enum):
    TLS = "tls"
    TLS_REQUIRED = "tls-required"
    SIGNED = "signed"
    ENCRYPTED = "encrypted"
    ENCRYPTED_SIGNED = "encrypted+signed"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, text: str) -> Level:
        try:
            return cls(text.strip().lower())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise InvalidLevel(f"unknown protection level {text!r} (one of: {choices})") from None

    @property
    def encrypts(self) -> bool:
        return self in (Level.ENCRYPTED, Level.ENCRYPTED_SIGNED)

    @property
    def signs(self) -> bool:
        return self in (Level.SIGNED, Level.ENCRYPTED_SIGNED)

    @property
    def end_to_end(self) -> bool:
        """Protected by us (a signature or encryption), not only by the transport."""
        return self.rank >= Level.SIGNED.rank

    def at_least(self, other: Level) -> bool:
        return self.rank >= other.rank

    def raise_to(self, other: Level) -> Level:
        """The stronger of the two (levels never go down)."""
        return other if other.rank > self.rank else self

    def with_signature(self) -> Level:
        if self is Level.ENCRYPTED:
            return Level.ENCRYPTED_SIGNED
        return self.raise_to(Level.SIGNED)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {level: i for i, level in enumerate(Level)}
