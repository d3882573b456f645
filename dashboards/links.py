"""Where dashboards and alerts point: opsdeck's API (drilldowns, one-click actions,
runbooks) and Grafana, at the deployment's public URLs.

The URLs are settings, never literals here: the API's is ``incidents.public_url``
(``OPSDECK_INCIDENTS__PUBLIC_URL``, also the base of the links in e-mails), Grafana's is
``grafana_public_url`` (``OPSDECK_GRAFANA_PUBLIC_URL``; ``GRAFANA_URL`` is where opsdeck
calls Grafana's HTTP API, often an address no browser reaches). :class:`PublicUrls` reads
both once; everything that writes a link for a person takes it.

Dashboards carry the API's URL in the hidden constant variable ``api_url``, so a data link
reads ``${api_url}/bookings?...`` and only that variable's value depends on the
deployment. Grafana's file provisioning interpolates environment variables in its YAML but
not in dashboard JSON, so the value is written when the JSON is generated: the committed
files with the default settings, a deployment's own by ``opsdeck dashboards provision``
(and ``push``) with its settings. A constant, not a hidden textbox: Grafana 11 no longer
lets a ``var-api_url=`` URL parameter change a constant (grafana/grafana#82682), so a link
someone shares cannot send every drilldown and action of a dashboard to another host.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from core.settings import Settings

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


def _query(params: dict[str, str], time_range: str | None = TIME_RANGE) -> str:
    # Grafana variables (${...}) must reach Grafana unescaped.
    encoded = urlencode(params, safe="${}.:")
    return "?" + "&".join(part for part in (time_range, encoded) if part)


def drilldown(title: str, path: str, *, window: str | None = None, **params: str) -> Link:
    """A link into an API drilldown page, filtered and limited to Grafana's time range, or
    to the last ``window`` (e.g. ``"24h"``) when the tile shows a fixed window whatever the
    dashboard's range."""
    time_range = f"from=now-{window}&to=now" if window else TIME_RANGE
    return Link(title, path + _query(params, time_range))


def detail(title: str, path: str) -> Link:
    """A link to one record's page (a row's own id in ``path``); a record has no time
    range, so none is sent."""
    return Link(title, path)


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


@dataclass(frozen=True)
class PublicUrls:
    """The deployment's public base URLs (no trailing slash), for absolute links: alert
    annotations, which Grafana's variables never reach, and the dashboards' ``api_url``."""

    api: str
    grafana: str

    @classmethod
    def of(cls, settings: Settings) -> PublicUrls:
        return cls(api=settings.incidents.public_url, grafana=settings.grafana_public_url)

    def api_url(self, path: str, **params: str) -> str:
        return self.api + path + (f"?{urlencode(params)}" if params else "")

    def action_url(self, name: str, alertname: str) -> str:
        if name not in ACTIONS:
            raise ValueError(f"unknown action {name!r}")
        return self.api_url(f"/actions/{name}", alertname=alertname, source="alert")

    def dashboard_url(self, uid: str, panel_id: int | None = None) -> str:
        url = f"{self.grafana}/d/{uid}"
        return url if panel_id is None else f"{url}?viewPanel={panel_id}"

    def runbook_url(self, alertname: str) -> str:
        """runbooks/<AlertName>.md, as the API serves the repository's runbooks."""
        return self.api_url(f"/runbooks/{alertname}.md")
