"""Bulk loading with COPY: Arrow tables in, CSV over the wire, rows/s out.

Three things make it fast on a small machine: indexes are dropped before and rebuilt
after (one bulk build beats millions of incremental inserts), big tables load over
several connections at once, and timestamps are rendered by numpy rather than by Arrow's
CSV writer. Serialising and COPY both release the GIL, so threads are enough.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from core.application_names import SIMULATOR_BACKFILL
from core.database import connect

CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="needed", batch_size=65_536)
COPY_CHUNK_ROWS = 200_000
APPLICATION = SIMULATOR_BACKFILL

Progress = Callable[[str, int], None]


@dataclass
class LoadStats:
    table: str
    rows: int = 0
    copy_seconds: float = 0.0
    index_seconds: float = 0.0

    @property
    def seconds(self) -> float:
        return self.copy_seconds + self.index_seconds

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class DeferredIndex:
    """An index dropped for the load: how to build it again, and how to re-attach it as
    the constraint it backed (PRIMARY KEY/UNIQUE), if it did."""

    table: str
    build: str
    attach: str | None = None


def _timestamps_as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """ISO text without a zone (the COPY session runs in UTC): numpy renders it about five
    times faster than Arrow's CSV writer formats timestamps."""
    micros = pc.cast(column, pa.int64())
    if isinstance(micros, pa.ChunkedArray):
        micros = micros.combine_chunks()
    text = np.datetime_as_string(micros.to_numpy(zero_copy_only=False).astype("datetime64[us]"))
    return pa.array(text, mask=micros.is_null().to_numpy(zero_copy_only=False))


def csv_bytes(table: pa.Table) -> bytes:
    for index, column in enumerate(table.schema):
        if pa.types.is_timestamp(column.type):
            table = table.set_column(index, column.name, _timestamps_as_text(table[column.name]))
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, CSV_OPTIONS)
    return sink.getvalue()


def chunks_of(table: pa.Table, rows: int = COPY_CHUNK_ROWS) -> Iterator[pa.Table]:
    for offset in range(0, table.num_rows, rows):
        yield table.slice(offset, rows)


class _SharedParts:
    """Hands out chunks of one table to several COPY connections."""

    def __init__(self, parts: Iterable[pa.Table]) -> None:
        self._chunks = (chunk for part in parts for chunk in chunks_of(part))
        self._lock = threading.Lock()

    def next(self) -> pa.Table | None:
        with self._lock:
            return next(self._chunks, None)


class CopyLoader:
    """Loads Arrow tables into ``platform.<table>``, one committed transaction per chunk."""

    def __init__(self, url: str, progress: Progress) -> None:
        self._url = url
        self._progress = progress
        self._lock = threading.Lock()
        self.stats: dict[str, LoadStats] = {}

    def _open(self) -> psycopg.Connection[Any]:
        conn = connect(self._url, application_name=APPLICATION)
        superuser = conn.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        if superuser and superuser[0]:
            # Skip per-row foreign key checks: the generator writes consistent ids.
            conn.execute("SET session_replication_role = replica")
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET synchronous_commit = off")
        conn.commit()
        return conn

    def load(self, table: str, parts: Iterable[pa.Table], streams: int = 1) -> LoadStats:
        stats = LoadStats(table)
        shared = _SharedParts(parts)
        started = time.perf_counter()
        if streams == 1:
            self._copy_stream(table, shared, stats)
        else:
            with ThreadPoolExecutor(streams, thread_name_prefix=f"copy-{table}") as pool:
                for future in [
                    pool.submit(self._copy_stream, table, shared, stats) for _ in range(streams)
                ]:
                    future.result()
        stats.copy_seconds = time.perf_counter() - started
        with self._lock:
            self.stats[table] = stats
        return stats

    def _copy_stream(self, table: str, shared: _SharedParts, stats: LoadStats) -> None:
        with self._open() as conn:
            while (chunk := shared.next()) is not None:
                payload = csv_bytes(chunk)
                statement = (
                    f"COPY platform.{table} ({', '.join(chunk.column_names)}) "
                    "FROM STDIN (FORMAT csv)"
                )
                with conn.cursor() as cur, cur.copy(statement) as copy:
                    copy.write(payload)
                conn.commit()
                with self._lock:
                    stats.rows += chunk.num_rows
                self._progress(table, chunk.num_rows)


def defer_indexes(url: str, tables: Iterable[str]) -> list[DeferredIndex]:
    """Drop the indexes (and unreferenced PRIMARY KEY/UNIQUE constraints) of ``tables``."""
    deferred = []
    with connect(url, application_name=APPLICATION) as conn:
        for table in tables:
            qualified = f"platform.{table}"
            for name, kind, columns in conn.execute(_CONSTRAINTS, (qualified,)).fetchall():
                unique = f"CREATE UNIQUE INDEX {name} ON {qualified} ({columns})"
                attach = f"ALTER TABLE {qualified} ADD CONSTRAINT {name} {kind} USING INDEX {name}"
                deferred.append(DeferredIndex(table, unique, attach))
                conn.execute(f"ALTER TABLE {qualified} DROP CONSTRAINT {name}")
            for name, definition in conn.execute(_PLAIN_INDEXES, (table,)).fetchall():
                deferred.append(DeferredIndex(table, definition))
                conn.execute(f"DROP INDEX platform.{name}")
        conn.commit()
    return deferred


def rebuild_indexes(
    url: str, deferred: list[DeferredIndex], stats: dict[str, LoadStats], workers: int = 2
) -> None:
    """Build the dropped indexes on ``workers`` connections, biggest tables first, and
    book the time each table waited for its indexes to that table."""
    started = time.perf_counter()
    finished: dict[str, float] = {}
    lock = threading.Lock()

    def build(index: DeferredIndex) -> None:
        with connect(url, application_name=APPLICATION, autocommit=True) as conn:
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute(index.build)
        with lock:
            finished[index.table] = time.perf_counter() - started

    def rows(index: DeferredIndex) -> int:
        return stats[index.table].rows if index.table in stats else 0

    with ThreadPoolExecutor(workers, thread_name_prefix="index") as pool:
        for future in [pool.submit(build, i) for i in sorted(deferred, key=rows, reverse=True)]:
            future.result()
    with connect(url, application_name=APPLICATION, autocommit=True) as conn:
        for index in deferred:
            if index.attach:
                conn.execute(index.attach)
    for table, seconds in finished.items():
        if table in stats:
            stats[table].index_seconds = seconds


_CONSTRAINTS = """
SELECT c.conname,
       CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END,
       (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.ord)
        FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)
FROM pg_constraint c
WHERE c.conrelid = %s::regclass AND c.contype IN ('p', 'u')
  AND NOT EXISTS (SELECT FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)
"""
_PLAIN_INDEXES = """
SELECT i.indexname, i.indexdef
FROM pg_indexes i
WHERE i.schemaname = 'platform' AND i.tablename = %s
  AND NOT EXISTS (
      SELECT FROM pg_constraint c
      WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)
"""
