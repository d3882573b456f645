"""A real path for every route of the route table: each path parameter filled with the id of
a real row of the database under test, each required query parameter with a valid value.

The route x role test (tests/api/test_route_roles.py) and the page accessibility test
(tests/api/test_pages_a11y.py) both request routes through these paths. A route whose path
parameter nothing here can fill is a :class:`MissingSample` naming it, never a skipped case:
a part adding such a route adds its row to :func:`route_samples`."""

from __future__ import annotations

import re
from typing import Any, Protocol

from api.routing import RouteSpec
from tests.api.manage_route_cases import manage_query
from tests.finance.route_cases import change_query, change_samples
from tests.webhooks.route_cases import webhook_samples

# The id a detail route opens, by the route's name without its _page/_detail/_run suffix.
SAMPLE_IDS = {
    "payment": "SELECT max(id) FROM platform.transactions",
    "chargeback": "SELECT max(id) FROM platform.chargebacks",
    "booking": "SELECT max(id) FROM platform.bookings",
    "double_booking": "SELECT max(id) FROM platform.bookings",
    "incident": "SELECT max(id) FROM ops.incidents",
    "api_log": "SELECT max(request_id) FROM platform.api_logs",
    "account_timeline": "SELECT max(account_id) FROM platform.api_logs",
}
# Rows a history does not hold: an incident, and a chargeback of its latest payment.
SAMPLE_ROWS = (
    "INSERT INTO ops.incidents (title, severity, status, started_at) "
    "VALUES ('API 5xx above 1%', 'high', 'triggered', now())",
    "INSERT INTO platform.chargebacks (transaction_id, amount_cents, reason) "
    "SELECT max(id), 100, 'fraudulent' FROM platform.transactions",
)
PATH_PARAM = re.compile(r"\{\w+\}")


class Sql(Protocol):
    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]: ...


class MissingSample(LookupError):
    """A route has a path parameter no sample row fills."""


def route_samples(db: Sql) -> dict[str, str]:
    """A real value for every path parameter, by route (see :func:`sample_name`); adds the
    rows a two-day history lacks."""
    for statement in SAMPLE_ROWS:
        db.sql(statement)
    found = {name: str(db.sql(query)[0][0]) for name, query in SAMPLE_IDS.items()}
    return found | webhook_samples(db) | change_samples(db) | {"runbook": "ApiErrorRateHigh"}


def sample_name(spec: RouteSpec) -> str:
    """The key of :func:`route_samples` that fills ``spec``'s path parameter."""
    return spec.name.removesuffix("_run").removesuffix("_page").removesuffix("_detail")


def route_path(spec: RouteSpec, samples: dict[str, str]) -> str:
    """``spec``'s path with a real row's id in it and the query it cannot go without."""
    path = spec.path
    if PATH_PARAM.search(path):
        name = sample_name(spec)
        if name not in samples:
            raise MissingSample(
                f"{spec.name} ({spec.path}): no sample row fills its path parameter; "
                f"add {name!r} to tests/api/route_paths.py"
            )
        path = PATH_PARAM.sub(samples[name], path)
    if any(p.name == "from" for p in spec.params):
        path += "?from=now-1h"
    query = change_query(spec) or manage_query(spec)
    return f"{path}?{query}" if query else path
