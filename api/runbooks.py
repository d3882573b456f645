"""``/runbooks/{name}.md``: the runbooks shipped in the ``runbooks`` package, where
every alert's ``runbook_url`` and the dashboards' runbook links point. Served as Markdown
to anyone signed in: a runbook must open from the page that links to it, mid-incident."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from api.problems import Problem
from api.routing import Param, RouteSpec
from core import assets

RUNBOOKS = assets.runbooks()
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,99}$")


def runbook_names() -> list[str]:
    return sorted(path.stem for path in RUNBOOKS.glob("*.md"))


async def runbook(request: Request) -> Response:
    name = str(request.path_params["name"])
    path = RUNBOOKS / f"{name}.md"
    if not NAME.match(name) or not path.is_file():
        raise Problem(404, f"no runbook named {name!r}")
    return Response(path.read_bytes(), media_type="text/markdown; charset=utf-8")


ROUTES = (
    RouteSpec(
        "/runbooks/{name}.md",
        "runbook",
        runbook,
        "signed_in",
        "text",
        "A runbook, as Markdown",
        params=(
            Param(
                "name",
                {"type": "string", "enum": runbook_names()},
                "the alert or topic it covers",
                location="path",
                required=True,
            ),
        ),
        tags=("runbooks",),
        media_type="text/markdown",
    ),
)
