"""What the public status page may show: never an internal name (the alert, its labels, the
team, the people, the hosts); component ids in markup and JSON are ids, not words."""

from __future__ import annotations

import re
from typing import Any

INTERNAL = re.compile(
    r"BookingApiDown|HookTest|booking_api\b|critical|platform|alertmanager|prometheus|"
    r"opsdeck|-user\b|localhost|runbook",
    re.IGNORECASE,
)


def public_text(page: str, data: dict[str, Any]) -> str:
    """The page's text and its JSON, component ids taken out."""
    body = re.sub(r'data-component="[a-z_]+"', "", page)
    shown = {**data, "components": [{**c, "id": ""} for c in data["components"]]}
    return body + repr(shown)
