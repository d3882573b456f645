"""The navigation every page carries: its pages grouped by what they are about (the
header lists, in each group, only the pages the viewer may open)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from api.pages import NavItem

OTHER = "More"
# View name -> the group it is listed under, in the order the groups appear.
SECTIONS: dict[str, tuple[str, ...]] = {
    "Bookings": ("bookings", "stuck-bookings"),
    "Payments": (
        "payments",
        "chargebacks",
        "reconciliation",
        "refunds",
        "payouts",
        "finance-tickets",
    ),
    "Operations": (
        "incidents",
        "service-checks",
        "calendar-syncs",
        "calendar-sync-failures",
        "support-tickets",
    ),
    "API": ("api-logs", "usage"),
    "Webhooks": ("webhooks", "webhook-endpoints", "webhook-dead-letters", "webhook-rejections"),
    "Admin": ("audit", "users", "api-keys"),
}
SECTION_OF = {name: section for section, names in SECTIONS.items() for name in names}


def sectioned(entries: Iterable[NavItem]) -> list[NavItem]:
    """The entries with their groups (a page at ``/<name>`` goes under its view's group;
    one that names its own keeps it), in group order, each group in the entries' order."""
    order = [*SECTIONS, OTHER]
    placed = [
        item if item.section else replace(item, section=SECTION_OF.get(item.href[1:], OTHER))
        for item in entries
    ]
    return sorted(
        placed, key=lambda item: order.index(item.section) if item.section in order else len(order)
    )
