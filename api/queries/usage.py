"""The usage report: API calls per account, key and route per day and month.

Counting tens of millions of log rows per request is out of the question, so the roll-up
worker folds ``platform.api_logs`` into ``ops.api_usage_daily``/``_monthly`` by write time
(``updated_at``), up to a commit horizon: rows older than the oldest running transaction
(less a look-back for sessions it cannot see) can no longer appear, so each row is counted
exactly once. Log rows are written once and never updated; retention deleting them later
does not change what was counted.
"""

from __future__ import annotations

from typing import Any

from api.queries.listing import PageRequest
from core.application_names import HORIZON_IGNORED

# Sessions that never write platform rows (core/application_names.py): a long export must
# not hold the horizon back.
READ_ONLY_APPLICATIONS = list(HORIZON_IGNORED)
EPOCH_FLOOR = "1970-01-02"

STATE = "SELECT folded_until FROM ops.api_usage_rollup FOR UPDATE SKIP LOCKED"
ADVANCE = "UPDATE ops.api_usage_rollup SET folded_until = %(until)s"
HORIZON = (
    "SELECT least(now() - make_interval(secs => %(lookback)s), "
    "(SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL "
    "AND NOT (application_name = ANY(%(ignore)s))))"
)
FIRST_WRITE = "SELECT min(updated_at) FROM platform.api_logs WHERE updated_at >= %(after)s"
FOLD = (
    "SELECT (started_at AT TIME ZONE 'UTC')::date, coalesce(account_id, ''), "
    "coalesce(api_key_id, ''), route, livemode, count(*), "
    "count(*) FILTER (WHERE status_code BETWEEN 400 AND 499), "
    "count(*) FILTER (WHERE status_code >= 500), sum(duration_ms) "
    "FROM platform.api_logs WHERE updated_at >= %(lo)s AND updated_at < %(hi)s "
    "GROUP BY 1, 2, 3, 4, 5"
)
# One fold step's groups arrive as one array per column and merge into both tables in a
# single statement: no temporary table, and the connection is never left half-way through
# a COPY (a backend waiting for COPY data holds up DROP DATABASE across the whole server).
STAGED_COLUMNS = (
    "day",
    "account_id",
    "api_key_id",
    "route",
    "livemode",
    "calls",
    "client_errors",
    "server_errors",
    "duration_ms_sum",
)
_STAGED = (
    "SELECT * FROM unnest(%(day)s::date[], %(account_id)s::text[], %(api_key_id)s::text[], "
    "%(route)s::text[], %(livemode)s::boolean[], %(calls)s::bigint[], "
    "%(client_errors)s::bigint[], %(server_errors)s::bigint[], "
    "%(duration_ms_sum)s::double precision[]) AS s(" + ", ".join(STAGED_COLUMNS) + ")"
)
_MERGE = (
    "INSERT INTO ops.api_usage_{table} ({period}, account_id, api_key_id, route, livemode, "
    "calls, client_errors, server_errors, duration_ms_sum) "
    "SELECT {bucket}, account_id, api_key_id, route, livemode, sum(calls), sum(client_errors), "
    "sum(server_errors), sum(duration_ms_sum) FROM staged GROUP BY 1, 2, 3, 4, 5 "
    "ON CONFLICT ({period}, account_id, api_key_id, route, livemode) DO UPDATE SET "
    "calls = ops.api_usage_{table}.calls + excluded.calls, "
    "client_errors = ops.api_usage_{table}.client_errors + excluded.client_errors, "
    "server_errors = ops.api_usage_{table}.server_errors + excluded.server_errors, "
    "duration_ms_sum = ops.api_usage_{table}.duration_ms_sum + excluded.duration_ms_sum"
)
MERGE = (
    f"WITH staged AS ({_STAGED}), "
    f"daily AS ({_MERGE.format(table='daily', period='day', bucket='day')}) "
    + _MERGE.format(table="monthly", period="month", bucket="date_trunc('month', day)::date")
)

# The report groups by period, then account, key and route down to the level asked for.
LEVELS = {"account": 1, "key": 2, "route": 3}
KEY_COLUMNS = ("account_id", "api_key_id", "route")


def _report(request: PageRequest, *, paged: bool) -> tuple[str, dict[str, Any]]:
    """One page of the report. Groups, order and keyset name the table's columns qualified
    (``u.``), so they match its primary key and a page is a short backward index scan
    feeding a streaming aggregate, however many groups the range holds."""
    f = request.filters
    monthly = f.get("period") == "month"
    table, period = (
        ("ops.api_usage_monthly", "month") if monthly else ("ops.api_usage_daily", "day")
    )
    depth = LEVELS[f.get("group", "route")]
    grouped = [f"u.{c}" for c in (period, *KEY_COLUMNS[:depth])]
    shown = [f"{c} AS key_{i}" for i, c in enumerate(grouped)]
    shown += [f"'' AS key_{i}" for i in range(len(grouped), 4)]
    start = (
        "date_trunc('month', %(time_from)s AT TIME ZONE 'UTC')"
        if monthly
        else "%(time_from)s AT TIME ZONE 'UTC'"
    )
    clauses = [
        f"u.{period} >= ({start})::date",
        f"u.{period} <= (%(time_to)s AT TIME ZONE 'UTC')::date",
    ]
    clauses += [f"u.{c} = %({c})s" for c in ("livemode", *KEY_COLUMNS) if c in f]
    params: dict[str, Any] = dict(f)
    direction = "DESC" if request.descending else "ASC"
    if request.after is not None:
        op = "<" if request.descending else ">"
        marks = ", ".join(f"%(after_{i})s" for i in range(len(grouped)))
        clauses.append(f"({', '.join(grouped)}) {op} ({marks})")
        params.update({f"after_{i}": v for i, v in enumerate(request.after[: len(grouped)])})
    key_id = "nullif(u.api_key_id, '')" if depth >= 2 else "NULL::text"
    route = "u.route" if depth >= 3 else "NULL::text"
    query = (
        f"SELECT u.{period} AS period, nullif(u.account_id, '') AS account_id, "
        f"{key_id} AS api_key_id, {route} AS route, "
        "sum(u.calls)::bigint AS calls, sum(u.client_errors)::bigint AS client_errors, "
        "sum(u.server_errors)::bigint AS server_errors, "
        "(sum(u.duration_ms_sum) / nullif(sum(u.calls), 0))::double precision AS avg_duration_ms, "
        f"{', '.join(shown)} FROM {table} u WHERE {' AND '.join(clauses)} "
        f"GROUP BY {', '.join(grouped)} "
        f"ORDER BY {', '.join(f'{c} {direction}' for c in grouped)}"
    )
    if paged:
        query += " LIMIT %(limit)s"
        params["limit"] = request.limit + 1
    return query, params


def page(request: PageRequest) -> tuple[str, dict[str, Any]]:
    return _report(request, paged=True)


def export(request: PageRequest) -> tuple[str, dict[str, Any]]:
    return _report(request, paged=False)


FOLDED_UNTIL = "SELECT folded_until FROM ops.api_usage_rollup"
