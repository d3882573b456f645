"""PII masking: the one step every row passes before it is rendered as JSON, HTML or CSV.

Customer names, emails, phones, IP addresses and card numbers beyond the last four digits
are masked for every role. A row is shown unmasked only to an actor holding an unexpired
grant for the row's subject (a customer, an API request, an audit entry), which needs a
written reason and is audited (:mod:`api.drilldowns.unmask`). IP addresses become a keyed
hash, so requests from one address can still be told apart without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any


class PiiKind(StrEnum):
    NAME = "name"
    EMAIL = "email"
    PHONE = "phone"
    IP = "ip"
    CARD = "card"
    TEXT = "text"  # free text (bodies, messages) that may carry any of the above


MASK = "***"
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
CARD_RE = re.compile(r"\b(?:\d[ -]?){9,15}(\d{4})\b")
PHONE_RE = re.compile(r"\+\d[\d ()-]{6,18}\d")
IPV4_RE = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")


# Exports repeat the same addresses and messages thousands of times: their masked forms
# are cached (bounded), which is most of what lets an export mask 100 k rows a second.
CACHE = 65_536


@lru_cache(maxsize=CACHE)
def _ip_token(value: str, key: bytes) -> str:
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    return f"ip#{digest[:10]}"


# All of a word but its first letter. The replacement is plain text, with no group to copy,
# so the substitution runs entirely in C (a whole column at a time in exports).
NAME_TAIL = re.compile(r"(?<=[^\s\x00])[^\s\x00]+")
COLUMN_SEPARATOR = "\x00"  # PostgreSQL text cannot hold it: it joins a column safely


def _name(value: str) -> str:
    """Initials: every word keeps its first letter, the rest becomes ***."""
    return NAME_TAIL.sub(MASK, value)


def _names(column: Sequence[Any]) -> list[Any]:
    """:func:`_name` over a whole column in one regular-expression pass."""
    if not column or None in column or not all(isinstance(v, str) for v in column):
        return [None if v is None else _name(str(v)) for v in column]
    joined = NAME_TAIL.sub(MASK, COLUMN_SEPARATOR.join(column))
    return joined.split(COLUMN_SEPARATOR)


def _email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return MASK
    return f"{local[0]}{MASK}@{domain}"


def _phone(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    return MASK + "".join(digits[-2:]) if len(digits) > 4 else MASK


def _card(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    return f"**** {''.join(digits[-4:])}" if len(digits) >= 4 else MASK


_PLAIN = {PiiKind.NAME: _name, PiiKind.EMAIL: _email, PiiKind.PHONE: _phone, PiiKind.CARD: _card}


@lru_cache(maxsize=CACHE)
def scrub_text(value: str, key: bytes) -> str:
    """Free text with every email, card number, phone number and IPv4 address masked."""
    value = EMAIL_RE.sub(lambda m: f"{MASK}@{m.group(1)}", value)
    value = CARD_RE.sub(lambda m: f"**** {m.group(1)}", value)
    value = PHONE_RE.sub(MASK, value)
    return IPV4_RE.sub(lambda m: _ip_token(m.group(0), key), value)


def masking(kind: PiiKind, key: bytes) -> Callable[[Any], Any]:
    """The function that masks one value of this kind (None stays None)."""
    if kind is PiiKind.IP:
        return lambda value: None if value is None else _ip_token(str(value), key)
    if kind is PiiKind.TEXT:
        return lambda value: None if value is None else scrub_text(str(value), key)
    plain = _PLAIN[kind]
    return lambda value: None if value is None else plain(str(value))


def mask_value(kind: PiiKind, value: Any, key: bytes) -> Any:
    return masking(kind, key)(value)


class Masker:
    """Masks the PII columns of rows whose columns are ``names``, except rows whose
    subject column holds an id in ``unmasked``."""

    def __init__(
        self,
        names: Sequence[str],
        pii: Mapping[str, PiiKind],
        subject_column: str | None,
        unmasked: Collection[str],
        key: bytes,
    ) -> None:
        self._targets = [(i, masking(pii[n], key)) for i, n in enumerate(names) if n in pii]
        self._columnar = {i: _names for i, n in enumerate(names) if pii.get(n) is PiiKind.NAME}
        self._subject = names.index(subject_column) if subject_column in names else None
        self._unmasked = frozenset(unmasked)

    def is_unmasked(self, row: Sequence[Any]) -> bool:
        if self._subject is None or not self._unmasked:
            return False
        return str(row[self._subject]) in self._unmasked

    def apply(self, row: Sequence[Any]) -> list[Any]:
        out = list(row)
        if not self._targets or self.is_unmasked(row):
            return out
        for index, mask in self._targets:
            out[index] = mask(out[index])
        return out

    def apply_to_columns(self, rows: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """The same step over a batch, returned as columns: a column at a time is what
        lets an export mask a hundred thousand rows a second."""
        columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
        if not self._targets or not columns:
            return columns
        keep = None
        if self._subject is not None and self._unmasked:
            keep = [str(v) in self._unmasked for v in columns[self._subject]]
        for index, mask in self._targets:
            if keep is None:
                whole = self._columnar.get(index)
                columns[index] = whole(columns[index]) if whole else list(map(mask, columns[index]))
            else:
                columns[index] = [
                    v if k else mask(v) for v, k in zip(columns[index], keep, strict=True)
                ]
        return columns
