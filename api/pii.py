"""PII masking: the one step every row passes before it is rendered as JSON, HTML or CSV.

Customer names, emails, phones, IP addresses and card numbers beyond the last four digits
are masked for every role. A row is shown unmasked only to an actor holding an unexpired
grant for the row's subject (a customer, an API request, a webhook), which needs a
written reason and is audited (:mod:`api.drilldowns.unmask`). IP addresses and end-user
ids become a keyed hash, so requests from one address or user can still be told apart
without revealing them.

Free text (bodies, headers, paths, stack traces, messages) is scrubbed of what looks like
PII wherever it stands, and of the values of JSON fields known to hold a name or a phone.
Every pattern runs in linear time: each either matches a bounded length, or may only start
where a run of its characters starts (a look-behind), so a long adversarial text costs one
pass. Texts larger than ``api.pii_off_loop_chars`` are masked in a worker thread
(:func:`mask_rows`), never on the event loop.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Any

import anyio

from core.keyed_hash import keyed_digest


class PiiKind(StrEnum):
    NAME = "name"
    EMAIL = "email"
    PHONE = "phone"
    IP = "ip"
    CARD = "card"
    IDENTIFIER = "identifier"  # an end user's id: a keyed hash, like an address
    TEXT = "text"  # free text (bodies, messages) that may carry any of the above


MASK = "***"
# JSON fields whose value is a person's name or phone, whatever it looks like.
NAME_KEYS = (
    "name",
    "first_name",
    "last_name",
    "full_name",
    "given_name",
    "family_name",
    "customer_name",
    "billing_name",
    "cardholder_name",
    "card_holder_name",
    "holder_name",
    "account_name",
    "account_holder_name",
)
PHONE_KEYS = ("phone", "phone_number", "mobile", "mobile_number", "telephone", "tel")
# "key": "value" (escapes included) or "key": 12345; the alternatives of a string value
# are disjoint, so the value is read once.
KEYED_RE = re.compile(
    r'("(?:' + "|".join(NAME_KEYS + PHONE_KEYS) + r')"\s{0,8}:\s{0,8})'
    r'(?:"(?:[^"\\]|\\.)*"|\+?\d[\d ()-]{0,30})',
    re.IGNORECASE,
)
LOCAL_PART = "A-Za-z0-9._%+-"
# Starts only where a run of local-part characters starts; "%40" is an encoded "@" (paths).
EMAIL_RE = re.compile(
    rf"(?<![{LOCAL_PART}])[{LOCAL_PART}]+(?:@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{{2,}})"
)
CARD_RE = re.compile(r"\b(?:\d[ -]?){9,15}(\d{4})\b")
PHONE_RE = re.compile(r"\+\d[\d ()-]{6,18}\d")
# Without "+": area code and number with at least one separator (a bare run of digits is
# as likely a timestamp or an amount; JSON phone fields are caught by KEYED_RE).
LOCAL_PHONE_RE = re.compile(r"(?<![\w+#.:/-])\(?\d{2,5}\)?[ .-]\d{3,4}[ .-]?\d{3,4}(?![\w.])")
IPV4_RE = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
# A candidate of bounded length, checked by ipaddress (times like 12:30:45 are not).
IPV6_RE = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")


# Exports repeat the same addresses and messages thousands of times: their masked forms
# are cached (bounded), which is most of what lets an export mask 100 k rows a second.
CACHE = 65_536
CACHED_TEXT_CHARS = 2_048  # longer texts are masked afresh: the cache holds no bodies


@lru_cache(maxsize=CACHE)
def _token(prefix: str, value: str, key: bytes) -> str:
    return f"{prefix}#{keyed_digest(key, value)}"


def _ip_token(value: str, key: bytes) -> str:
    return _token("ip", value, key)


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


def _ipv6(match: re.Match[str], key: bytes) -> str:
    candidate = match.group(0)
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return candidate
    return _ip_token(candidate, key)


def _scrub(value: str, key: bytes) -> str:
    value = KEYED_RE.sub(lambda m: f'{m.group(1)}"{MASK}"', value)
    value = EMAIL_RE.sub(lambda m: f"{MASK}@{m.group(1)}", value)
    value = CARD_RE.sub(lambda m: f"**** {m.group(1)}", value)
    value = IPV4_RE.sub(lambda m: _ip_token(m.group(0), key), value)
    if ":" in value:
        value = IPV6_RE.sub(lambda m: _ipv6(m, key), value)
    value = PHONE_RE.sub(MASK, value)
    return LOCAL_PHONE_RE.sub(MASK, value)


_scrub_cached = lru_cache(maxsize=CACHE)(_scrub)


def scrub_text(value: str, key: bytes) -> str:
    """Free text with every email, card number, phone number, IP address and JSON name or
    phone field masked."""
    if len(value) <= CACHED_TEXT_CHARS:
        return _scrub_cached(value, key)
    return _scrub(value, key)


def masking(kind: PiiKind, key: bytes) -> Callable[[Any], Any]:
    """The function that masks one value of this kind (None stays None)."""
    if kind is PiiKind.IP:
        return lambda value: None if value is None else _ip_token(str(value), key)
    if kind is PiiKind.IDENTIFIER:
        return lambda value: None if value is None else _token("id", str(value), key)
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
        self._texts = [i for i, n in enumerate(names) if pii.get(n) is PiiKind.TEXT]
        self._subject = names.index(subject_column) if subject_column in names else None
        self._unmasked = frozenset(unmasked)

    def is_unmasked(self, row: Sequence[Any]) -> bool:
        if self._subject is None or not self._unmasked:
            return False
        return str(row[self._subject]) in self._unmasked

    def text_chars(self, rows: Sequence[Sequence[Any]]) -> int:
        """How much free text masking these rows scrubs."""
        return sum(len(row[i]) for row in rows for i in self._texts if isinstance(row[i], str))

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


async def mask_rows(
    masker: Masker, rows: Sequence[Sequence[Any]], off_loop_chars: int
) -> list[list[Any]]:
    """``masker`` over ``rows``; in a worker thread when they hold more free text than
    ``off_loop_chars``, so a large body never stalls the event loop."""

    def run() -> list[list[Any]]:
        return [masker.apply(row) for row in rows]

    if masker.text_chars(rows) > off_loop_chars:
        return await anyio.to_thread.run_sync(run)
    return run()
