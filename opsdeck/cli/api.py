"""``opsdeck api``: the drilldown API (Starlette on uvicorn)."""

from __future__ import annotations

import argparse
import math
from typing import Any

from core.settings import Settings


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "api", help="serve the drilldowns, sign-in and the OpenAPI document"
    )
    parser.add_argument("--host", help="address to listen on (default: api.host)")
    parser.add_argument("--port", type=int, help="port to listen on (default: api.port, 8000)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app
    from api.middleware.request_context import RequestIdFilter
    from core.log_format import add_filter
    from core.service_needs import require_service

    require_service(settings, "api")

    app = create_app(settings)  # refuses to start without a secret key, a database, Redis
    settings.require("database_url", "opsdeck api")
    settings.require("redis_url", "opsdeck api", "sessions and rate limits live there")
    add_filter(RequestIdFilter())  # every line written while serving names its request
    uvicorn.run(
        app,
        host=args.host or settings.api.host,
        port=args.port or settings.api.port,
        log_config=None,
        access_log=False,  # the app writes its own JSON access log, with request ids
        # The app takes the client address from forwarded headers itself, only from
        # api.trusted_proxies (api/middleware/client_address.py); the peer stays the peer.
        proxy_headers=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=math.ceil(settings.live.shutdown_grace_seconds),
    )
    return 0
