"""The incident routes the app adds to its table: the Alertmanager hook, Slack
interactions, the one-click actions and the incident page."""

from __future__ import annotations

from api.incidents import hook, page, slack_interactions
from api.incidents.actions.views import action_routes
from api.routing import RouteSpec

HOOKS_PREFIX = "/hooks/"  # authenticated by bearer token or signature, not cookies


def incident_routes() -> list[RouteSpec]:
    return [*hook.ROUTES, *slack_interactions.ROUTES, *action_routes(), *page.ROUTES]
