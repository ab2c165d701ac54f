"""Checksum and number-range checks for the scanner's candidates (ASCII digit strings).

Theory of operation
-------------------
The checks are python-stdnum's (``stdnum.us.ssn``, ``stdnum.us.rtn``, ``stdnum.luhn``) plus
the card networks' IIN ranges and the Federal Reserve routing prefixes. python-stdnum's own
``is_valid`` cleans its input and raises and catches exceptions, which costs more than the
checks themselves; the scanner calls these thousands of times per megabyte, on strings it
already knows are ASCII digits, so they are inlined here and held to python-stdnum's
``is_valid`` by ``tests/unit/test_scan_validators.py`` (edge cases and random digits).
"""

from __future__ import annotations

from stdnum.us import ssn as us_ssn

__all__ = ["card_brand_ok", "luhn_ok", "rtn_ok", "ssn_ok"]


def card_brand_ok(d: str) -> bool:
    """Whether a card number's length fits its network (by IIN range)."""
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    two, four, three, six = int(d[:2]), int(d[:4]), int(d[:3]), int(d[:6])
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16
    if two in (34, 37):
        return n == 15
    if four == 6011 or two == 65 or 644 <= three <= 649 or 622126 <= six <= 622925:
        return 16 <= n <= 19
    if 300 <= three <= 305 or two in (36, 38, 39) or four == 3095:
        return 14 <= n <= 19
    if 3528 <= four <= 3589:
        return 16 <= n <= 19
    if two == 62 or two == 81:  # UnionPay
        return 16 <= n <= 19
    if two in (50, 56, 57, 58, 63, 67):  # Maestro
        return 12 <= n <= 19
    return False


# python-stdnum's SSN rules (stdnum.us.ssn.validate), for 9 ASCII digits; its list of
# known-invalid numbers is read from it. ``ssn_ok``, ``rtn_ok`` and ``luhn_ok`` equal
# python-stdnum's ``is_valid`` on every string of ASCII digits they are given here
# (tests/unit/test_scan_validators.py); they skip its cleaning and exceptions, which cost
# more than the checks themselves.
_SSN_BAD = frozenset(x.replace("-", "") for x in us_ssn._ssn_blacklist)


def ssn_ok(d: str) -> bool:
    """stdnum.us.ssn.is_valid for 9 ASCII digits."""
    return not (
        d[3:5] == "00" or d[5:] == "0000" or d[0] == "9" or d[:3] in ("000", "666") or d in _SSN_BAD
    )


def rtn_ok(d: str) -> bool:
    """A Federal Reserve prefix and stdnum.us.rtn.is_valid, for 9 ASCII digits."""
    two = int(d[:2])
    if not (two <= 12 or 21 <= two <= 32 or 61 <= two <= 72 or two == 80):
        return False
    # stdnum.us.rtn: the check digit is (7, 3, 9 weights) % 10; on ASCII codes ("0" is 48)
    # that is (total - 48 * 48) % 10 == b[8] - 48
    b = d.encode("ascii")
    total = 7 * (b[0] + b[3] + b[6]) + 3 * (b[1] + b[4] + b[7]) + 9 * (b[2] + b[5])
    return (total - b[8] - 2256) % 10 == 0


_LUHN_DOUBLE = str.maketrans("0123456789", "0246813579")  # 2 * digit, digits summed


def luhn_ok(d: str) -> bool:
    """stdnum.luhn.is_valid for ASCII digits (sum(bytes) is sum(digits) + 48 * len)."""
    total = sum(d[-1::-2].encode("ascii")) + sum(d[-2::-2].translate(_LUHN_DOUBLE).encode("ascii"))
    return (total - 48 * len(d)) % 10 == 0
