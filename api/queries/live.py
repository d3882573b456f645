"""Live lists: the rows of a list that changed in one window of event time.

A tail reads ``[since, until)`` of a change-time column (``updated_at`` of the platform's
rows, ``changed_at`` of opsdeck's own: revision 0023) through its index, below the commit
horizon, so every change in the window is committed and visible and none is read twice.
The select list and the source are the list's own (:class:`~api.queries.listing.Listing`):
a pushed row is the row the page shows. No filter is applied here: one query serves every
viewer of the list, whose filters are applied in the API process.
"""

from __future__ import annotations

from api.queries.listing import Listing

LIVE_AT = "live_at_"  # the change time of each row, last in every tail row


def window(listing: Listing, changed: str, extra_columns: str = "") -> str:
    """The list's rows whose ``changed`` time falls in ``[since, until)``, in the order they
    changed; ``extra_columns`` (``, l.x``) are columns a live filter reads that the page
    does not show."""
    return (
        f"SELECT {listing.columns}{extra_columns}, {changed} AS {LIVE_AT} "
        f"FROM {listing.source} "
        f"WHERE {changed} >= %(since)s AND {changed} < %(until)s "
        f"ORDER BY {changed}, {listing.id_column}"
    )
