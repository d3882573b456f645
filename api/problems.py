"""Errors as RFC 9457 ``application/problem+json``: one exception type, one response shape.

Handlers raise :class:`Problem`; the app turns it into a problem document for programs and
into an error page for people (routes that render HTML).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """A client-visible error: status, a title, a detail line, the parameters at fault and,
    when a parameter is unknown, the ones the route accepts (``accepted_params``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        invalid_params: Sequence[tuple[str, str]] = (),
        accepted_params: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or TITLES.get(status, "Error")
        self.detail = detail
        self.invalid_params = tuple(invalid_params)
        self.accepted_params = None if accepted_params is None else tuple(accepted_params)
        self.headers = dict(headers or {})

    def document(self, request_id: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if request_id:
            body["request_id"] = request_id
        if self.invalid_params:
            body["invalid_params"] = [
                {"name": name, "reason": reason} for name, reason in self.invalid_params
            ]
        if self.accepted_params is not None:
            body["accepted_params"] = list(self.accepted_params)
        return body


def invalid(name: str, reason: str) -> Problem:
    """A 400 naming the one parameter at fault."""
    return Problem(400, f"{name}: {reason}", invalid_params=[(name, reason)])


def problem_response(problem: Problem, request_id: str | None) -> JSONResponse:
    return JSONResponse(
        problem.document(request_id),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "invalid_params": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "reason"],
                "properties": {"name": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
        "accepted_params": {"type": "array", "items": {"type": "string"}},
    },
}
