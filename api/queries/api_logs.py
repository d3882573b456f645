"""API request logs: the list (filters, full-text search), one request with its context,
and timelines around a request or of an account."""

from __future__ import annotations

from api.queries.listing import Listing

# The request id and the bodies and message with PII removed, stored in the row when it is
# written (0018_masked_search defines it, 0026_stored_search_document stores it) under the
# api_logs_search_document GIN index. A search can neither find nor miss a masked value:
# asking whether someone's email or card is in a body tells nothing.
SEARCH_DOCUMENT = "l.search_document"
LOG_COLUMNS = (
    "l.id, l.request_id, l.started_at, l.method, l.path, l.route, l.status_code, l.duration_ms, "
    "l.api_key_id, l.account_id, host(l.ip_address) AS ip_address, l.livemode, l.api_version, "
    "l.error_type, "
    "l.error_message"
)
STATUS_CLASS = "left(%(status_class)s, 1)::int * 100"

API_LOGS = Listing(
    columns=LOG_COLUMNS,
    source="platform.api_logs l",
    id_column="l.id",
    time_column="l.started_at",
    sorts={"started_at": "l.started_at", "duration_ms": "l.duration_ms", "id": "l.id"},
    conditions={
        "status": "l.status_code = ANY(%(status)s)",
        "status_class": f"l.status_code BETWEEN {STATUS_CLASS} AND {STATUS_CLASS} + 99",
        "method": "l.method = %(method)s",
        "route": "l.route = %(route)s",
        "path_prefix": "l.path ^@ %(path_prefix)s",
        "api_key_id": "l.api_key_id = %(api_key_id)s",
        "account_id": "l.account_id = %(account_id)s",
        "request_id": "l.request_id = %(request_id)s",
        "idempotency_key": "l.idempotency_key = %(idempotency_key)s",
        "error_type": "l.error_type = %(error_type)s",
        "min_duration_ms": "l.duration_ms >= %(min_duration_ms)s",
        "livemode": "l.livemode = %(livemode)s",
        # The GIN index answers rare terms; for common ones the planner walks the time
        # index instead (api.drilldowns.api_logs.search_plan). The index is asked for
        # %(q_probe)s, the query's rarest required lexeme when the plan chose one (a match
        # holds it; asking for every lexeme of 'payment_intents 4242' walks the posting
        # lists of 'payment' and 'intents' for nothing), else for the whole query. The
        # whole query is then checked on each candidate's stored document: ts_match_vq is
        # what @@ calls, written out so the planner does not send it to the index too.
        "q": (
            f"({SEARCH_DOCUMENT} @@ coalesce(to_tsquery('simple'::regconfig, %(q_probe)s), "
            "websearch_to_tsquery('simple'::regconfig, %(q)s)) "
            f"AND ts_match_vq({SEARCH_DOCUMENT}, websearch_to_tsquery('simple'::regconfig, %(q)s)) "
            "OR l.request_id = %(q)s)"
        ),
    },
)

# The planner's own guesses (EXPLAIN only): rows in the range, and those holding a lexeme
# (%(q_probe)s, as to_tsquery reads it) or matching the whole query (%(q)s) when it is NULL.
PROBE = (
    "coalesce(to_tsquery('simple'::regconfig, %(q_probe)s), "
    "websearch_to_tsquery('simple'::regconfig, %(q)s))"
)
RANGE_ESTIMATE = (
    "EXPLAIN (FORMAT JSON) SELECT FROM platform.api_logs l "
    "WHERE l.started_at >= %(time_from)s AND l.started_at <= %(time_to)s"
)
SEARCH_ESTIMATE = (
    "EXPLAIN (FORMAT JSON) SELECT FROM platform.api_logs l "
    f"WHERE {SEARCH_DOCUMENT} @@ {PROBE} "
    "AND l.started_at >= %(time_from)s AND l.started_at <= %(time_to)s"
)
# ... and at any time: what the GIN index hands over (the range is checked on each).
SEARCH_ESTIMATE_ALL_TIME = (
    f"EXPLAIN (FORMAT JSON) SELECT FROM platform.api_logs l WHERE {SEARCH_DOCUMENT} @@ {PROBE}"
)
# The part of the query an index can answer, as text: its lexemes are required of every
# match unless it holds an OR ('|'); 'T' when nothing is.
INDEXABLE = "SELECT querytree(websearch_to_tsquery('simple'::regconfig, %(q)s))::text"
# Rare terms: collect the matches from the GIN index, then sort them. Common terms: walk an
# index in time order, newest first, checking each row's stored document, and stop at the
# page's end (never a scan of the whole range).
FROM_THE_INDEX = ("SET LOCAL enable_indexscan = off",)
ALONG_THE_TIME = (
    "SET LOCAL enable_bitmapscan = off",
    "SET LOCAL enable_seqscan = off",
    "SET LOCAL enable_sort = off",
)

REQUEST = (
    f"SELECT {LOG_COLUMNS}, l.idempotency_key, l.user_id, l.stack_trace, "
    "left(l.request_body, %(preview)s) AS request_body, "
    "coalesce(length(l.request_body) > %(preview)s, false) AS request_body_truncated, "
    "left(l.response_body, %(preview)s) AS response_body, "
    "coalesce(length(l.response_body) > %(preview)s, false) AS response_body_truncated "
    "FROM platform.api_logs l WHERE l.request_id = %(request_id)s"
)
TIMELINE_COLUMNS = (
    "l.request_id, l.started_at, l.method, l.path, l.status_code, l.duration_ms, "
    "l.error_type, l.idempotency_key"
)
# The account's requests around this one, and every request with the same idempotency key.
AROUND = (
    f"SELECT * FROM (SELECT {TIMELINE_COLUMNS} FROM platform.api_logs l "
    "WHERE l.account_id = %(account_id)s "
    "AND l.started_at BETWEEN %(at)s - make_interval(secs => %(window)s) "
    "AND %(at)s + make_interval(secs => %(window)s) "
    "UNION SELECT {columns} FROM platform.api_logs l WHERE l.idempotency_key = %(idempotency_key)s "
    ") t ORDER BY t.started_at, t.request_id LIMIT %(limit)s"
).replace("{columns}", TIMELINE_COLUMNS)
ACCOUNT_TIMELINE = (
    f"SELECT * FROM (SELECT {TIMELINE_COLUMNS} FROM platform.api_logs l "
    "WHERE l.account_id = %(account_id)s ORDER BY l.started_at DESC LIMIT %(limit)s) t "
    "ORDER BY t.started_at, t.request_id"
)
