"""ISO 4217 minor units: how many decimal places each currency's ``*_cents`` amounts carry.

The platform stores money as integers in the currency's minor unit (``amount_cents``): 16928
EUR cents are €169.28, 1500 JPY are ¥1,500 (the yen has no minor unit), 1500 KWD fils are
1.500 KWD. The one table of exponents is ISO's own list, as the ``iso4217`` package ships
it; a code that list does not know, or one without minor units (gold, SDR, "no currency"),
has no exponent, and whoever shows the amount must not guess one.
"""

from __future__ import annotations

from functools import cache

from iso4217 import Currency


@cache
def exponent(code: str) -> int | None:
    """The number of decimal places of ``code``'s minor unit, or None when ISO 4217 gives
    none (an unknown code, a metal, a fund without minor units)."""
    try:
        return Currency(code.upper()).exponent
    except ValueError:
        return None
