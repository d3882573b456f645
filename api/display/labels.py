"""Words for people in place of stored values: card brands by their names, and the badge
each status, outcome and severity is shown in (``badge badge-<value>``; app.css colours
the values by what they mean)."""

from __future__ import annotations

import re

CARD_BRANDS = {
    "amex": "American Express",
    "american_express": "American Express",
    "diners": "Diners Club",
    "discover": "Discover",
    "jcb": "JCB",
    "maestro": "Maestro",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "verve": "Verve",
    "visa": "Visa",
}
_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def card_brand(value: str) -> str:
    """The brand's own name; an unknown brand as stored, never dropped."""
    return CARD_BRANDS.get(value.lower(), value)


def badge_class(value: str) -> str:
    """The CSS classes of a value's badge: ``badge badge-captured``. Stored values are
    short words; anything else is reduced to the characters a class name may hold."""
    slug = _CLASS_UNSAFE.sub("-", value.lower()).strip("-") or "none"
    return f"badge badge-{slug}"


def readable(value: str) -> str:
    """``in_progress`` reads ``in progress``."""
    return value.replace("_", " ")
