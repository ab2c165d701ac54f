"""Speakable passwords for envelopes.

Theory of operation
-------------------
A password is four pronounceable five-letter words of the form consonant-vowel-consonant-
vowel-consonant (``bazok-tifum-ruveg-nodal``), chosen uniformly with the caller's ``rng``
by rejection sampling: 16 consonants x 5 vowels gives 16*5*16*5*16 = 102,400 words,
16.64 bits each, so four words carry 66.4 bits. The words are easy to read out by phone
and to type; the page and Sealmail ignore surrounding spaces but not case, and every
generated password is lower case.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from client.errors import UsageError

__all__ = ["CONSONANTS", "VOWELS", "WORDS", "entropy_bits", "generate"]

CONSONANTS = "bdfghjklmnprstvz"
VOWELS = "aeiou"
WORDS = 4
_PATTERN = (CONSONANTS, VOWELS, CONSONANTS, VOWELS, CONSONANTS)


def _choice(alphabet: str, rng: Callable[[int], bytes]) -> str:
    n = len(alphabet)
    limit = 256 - 256 % n
    for _ in range(1000):
        b = rng(1)
        if len(b) != 1:
            raise UsageError("rng returned the wrong number of octets")
        if b[0] < limit:
            return alphabet[b[0] % n]
    raise UsageError("rng does not look random")


def entropy_bits(words: int = WORDS) -> float:
    per_word = sum(math.log2(len(a)) for a in _PATTERN)
    return words * per_word


def generate(rng: Callable[[int], bytes], *, words: int = WORDS) -> str:
    """A new speakable password (``words`` x 16.6 bits; at least 4 words)."""
    if words < 4:
        raise UsageError("a password needs at least 4 words (66 bits)")
    return "-".join("".join(_choice(a, rng) for a in _PATTERN) for _ in range(words))
