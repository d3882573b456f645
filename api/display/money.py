"""Money for people: integer minor units shown in the currency's own decimals.

``€169.28``, ``¥1,500``, ``87,750.00 NGN``, ``1.500 KWD``: a symbol before the amount
where one symbol names one currency, the ISO code after it otherwise. A currency without a
known exponent shows its minor units as they are, with the code, so nothing is guessed.
"""

from __future__ import annotations

from core import currencies

# Symbols that name one currency only (the dollar and the yuan's ¥ do not: they get codes).
SYMBOLS = {"EUR": "€", "GBP": "£", "JPY": "¥", "USD": "$"}


def amount(minor: int, exponent: int) -> str:
    """``minor`` units as a decimal with ``exponent`` places and thousands separators."""
    whole, fraction = divmod(abs(minor), 10**exponent)
    sign = "-" if minor < 0 else ""
    text = f"{sign}{whole:,}"
    return f"{text}.{fraction:0{exponent}d}" if exponent else text


def format_money(minor: int, code: str | None) -> str:
    """An amount in minor units of ``code`` as people read it."""
    exponent = currencies.exponent(code) if code else None
    if code is None or exponent is None:
        return f"{minor} {code or '(no currency)'} (minor units)"
    code = code.upper()
    symbol = SYMBOLS.get(code)
    if symbol is None:
        return f"{amount(minor, exponent)} {code}"
    shown = amount(abs(minor), exponent)
    return f"-{symbol}{shown}" if minor < 0 else f"{symbol}{shown}"
