"""The Starlette app: explicit routes generated from the route table, explicit pure-ASGI
middleware, and the background workers (usage roll-up, audit retention) in its lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import psycopg
from psycopg_pool import PoolTimeout
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api import enrolment, home, navigation, preferences, runbooks, signin, system, workers
from api.drilldowns import unmask
from api.drilldowns.catalog import DETAIL_VIEWS, LIST_VIEWS
from api.drilldowns.views import detail_routes, list_routes
from api.finance import views as finance_views
from api.http_metrics import HttpMetrics
from api.incidents import context as incident_context
from api.incidents import escalation_loop
from api.incidents import metrics as incident_metrics
from api.incidents.routes import HOOKS_PREFIX, incident_routes
from api.live import routes as live_routes
from api.live.hub import Hub
from api.manage import key_views, user_views
from api.middleware.body_limit import BodyLimitMiddleware
from api.middleware.client_address import ClientAddressMiddleware
from api.middleware.csrf import CsrfMiddleware
from api.middleware.request_context import RequestContextMiddleware
from api.middleware.security_headers import SecurityHeadersMiddleware, grafana_origin
from api.pages import NavItem, error_page
from api.problems import Problem, problem_response
from api.routing import RouteSpec, guarded
from api.runtime import open_runtime, secret_key
from api.signing import Keys
from api.status import views as status_views
from api.webhooks.routes import INBOUND_PREFIX, webhook_routes
from core.settings import Settings

log = logging.getLogger(__name__)


def route_specs() -> list[RouteSpec]:
    """Every route the API serves; the app, the OpenAPI document and the route x role test
    are all made from this list."""
    specs = [*system.ROUTES, *signin.ROUTES, *enrolment.ROUTES, *unmask.ROUTES, *runbooks.ROUTES]
    specs += [*home.ROUTES, *preferences.ROUTES]
    specs += live_routes.routes()  # before the detail pages, whose /{id} would match them
    for view in LIST_VIEWS:
        specs += list_routes(view)
    for detail in DETAIL_VIEWS:
        specs += detail_routes(detail)
    specs += finance_views.routes() + status_views.routes()
    specs += user_views.routes() + key_views.routes()
    return specs + webhook_routes() + incident_routes()


def _wants_html(request: Request) -> bool:
    if hasattr(request.state, "html"):
        return bool(request.state.html)
    return "text/html" in request.headers.get("accept", "")


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)
    if _wants_html(request) and hasattr(request.app.state, "runtime"):
        return error_page(request, exc)
    return problem_response(exc, request.scope.get("state", {}).get("request_id"))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    problem = Problem(exc.status_code, str(exc.detail), headers=headers)
    return await _problem(request, problem)


async def _database_error(request: Request, exc: Exception) -> Response:
    """A query cut off by the statement timeout, or a database that went away: the client
    may retry (with a narrower filter), so 503 rather than 500."""
    if isinstance(exc, psycopg.errors.QueryCanceled):
        problem = Problem(503, "the query took too long; narrow the time range or add a filter")
    else:
        log.warning("database unavailable: %s", exc)
        problem = Problem(503, "the database is unavailable; retry shortly")
    problem.headers["Retry-After"] = "5"
    return await _problem(request, problem)


def create_app(settings: Settings, http_client: httpx.AsyncClient | None = None) -> Starlette:
    """The app; ``http_client`` (default: a new one) is what the incident transports and
    Alertmanager calls go through, so tests can trust a local CA."""
    keys = Keys(secret_key(settings))
    metrics = HttpMetrics()
    specs = route_specs()
    metrics.declare((s.path, m) for s in specs for m in s.methods)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_runtime(settings, metrics) as runtime:
            app.state.runtime = runtime
            timeout = settings.incidents.request_timeout_seconds
            async with AsyncExitStack() as stack:
                client = http_client
                if client is None:
                    client = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout))
                grafana = str(settings.grafana_url) if settings.grafana_url else None
                incidents = incident_context.build(settings.incidents, client, grafana_url=grafana)
                app.state.incidents = incidents
                async with (
                    workers.running(runtime),
                    escalation_loop.running(runtime, incidents),
                    incident_metrics.running(runtime, incident_routes()) as open_incidents,
                    Hub(runtime).running() as live,
                ):
                    app.state.open_incidents = open_incidents
                    app.state.live = live
                    yield

    app = Starlette(
        routes=[Route(s.path, guarded(s), methods=list(s.methods), name=s.name) for s in specs],
        middleware=[
            Middleware(ClientAddressMiddleware, trusted_proxies=settings.api.trusted_proxies),
            Middleware(
                SecurityHeadersMiddleware,
                frame_origin=grafana_origin(settings.api.grafana_origin or settings.grafana_url),
                hsts=settings.api.cookie_secure,
            ),
            Middleware(RequestContextMiddleware, metrics=metrics),
            Middleware(BodyLimitMiddleware, max_bytes=settings.api.max_body_bytes),
            Middleware(
                CsrfMiddleware,
                keys=keys,
                secure_cookie=settings.api.cookie_secure,
                exempt_prefixes=(INBOUND_PREFIX, HOOKS_PREFIX),
            ),
        ],
        exception_handlers={
            Problem: _problem,
            HTTPException: _http_error,
            psycopg.errors.QueryCanceled: _database_error,
            psycopg.OperationalError: _database_error,
            PoolTimeout: _database_error,
        },
        lifespan=lifespan,
    )
    app.state.specs = specs
    views = (*LIST_VIEWS, finance_views.LIST)
    app.state.nav = navigation.sectioned(
        [
            *(NavItem(v.title, f"/{v.name}", v.permission) for v in views),
            NavItem("Users", "/users", "users.manage"),
            NavItem("API keys", "/api-keys", "api_keys.manage"),
        ]
    )
    return app
