"""Which lists are live, what their tails read, and each filter as a test on a pushed row.

A feed is a list (:class:`~api.drilldowns.spec.ListView`) plus the column its rows change
with. Its tail reads the list's own select list and source (``api/queries/live.py``), so a
pushed row is the row the page shows; a viewer's filters are then applied in this process,
one row at a time, by the condition declared here under each filter's name. Every filter of
the list has one (checked when this module loads), or says why it is not followed live.
``tests/api/test_live_filters.py`` runs every condition and the list's SQL over the same rows
and requires the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.drilldowns import api_logs, ops_lists, payments
from api.drilldowns.spec import ListView
from api.queries import live as sql
from api.webhooks import drilldowns as webhooks

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]
Condition = Callable[[Any], Predicate]  # the filter's bound value -> the test of a row
TIME_FROM, TIME_TO = "time_from", "time_to"
DIGITS = re.compile(r"[0-9]{1,18}")


class NotLive(Exception):
    """A filter this list does not follow live; the page works, it just does not move."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name} is not followed live: {why}")
        self.name = name
        self.why = why


def equals(column: str) -> Condition:
    """``column = value``: a NULL never equals."""
    return lambda value: lambda row: row[column] == value


def one_of(column: str) -> Condition:
    """``column = ANY(values)``."""

    def condition(values: Sequence[Any]) -> Predicate:
        allowed = frozenset(values)
        return lambda row: row[column] in allowed

    return condition


def holds(column: str) -> Condition:
    """``value = ANY(column)``: an array column holding the value."""
    return lambda value: lambda row: value in (row[column] or ())


def starts_with(column: str) -> Condition:
    """``column ^@ value``."""
    return lambda value: lambda row: row[column] is not None and row[column].startswith(value)


def at_least(column: str) -> Condition:
    return lambda value: lambda row: row[column] is not None and row[column] >= value


def status_class(value: str) -> Predicate:
    """``status_code BETWEEN c00 AND c99`` for ``cxx``."""
    low = int(value[0]) * 100
    return lambda row: low <= row["status_code"] <= low + 99


def retried(value: bool) -> Predicate:
    return lambda row: row["attempt"] > 1 if value else row["attempt"] == 1


def payment_search(value: str) -> Predicate:
    """Charge/PSP id, intent id, or (digits) a customer or transaction id."""
    number = int(value) if DIGITS.fullmatch(value) else None
    return lambda row: (
        row["psp_id"] == value
        or row["payment_intent_id"] == value
        or (number is not None and number in (row["customer_id"], row["id"]))
    )


@dataclass(frozen=True)
class Feed:
    view: ListView
    changed: str  # the change-time column the tail reads by
    conditions: Mapping[str, Condition]
    key_fields: tuple[str, ...] = ("id",)
    extra_columns: str = ""  # read for a condition, not shown
    not_live: Mapping[str, str] = field(default_factory=dict)  # filter -> why not

    def __post_init__(self) -> None:
        names = {f.name for f in self.view.filters}
        if self.view.livemode:
            names.add("livemode")
        missing = names - set(self.conditions) - set(self.not_live)
        if missing:
            raise RuntimeError(f"live list {self.name}: no condition for {sorted(missing)}")

    @property
    def name(self) -> str:
        return self.view.name

    @property
    def database(self) -> str:
        return self.view.database

    @property
    def sql(self) -> str:
        assert self.view.listing is not None
        return sql.window(self.view.listing, self.changed, self.extra_columns)

    @property
    def time_field(self) -> str:
        assert self.view.listing is not None
        return self.view.listing.time_column.rpartition(".")[2]

    def key(self, names: Sequence[str], row: Sequence[Any]) -> str:
        """What tells rows apart on the page: a changed row replaces its earlier self."""
        return "-".join(str(row[names.index(name)]) for name in self.key_fields)

    def predicate(self, filters: Mapping[str, Any], *, open_ended: bool) -> Predicate:
        """The test of a row under a list request's bound filters (``parse_list``), the
        time range's end left out when it is "now" (``open_ended``): rows come later."""
        for name in filters:
            if name in self.not_live:
                raise NotLive(name, self.not_live[name])
        tests: list[Predicate] = []
        for name, value in filters.items():
            if name == TIME_FROM:
                tests.append(at_least(self.time_field)(value))
            elif name == TIME_TO:
                if not open_ended:
                    tests.append(_at_most(self.time_field, value))
            else:
                tests.append(self.conditions[name](value))
        return lambda row: all(test(row) for test in tests)


def _at_most(column: str, value: datetime) -> Predicate:
    return lambda row: row[column] is not None and row[column] <= value


PAYMENTS = Feed(
    payments.PAYMENTS,
    changed="t.updated_at",
    conditions={
        "status": one_of("status"),
        "q": payment_search,
        "customer_id": equals("customer_id"),
        "payment_intent_id": equals("payment_intent_id"),
        "attempt": equals("attempt"),
        "retried": retried,
        "card_brand": equals("card_brand"),
        "failure_code": equals("failure_code"),
        "psp": equals("psp"),
        "currency": one_of("currency"),
        "livemode": equals("livemode"),
    },
)

API_LOGS = Feed(
    api_logs.API_LOGS,
    changed="l.updated_at",
    extra_columns=", l.idempotency_key",
    conditions={
        "status": one_of("status_code"),
        "status_class": status_class,
        "method": equals("method"),
        "route": equals("route"),
        "path_prefix": starts_with("path"),
        "api_key_id": equals("api_key_id"),
        "account_id": equals("account_id"),
        "request_id": equals("request_id"),
        "idempotency_key": equals("idempotency_key"),
        "error_type": equals("error_type"),
        "min_duration_ms": at_least("duration_ms"),
        "livemode": equals("livemode"),
    },
    not_live={"q": "full-text search is answered by the database only"},
)

WEBHOOKS = Feed(
    webhooks.WEBHOOKS,
    changed="l.changed_at",
    key_fields=("direction", "id"),
    conditions={
        "direction": equals("direction"),
        "status": one_of("status"),
        "event_type": equals("event_type"),
        "endpoint_id": equals("endpoint_id"),
        "provider": equals("provider"),
        "reference": equals("reference"),
    },
)

INCIDENTS = Feed(
    ops_lists.INCIDENTS,
    changed="i.changed_at",
    conditions={
        "status": one_of("status"),
        "severity": one_of("severity"),
        "service": holds("services"),
        "owner": equals("owner"),
    },
)

FEEDS: dict[str, Feed] = {f.name: f for f in (PAYMENTS, API_LOGS, WEBHOOKS, INCIDENTS)}
