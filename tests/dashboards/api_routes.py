"""Resolve opsdeck API paths against the real Starlette app's routes, once it exists."""

from __future__ import annotations

import importlib
import re
from typing import Any

from starlette.routing import Match

# Grafana variables in a path stand for one path segment's value.
VARIABLE = re.compile(r"\$\{[^}]+\}|\$\w+")


def starlette_app() -> Any | None:
    """``api.app``'s application, or None while the API has none."""
    try:
        module = importlib.import_module("api.app")
    except ModuleNotFoundError:
        return None
    app = getattr(module, "app", None)
    if app is None and callable(getattr(module, "create_app", None)):
        from core.settings import ApiSettings, Settings

        # Building the app only reads settings; routes are fixed whatever their values.
        api = ApiSettings(secret_key="link-resolution-test-" + "k" * 32)
        app = module.create_app(Settings(api=api))
    return app


def resolves(app: Any, path: str, method: str = "GET") -> bool:
    concrete = VARIABLE.sub("1", path.split("?", 1)[0])
    scope = {"type": "http", "path": concrete, "method": method, "root_path": ""}
    return any(route.matches(scope)[0] == Match.FULL for route in app.routes)
