"""The HTTP seam the transports send through (Slack goes through slack_sdk's own client), and
the one error type every transport raises.

A :class:`TransportError` is permanent (a 4xx other than 429: sending again cannot help)
or not (429, 5xx, timeouts, connection errors: the notifier retries). A 429 or 503 carries
the wait its ``Retry-After`` asks for, delay-seconds or an HTTP date
(:func:`core.retry.retry_after_of`). The ``httpx.AsyncClient`` is injected, so tests can
trust a local CA.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from core.retry import retry_after_of


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class HttpSeam:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post_json(
        self, url: str, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POST ``body`` as JSON; a 2xx response, or :class:`TransportError`."""
        return await self.post(url, headers, json=dict(body))

    async def post_form(
        self,
        url: str,
        fields: Mapping[str, str],
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``fields`` form-encoded (Twilio's API); as :meth:`post_json`."""
        return await self.post(url, headers, data=dict(fields), auth=auth)

    async def post(
        self, url: str, headers: Mapping[str, str] | None, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = await self.client.post(url, headers=dict(headers or {}), **kwargs)
        except httpx.TimeoutException as exc:
            raise TransportError(f"timed out: {url}", permanent=False) from exc
        except httpx.TransportError as exc:
            raise TransportError(f"cannot reach {url}: {exc}", permanent=False) from exc
        if response.is_success:
            return response
        status = response.status_code
        message = f"{url} answered {status}: {response.text[:200]}"
        wait = retry_after_of(status, response.headers)
        raise TransportError(
            message, permanent=400 <= status < 500 and status != 429, retry_after=wait
        )
