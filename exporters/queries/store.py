"""ops side of the engine: its leader lock's name and fence, cursors and running values."""

from __future__ import annotations

# The KPI engine's leader lock (core/leadership.py) and its fence: folds hold the fence
# shared from their epoch check to their commit, an election holds it exclusively. The
# name is its row in ops.leaders (ops.kpi_leader is a view of it, migration 0010).
LEADER = "kpi"
FENCE_KEY = 7_220_260_002

CURSORS = """
SELECT collector, horizon, folded_at, last_ok, last_error, last_duration_s FROM ops.kpi_cursors
"""
VALUES = "SELECT collector, metric, labels, value FROM ops.kpi_values"

# One statement per fold writes its counter increments, its gauge values and its cursor.
# Label values travel joined by LABEL_SEPARATOR (which no bounded label value contains)
# and are split back into the text[] key. Counters and gauges are different metrics, so
# the two upserts never touch the same row.
LABEL_SEPARATOR = "\x1f"
_UPSERT = """
INSERT INTO ops.kpi_values (collector, metric, labels, value)
SELECT %(collector)s, m, string_to_array(l, E'\\x1f'), v
FROM unnest(%({kind}_metrics)s::text[], %({kind}_labels)s::text[], %({kind}_values)s::float8[])
    AS u(m, l, v)
ON CONFLICT (collector, metric, labels) DO UPDATE SET value = {update}
RETURNING metric, labels, value
"""
SAVE = f"""
WITH added AS ({_UPSERT.format(kind="add", update="ops.kpi_values.value + EXCLUDED.value")}),
set AS ({_UPSERT.format(kind="set", update="EXCLUDED.value")}),
cursor AS (
    INSERT INTO ops.kpi_cursors
        (collector, horizon, folded_at, last_ok, last_error, last_duration_s)
    VALUES (%(collector)s, %(horizon)s, now(), true, NULL, %(duration)s)
    ON CONFLICT (collector) DO UPDATE
    SET horizon = EXCLUDED.horizon, folded_at = now(), last_ok = true, last_error = NULL,
        last_duration_s = EXCLUDED.last_duration_s
)
SELECT metric, labels, value FROM added
UNION ALL
SELECT metric, labels, value FROM set
"""
ENSURE = """
INSERT INTO ops.kpi_values (collector, metric, labels, value) VALUES (%s, %s, %s, 0)
ON CONFLICT (collector, metric, labels) DO NOTHING
"""
MARK_FAILED = """
UPDATE ops.kpi_cursors SET last_ok = false, last_error = %(error)s WHERE collector = %(collector)s
"""
