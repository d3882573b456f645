"""One API process's live lists: the tails it runs, the rows they read, who follows which.

Each followed list keeps the batches of the last ``live.buffer_seconds`` of change time in
memory, from its *origin* (where its tail started, or the oldest batch kept) to its
*position* (where the tail has read up to). A cursor is a change time: everything before it
was delivered. A viewer arriving with a cursor inside the buffer is served from memory; one
older than the origin (a stream that reconnects after a restart of the API, or to another
API process) is caught up with one query over ``[cursor, origin)`` on the API's pool, which
costs a query per reconnection, never per tick. A cursor older than
``live.resume_max_seconds``, or a catch-up of more than ``live.catchup_max_rows`` rows, is
not caught up: the page reloads.

Each batch is filtered once per viewer in this process (``Feed.predicate``) and rendered
once per rendering group (viewers whose rows mask alike; ``Viewer.group``), then queued to
each viewer. A viewer that does not take its events ends (``live.queue_events``); its
browser reconnects and resumes from its last event id.

A list is followed while it has viewers, and for ``live.idle_seconds`` after a page load or
a poll; a database's tails stop when none of its lists is followed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import anyio

from api.live.feeds import FEEDS, Feed, Predicate
from api.live.metrics import LiveCollector
from api.live.tail import Batch, DatabaseTail
from api.queries.live import LIVE_AT
from api.runtime import Runtime
from core.application_names import API_EXPORT, API_LIVE

log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 1.0
READY_SECONDS = 5.0  # how long a viewer waits for a sleeping tail's first horizon
# Sessions that never write opsdeck's own live tables: the tails of the ops lists leave
# them out of their horizon (the platform's horizon leaves out every non-writer of the
# platform, core/application_names.py).
OPS_READ_ONLY = (API_LIVE, API_EXPORT)

Render = Callable[[Sequence[str], Sequence[Sequence[Any]]], list[dict[str, Any]]]


class Unavailable(Exception):
    """The list's tail did not start (its database does not answer)."""


class Reset(Exception):
    """The cursor is too old to catch up: the viewer starts again from a fresh page."""


@dataclass(frozen=True, eq=False)
class Event:
    cursor: datetime  # every matching row changed before it has been delivered
    rows: list[dict[str, Any]]
    # The event as sent, once for all the viewers it is queued to (by the transport).
    encoded: dict[str, bytes] = field(default_factory=dict)


@dataclass(eq=False)
class Viewer:
    """One stream: its filter, its cursor, how its rows render, and its queue."""

    feed: str
    matches: Predicate
    after: datetime  # rows changed at or after it are still to come
    group: Hashable  # viewers of one group render a row alike (same masking)
    render: Render
    queue: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    ended: str | None = None  # why the hub ended it


@dataclass(eq=False)
class Followed:
    feed: Feed
    batches: deque[Batch] = field(default_factory=deque)
    origin: datetime | None = None
    position: datetime | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    viewers: set[Viewer] = field(default_factory=set)
    lease_until: float = 0.0

    def forget(self) -> None:
        self.batches.clear()
        self.origin = self.position = None
        self.ready.clear()


class Hub:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._live = runtime.settings.live
        self._followed = {name: Followed(feed) for name, feed in FEEDS.items()}
        self._tails: dict[str, DatabaseTail] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- what the endpoints use ------------------------------------------------------------

    async def cursor(self, name: str) -> datetime:
        """Where the list's tail is now: rows changed before it are visible to any query
        that starts after this returns (a page's first rows); wakes the tail if need be."""
        state = await self._awake(name)
        assert state.position is not None
        return state.position

    async def subscribe(
        self,
        name: str,
        after: datetime | None,
        matches: Predicate,
        group: Hashable,
        render: Render,
    ) -> Viewer:
        """A viewer of the list from ``after`` (the tail's position when None), with what
        it missed since queued first."""
        state = await self._awake(name)
        assert state.position is not None
        viewer = Viewer(name, matches, after or state.position, group, render)
        missed = await self._backlog(state, viewer)
        state.viewers.add(viewer)
        cursor = max(viewer.after, state.position)
        viewer.queue.put_nowait(Event(cursor, viewer.render(*missed) if missed[1] else []))
        viewer.after = cursor
        return viewer

    def unsubscribe(self, viewer: Viewer) -> None:
        state = self._followed[viewer.feed]
        state.viewers.discard(viewer)
        state.lease_until = max(state.lease_until, time.monotonic() + self._live.idle_seconds)

    async def changes(
        self, name: str, after: datetime | None, matches: Predicate, render: Render
    ) -> Event:
        """One poll: the rows changed since ``after``, and the cursor to poll from next."""
        state = await self._awake(name)
        assert state.position is not None
        viewer = Viewer(name, matches, after or state.position, None, render)
        names, rows = await self._backlog(state, viewer)
        return Event(max(viewer.after, state.position), render(names, rows) if rows else [])

    def statements(self) -> dict[str, tuple[int, int]]:
        """Statements run by each database's tails so far: horizon readings, windows."""
        return {db: (tail.horizon.readings, tail.queries) for db, tail in self._tails.items()}

    def viewers(self) -> dict[str, int]:
        return {name: len(state.viewers) for name, state in self._followed.items()}

    # -- following and sleeping ------------------------------------------------------------

    async def _awake(self, name: str) -> Followed:
        state = self._followed[name]
        state.lease_until = max(state.lease_until, time.monotonic() + self._live.idle_seconds)
        tail = self._tail(state.feed.database)
        if name not in tail.followed:
            tail.follow(state.feed)
        if not tail.running:
            tail.start()
        with anyio.move_on_after(READY_SECONDS):
            await state.ready.wait()
        if not state.ready.is_set():
            raise Unavailable(f"the {name} list's tail did not start")
        return state

    def _tail(self, database: str) -> DatabaseTail:
        if database not in self._tails:
            settings = self._runtime.settings
            url = settings.require("database_url", "opsdeck api")
            if database == "platform":
                self._tails[database] = DatabaseTail(
                    settings.platform_url or url, settings, None, self._publish
                )
            else:
                ignored = (*OPS_READ_ONLY, *settings.exporter.horizon_ignore_applications)
                self._tails[database] = DatabaseTail(url, settings, ignored, self._publish)
        return self._tails[database]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Hub]:
        self._loop = asyncio.get_running_loop()
        task = asyncio.create_task(self._housekeeping())
        collector = LiveCollector(self.statements, self.viewers)
        self._runtime.metrics.registry.register(collector)
        try:
            yield self
        finally:
            self._runtime.metrics.registry.unregister(collector)
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            for tail in self._tails.values():
                if tail.running:
                    await anyio.to_thread.run_sync(tail.stop)

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            now = time.monotonic()
            for name, state in self._followed.items():
                tail = self._tails.get(state.feed.database)
                if tail is None or name not in tail.followed:
                    continue
                if not state.viewers and state.lease_until < now:
                    tail.drop(name)
                    state.forget()
            for tail in self._tails.values():
                if tail.running and not tail.followed:
                    await anyio.to_thread.run_sync(tail.stop)
                    if tail.followed:  # followed again while it stopped
                        tail.start()

    # -- batches in, events out ------------------------------------------------------------

    def _publish(self, name: str, batch: Batch) -> None:
        """From a tail's thread: hand the batch to the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with suppress(RuntimeError):  # the loop closed in between: the app is stopping
                loop.call_soon_threadsafe(self._receive, name, batch)

    def _receive(self, name: str, batch: Batch) -> None:
        state = self._followed[name]
        if name not in self._tail(state.feed.database).followed:
            return  # read just before the list was dropped
        if state.position is not None and batch.since != state.position:
            # The tail started over (the list was dropped and followed again): what lies
            # between is unknown here, so viewers behind the new start reconnect.
            log.info("live list %s restarted at %s", name, batch.since)
            self._end_all(state, "restarted")
            state.forget()
        if state.position is None:
            state.origin = batch.since
        state.position = batch.until
        if batch.rows:
            state.batches.append(batch)
        self._trim(state)
        state.ready.set()
        if state.viewers:
            self._dispatch(state, batch)

    def _trim(self, state: Followed) -> None:
        assert state.position is not None
        keep = state.position - timedelta(seconds=self._live.buffer_seconds)
        while state.batches and state.batches[0].until <= keep:
            state.batches.popleft()
        if state.origin is not None and state.origin < keep:
            state.origin = keep  # every row changed since is still held

    def _dispatch(self, state: Followed, batch: Batch) -> None:
        records = [dict(zip(batch.names, row, strict=True)) for row in batch.rows]
        # Viewers of one group picking the same rows share one rendered event.
        shared: dict[tuple[Hashable, tuple[int, ...], datetime], Event] = {}
        for viewer in list(state.viewers):
            picked = tuple(
                i
                for i, record in enumerate(records)
                if record[LIVE_AT] >= viewer.after and viewer.matches(record)
            )
            cursor = max(viewer.after, batch.until)
            if picked:
                key = (viewer.group, picked, cursor)
                if key not in shared:
                    rows = viewer.render(batch.names, [batch.rows[i] for i in picked])
                    shared[key] = Event(cursor, rows)
                self._put(state, viewer, shared[key])
            viewer.after = cursor

    def _put(self, state: Followed, viewer: Viewer, event: Event) -> None:
        if viewer.queue.qsize() >= self._live.queue_events:
            self._end(state, viewer, "too slow")
            return
        viewer.queue.put_nowait(event)

    def _end(self, state: Followed, viewer: Viewer, why: str) -> None:
        viewer.ended = why
        state.viewers.discard(viewer)
        viewer.queue.put_nowait(Event(viewer.after, []))  # wakes the stream to end

    def _end_all(self, state: Followed, why: str) -> None:
        for viewer in list(state.viewers):
            self._end(state, viewer, why)

    # -- what a viewer missed ----------------------------------------------------------------

    async def _backlog(
        self, state: Followed, viewer: Viewer
    ) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """The matching rows changed since the viewer's cursor up to the list's position:
        from the database before the origin, then from memory. Returns with nothing left
        in between (no await after the memory is read)."""
        names: Sequence[str] = ()
        rows: list[tuple[Any, ...]] = []
        origin = state.origin
        while origin is not None and viewer.after < origin:
            names, caught = await self._catch_up(state, viewer, origin)
            rows += caught
            origin = state.origin
        if origin is None:
            raise Unavailable(f"the {state.feed.name} list's tail started over")
        for batch in state.batches:
            if batch.until <= viewer.after:
                continue
            names = batch.names
            for row in batch.rows:
                record = dict(zip(batch.names, row, strict=True))
                if record[LIVE_AT] >= viewer.after and viewer.matches(record):
                    rows.append(row)
        return names, rows

    async def _catch_up(
        self, state: Followed, viewer: Viewer, until: datetime
    ) -> tuple[Sequence[str], list[tuple[Any, ...]]]:
        """One query for ``[viewer.after, until)``; moves the viewer's cursor to ``until``."""
        if until - viewer.after > timedelta(seconds=self._live.resume_max_seconds):
            raise Reset(f"the cursor is more than {self._live.resume_max_seconds:g} s old")
        pool = self._runtime.platform if state.feed.database == "platform" else self._runtime.ops
        limit = self._live.catchup_max_rows
        async with pool.connection() as conn:
            cursor = await conn.execute(state.feed.sql, {"since": viewer.after, "until": until})
            names = [c.name for c in cursor.description or ()]
            found = await cursor.fetchmany(limit + 1)
        if len(found) > limit:
            raise Reset(f"more than {limit} rows changed since the cursor")
        viewer.after = until
        picked = [tuple(r) for r in found if viewer.matches(dict(zip(names, r, strict=True)))]
        return names, picked
