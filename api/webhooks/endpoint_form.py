"""The endpoint form's text, both ways: what a person types (a URL, event types and retry
delays separated by commas, a rate) read into the fields :mod:`gateway.endpoints` checks,
and an endpoint's fields written back as that text to prefill the form.

Every refusal is a 400 naming the form's field and the value it refuses; an empty retry
schedule or rate limit means "the global setting"."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from api.problems import Problem, invalid
from core.settings import WebhookSettings
from gateway import endpoints
from gateway.endpoints import InvalidEndpoint

# form field -> endpoint field
FIELDS = {
    "url": "url",
    "event_types": "event_types",
    "description": "description",
    "retry_schedule": "retry_schedule_seconds",
    "rate_limit": "rate_limit_per_second",
}
FORM_NAMES = {field: name for name, field in FIELDS.items()}
SEPARATORS = re.compile(r"[,\s]+")
SHOWN = 40  # characters of a refused value repeated in the answer


def _items(text: str) -> list[str]:
    return [item for item in SEPARATORS.split(text.strip()) if item]


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise invalid(name, f"{text[:SHOWN]!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise invalid(name, f"{text[:SHOWN]!r} is not a finite number")
    return value


def schedule_of(text: str) -> list[float] | None:
    """``"5, 60, 600"`` as delays in seconds; empty: None (the global schedule)."""
    return [_number("retry_schedule", item) for item in _items(text)] or None


def rate_of(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise invalid("rate_limit", f"{text[:SHOWN]!r} is not a number") from None
    return value


def _raw(values: Mapping[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if "url" in values:
        raw["url"] = values["url"].strip()
    if "event_types" in values:
        raw["event_types"] = _items(values["event_types"])
    if "description" in values:
        raw["description"] = values["description"].strip()
    if "retry_schedule" in values:
        raw["retry_schedule_seconds"] = schedule_of(values["retry_schedule"])
    if "rate_limit" in values:
        raw["rate_limit_per_second"] = rate_of(values["rate_limit"])
    return raw


def refusal(exc: InvalidEndpoint) -> Problem:
    return invalid(FORM_NAMES.get(exc.field, exc.field), exc.reason)


async def fields_of(
    values: Mapping[str, str], hooks: WebhookSettings, *, creating: bool
) -> dict[str, Any]:
    """The endpoint fields the form's ``values`` set, checked (a URL through the SSRF
    guard too)."""
    try:
        fields = endpoints.checked(_raw(values), hooks, partial=not creating)
        if "url" in fields:
            await endpoints.check_reachable(fields["url"], hooks)
    except InvalidEndpoint as exc:
        raise refusal(exc) from None
    return fields


def _seconds(delays: Sequence[float]) -> str:
    return ", ".join(f"{d:g}" for d in delays)


def text_of(endpoint: Mapping[str, Any]) -> dict[str, str]:
    """An endpoint's fields as the form's text."""
    schedule = endpoint.get("retry_schedule_seconds")
    rate = endpoint.get("rate_limit_per_second")
    return {
        "url": str(endpoint["url"]),
        "event_types": ", ".join(endpoint["event_types"]),
        "description": str(endpoint["description"]),
        "retry_schedule": "" if schedule is None else _seconds(schedule),
        "rate_limit": "" if rate is None else f"{rate:g}",
    }


def global_schedule(hooks: WebhookSettings) -> str:
    return _seconds(hooks.retry_schedule_seconds)


def changes(before: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The fields whose value differs from ``before``'s, by form name."""
    shown = text_of(before)
    after = text_of({**before, **fields})
    return {name: after[name] for name in FIELDS if after[name] != shown[name]}
