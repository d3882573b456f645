"""Server-rendered pages: the context every template gets (who is signed in, what they may
open, the CSRF token) and the error page people see instead of a problem document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from api.auth.principal import Principal
from api.display.viewer import zone_of
from api.problems import Problem
from api.runtime import Runtime


@dataclass(frozen=True)
class NavItem:
    title: str
    href: str
    permission: str
    section: str = ""  # the group of the navigation it is listed under


def grouped(entries: list[NavItem]) -> list[tuple[str, list[NavItem]]]:
    """(group, its entries) for the groups that have any, in the entries' order; an entry
    without a group is listed under "More"."""
    groups: dict[str, list[NavItem]] = {}
    for item in entries:
        groups.setdefault(item.section or "More", []).append(item)
    return list(groups.items())


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    runtime: Runtime = request.app.state.runtime
    principal: Principal | None = getattr(request.state, "principal", None)
    nav: list[NavItem] = request.app.state.nav
    allowed = [item for item in nav if principal is not None and principal.can(item.permission)]
    base = {
        "principal": principal,
        "nav": allowed,
        "nav_groups": grouped(allowed),
        "csrf_token": request.scope.get("state", {}).get("csrf_token", ""),
        "request_id": request.scope.get("state", {}).get("request_id", ""),
        "current_path": request.url.path,
        "time_zone": zone_of(request),
    }
    return runtime.templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status
    )


def error_page(request: Request, problem: Problem) -> Response:
    response = render(request, "error.html", {"problem": problem}, status=problem.status)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response
