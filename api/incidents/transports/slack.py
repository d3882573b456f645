"""Slack: ``chat.postMessage`` with Block Kit buttons (Acknowledge, Create incident, Mute
1h), and ``chat.update`` of that message when someone acts on the incident.

Slack's Web API is spoken by ``slack_sdk``'s :class:`AsyncWebClient` (bot token): it raises
:class:`SlackApiError` for ``ok: false`` answers and retries a dropped connection and a 429
whose ``Retry-After`` is short (:data:`INLINE_WAIT_SECONDS`). A longer wait is not slept
here, because the notifier holds the notification's row while it sends: it becomes a
retryable :class:`TransportError` carrying ``Retry-After``, and the notifier comes back.
Slack's error code is the error's message; codes in :data:`TRANSIENT`, 429 and 5xx may be
retried (a 429 or 503 with the wait its ``Retry-After`` asks for), every other error
(``channel_not_found``, ``invalid_auth``…) is permanent.
"""

from __future__ import annotations

import asyncio
import math
import ssl
from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from api.incidents.transports.base import Outgoing
from api.incidents.transports.http import TransportError
from core.retry import retry_after_of

BUTTONS = (("acknowledge", "Acknowledge", "primary"), ("create_incident", "Create incident", ""))
MUTE = ("mute_1h", "Mute 1h", "danger")
# Slack answers 200 with ok=false; these errors are worth another try.
TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable"})
INLINE_WAIT_SECONDS = 5  # the longest Retry-After waited for inside one send


def _rate_limit_wait(response: HttpResponse | None) -> float | None:
    if response is None or response.status_code != 429:
        return None
    return retry_after_of(response.status_code, response.headers)


class ShortRateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's 429 handler for short waits only: it sleeps what ``Retry-After`` asks
    (delay-seconds or an HTTP date, read by :func:`core.retry.retry_after_of`), once."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        wait = _rate_limit_wait(response)
        return wait is not None and wait <= INLINE_WAIT_SECONDS

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        # The library's own sleep reads only delta-seconds; this one reads both forms.
        state.next_attempt_requested = True
        await asyncio.sleep(_rate_limit_wait(response) or 0.0)
        state.increment_current_attempt()


def _button(action_id: str, text: str, style: str, incident: int) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": str(incident),
    }
    if style:
        button["style"] = style
    return button


def _text(incident: Mapping[str, Any]) -> str:
    return f"[{incident['severity']}] {incident['title']} ({incident['status']})"


def blocks(incident: Mapping[str, Any], footer: str | None = None) -> list[dict[str, Any]]:
    lines = [f"*{_text(incident)}*"]
    if incident.get("summary"):
        lines.append(str(incident["summary"]))
    if incident.get("runbook_url"):
        lines.append(f"<{incident['runbook_url']}|Runbook>")
    result: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}
    ]
    ident = int(incident["id"])
    if incident["status"] == "triggered":
        buttons = [_button(a, t, s, ident) for a, t, s in (*BUTTONS, MUTE)]
        result.append({"type": "actions", "block_id": f"incident-{ident}", "elements": buttons})
    if footer is not None:
        result.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return result


# What an update of the message says happened, by the first part of its kind ("<what>:<who>").
FOOTERS = {
    "ack": "Acknowledged",
    "resolved": "Resolved",
    "reopened": "Reopened",
    "reassigned": "Reassigned",
    "severity": "Severity changed",
    "note": "Note added",
    "mute-1h": "Muted for 1h",
    "create-incident": "Incident declared",
}


def footer(kind: str) -> str:
    """The context line of an updated message: ``ack:ada`` reads "Acknowledged by ada"."""
    action, _, who = kind.partition(":")
    done = FOOTERS.get(action, action)
    return f"{done} by {who}" if who else done


def _failure(method: str, exc: SlackApiError) -> TransportError:
    answer: AsyncSlackResponse = exc.response
    data = answer.data if isinstance(answer.data, dict) else {}
    error = str(data.get("error") or f"HTTP {answer.status_code}")
    status = answer.status_code
    transient = status == 429 or status >= 500 or error in TRANSIENT
    wait = retry_after_of(status, answer.headers)
    return TransportError(f"slack {method}: {error}", permanent=not transient, retry_after=wait)


class SlackTransport:
    name = "slack"

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: the TLS trust for ``api_url`` (default: the system's)."""
        self.client = AsyncWebClient(
            token=token,
            base_url=api_url.rstrip("/") + "/",
            timeout=max(1, math.ceil(timeout)),  # slack_sdk takes whole seconds
            ssl=ssl_context,
            retry_handlers=[AsyncConnectionErrorRetryHandler(), ShortRateLimitRetry()],
        )

    async def _call(self, method: str, pending: Awaitable[AsyncSlackResponse]) -> dict[str, str]:
        try:
            answer = await pending
        except SlackApiError as exc:
            raise _failure(method, exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransportError(f"slack {method}: {exc!r}", permanent=False) from exc
        channel, ts = answer.get("channel"), answer.get("ts")
        if not isinstance(channel, str) or not isinstance(ts, str):
            detail = f"{answer.data!r:.200}"
            raise TransportError(f"slack {method}: no channel and ts in {detail}", permanent=True)
        return {"channel": channel, "ts": ts}

    async def post(self, channel: str, text: str) -> dict[str, str]:
        """A plain message to ``channel``: where Slack put it (``channel``, ``ts``)."""
        posting = self.client.chat_postMessage(channel=channel, text=text)
        return await self._call("chat.postMessage", posting)

    async def send(self, note: Outgoing) -> dict[str, Any]:
        incident = note.incident
        text = _text(incident)
        if note.recipient != "update":
            posting = self.client.chat_postMessage(
                channel=note.recipient, text=text, blocks=blocks(incident)
            )
            return await self._call("chat.postMessage", posting)
        if note.previous is None:
            raise TransportError("the Slack message is not posted yet", permanent=False)
        updating = self.client.chat_update(
            channel=str(note.previous["channel"]),
            ts=str(note.previous["ts"]),
            text=text,
            blocks=blocks(incident, footer(note.kind)),
        )
        return await self._call("chat.update", updating)
