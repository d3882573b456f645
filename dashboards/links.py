"""Where dashboards and alerts point: opsdeck's API (drilldowns, one-click actions) and Grafana.

The base URLs are set here and nowhere else. Dashboards carry the API's base URL as the
hidden constant variable ``api_url``, so a link reads ``${api_url}/bookings?...`` and a
deployment with another address changes one constant and rebuilds.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

# What a browser next to the docker-compose stack reaches; see docker-compose.yml.
API_BASE_URL = "http://localhost:8000"
GRAFANA_BASE_URL = "http://localhost:3000"
API_URL_VARIABLE = "api_url"

# Grafana's time range in milliseconds; every drilldown and action carries it.
TIME_RANGE = "from=${__from}&to=${__to}"

ACTIONS = (
    "acknowledge",
    "create-incident",
    "mute-1h",
    "suspend-payouts",
    "resume-payouts",
    "open-finance-ticket",
    "notify-partners",
    "reprocess-dead-letters",
    "maintenance-on",
    "maintenance-off",
)


@dataclass(frozen=True)
class Link:
    """A data link: a title and a URL template under the API's base URL."""

    title: str
    path: str  # starts with "/", may hold Grafana variables and query parameters

    @property
    def url(self) -> str:
        return "${" + API_URL_VARIABLE + "}" + self.path


def _query(params: dict[str, str]) -> str:
    # Grafana variables (${...}) must reach Grafana unescaped.
    encoded = urlencode(params, safe="${}.:")
    return f"?{TIME_RANGE}&{encoded}" if encoded else f"?{TIME_RANGE}"


def drilldown(title: str, path: str, **params: str) -> Link:
    """A link into an API drilldown page, filtered and limited to Grafana's time range."""
    return Link(title, path + _query(params))


def action(name: str, **params: str) -> Link:
    """A link to a one-click action; the API asks for confirmation, then acts."""
    if name not in ACTIONS:
        raise ValueError(f"unknown action {name!r}")
    title = name.replace("-", " ").capitalize()
    return Link(title, f"/actions/{name}" + _query({"source": "grafana", **params}))


def alert_actions(alertname: str, extra: tuple[str, ...] = ()) -> list[Link]:
    """The actions every alert offers (seed 001: acknowledge, create incident, mute 1 h)."""
    names = ("acknowledge", "create-incident", "mute-1h", *extra)
    return [action(name, alertname=alertname) for name in names]


def api_url(path: str, **params: str) -> str:
    """An absolute API URL (for alert annotations, which Grafana variables never reach)."""
    return API_BASE_URL + path + (f"?{urlencode(params)}" if params else "")


def action_url(name: str, alertname: str) -> str:
    if name not in ACTIONS:
        raise ValueError(f"unknown action {name!r}")
    return api_url(f"/actions/{name}", alertname=alertname, source="alert")


def dashboard_url(uid: str, panel_id: int | None = None) -> str:
    url = f"{GRAFANA_BASE_URL}/d/{uid}"
    return url if panel_id is None else f"{url}?viewPanel={panel_id}"


def runbook_url(alertname: str) -> str:
    """runbooks/<AlertName>.md, as the API serves the repository's runbooks."""
    return api_url(f"/runbooks/{alertname}.md")
