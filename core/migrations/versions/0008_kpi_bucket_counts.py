"""Histogram buckets are stored per bucket, not cumulatively, and ``_count`` is not stored.

A fold then writes only the buckets its observations fell in; the exposition adds them up
into Prometheus's cumulative ``le`` buckets, whose +Inf bucket is the count. Existing
running values are converted in place, exactly: each bucket becomes its cumulative value
less the one below it, and downgrading adds them up again.

Revision ID: 0008_kpi_bucket_counts
Revises: 0003_kpi_engine
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0008_kpi_bucket_counts"
down_revision = "0003_kpi_engine"
branch_labels = None
depends_on = None

# A bucket's own labels are all but the last (``le``); buckets sort by their bound.
_BUCKETS = """
SELECT collector, metric, labels, value,
       {window} OVER (
           PARTITION BY collector, metric, labels[1:cardinality(labels) - 1]
           ORDER BY CASE labels[cardinality(labels)] WHEN '+Inf' THEN 'infinity'::float8
                    ELSE labels[cardinality(labels)]::float8 END
       ) AS converted
FROM ops.kpi_values
WHERE metric LIKE '%\\_bucket'
"""
_CONVERT = """
WITH b AS ({buckets})
UPDATE ops.kpi_values v SET value = b.converted
FROM b
WHERE v.collector = b.collector AND v.metric = b.metric AND v.labels = b.labels
"""

UPGRADE = [
    _CONVERT.format(buckets=_BUCKETS.format(window="value - lag(value, 1, 0::float8)")),
    "DELETE FROM ops.kpi_values WHERE metric LIKE '%\\_count'",
]
DOWNGRADE = [
    _CONVERT.format(buckets=_BUCKETS.format(window="sum(value)")),
    """
    INSERT INTO ops.kpi_values (collector, metric, labels, value)
    SELECT collector, left(metric, -length('_bucket')) || '_count',
           labels[1:cardinality(labels) - 1], value
    FROM ops.kpi_values
    WHERE metric LIKE '%\\_bucket' AND labels[cardinality(labels)] = '+Inf'
    """,
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
