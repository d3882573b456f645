"""What a list page needs to follow its rows live: where to stream or poll them from, and the
cursor to start at, taken before the page reads its rows.

The cursor is the list's tail position when the page is asked for: every row changed
before it is visible to the page's query, which starts later, and every row changed at or
after it comes through the stream. A row in both is shown once (the script keys rows), so
nothing falls between the page and its stream.

Only a list's first page follows (a later page is a position in the past), and not under a
filter the list does not follow live (:class:`~api.live.feeds.NotLive`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from api.drilldowns.spec import ListView
from api.live.cursors import encode
from api.live.feeds import FEEDS, Feed
from api.live.hub import Hub, Unavailable

log = logging.getLogger(__name__)
PAGE_ONLY = ("cursor", "limit")  # page parameters a stream does not take


@dataclass(frozen=True)
class LivePage:
    feed: Feed
    stream: str  # the SSE URL, with the page's own filters
    poll: str  # the polling URL, likewise
    cursor: str
    poll_seconds: float

    def key(self, names: Sequence[str], row: Sequence[Any]) -> str:
        return self.feed.key(names, row)


def _follows(request: Request, feed: Feed) -> bool:
    given = request.query_params
    if "cursor" in given:
        return False
    return not any(given.get(name) or given.get(f"var-{name}") for name in feed.not_live)


async def live_page(request: Request, view: ListView) -> LivePage | None:
    """The page's live setup, or None: not a live list, a later page, an unfollowed filter,
    or a tail that does not start (the page still shows its rows)."""
    feed = FEEDS.get(view.name)
    hub: Hub | None = getattr(request.app.state, "live", None)
    if feed is None or hub is None or not _follows(request, feed):
        return None
    try:
        cursor = await hub.cursor(feed.name)
    except Unavailable as exc:
        log.warning("live updates unavailable: %s", exc)
        return None
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k not in PAGE_ONLY])
    return LivePage(
        feed,
        stream=f"/api/v1/{view.name}/live?{query}",
        poll=f"/api/v1/{view.name}/changes?{query}",
        cursor=encode(cursor),
        poll_seconds=request.app.state.runtime.settings.live.poll_seconds,
    )
