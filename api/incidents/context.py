"""What the incident parts of a running API share: the on-call file, the transports (one
HTTP client), and the clock. Built in the app's lifespan; tests pass their own clock and
an HTTP client that trusts their local CA.

Slack goes through ``slack_sdk`` (aiohttp), which cannot share the HTTP client: its TLS
context is made here from the system's trust, read when the transports are built (so
``SSL_CERT_FILE``/``SSL_CERT_DIR`` in the environment count, as for every OpenSSL client).
Email checks the SMTP server's certificate against the system's trust or
``smtp_ca_file``."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
from starlette.requests import Request

from api.incidents import grafana_annotations
from api.incidents.grafana_annotations import GrafanaAnnotations
from api.incidents.transports.base import Transport
from api.incidents.transports.email import EmailTransport
from api.incidents.transports.http import HttpSeam
from api.incidents.transports.opsgenie import OpsgenieTransport
from api.incidents.transports.pagerduty import PagerDutyTransport
from api.incidents.transports.slack import SlackTransport
from api.incidents.transports.sms import SmsTransport
from core.oncall import ONCALL_FILE, OnCall, load_oncall
from core.settings import IncidentSettings

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Incidents:
    settings: IncidentSettings
    oncall: OnCall
    transports: dict[str, Transport]
    clock: Clock = wall_clock
    http: httpx.AsyncClient | None = None
    annotations: GrafanaAnnotations | None = None
    background: set[object] = field(default_factory=set)


def transports(settings: IncidentSettings, client: httpx.AsyncClient) -> dict[str, Transport]:
    """The transports whose credentials are set."""
    seam = HttpSeam(client)
    found: dict[str, Transport] = {}
    if settings.slack_bot_token is not None:
        token = settings.slack_bot_token.get_secret_value()
        found["slack"] = SlackTransport(
            settings.slack_api_url,
            token,
            timeout=settings.request_timeout_seconds,
            ssl_context=ssl.create_default_context(),
        )
    if settings.pagerduty_routing_key is not None:
        key = settings.pagerduty_routing_key.get_secret_value()
        found["pagerduty"] = PagerDutyTransport(seam, settings.pagerduty_events_url, key)
    if settings.opsgenie_api_key is not None:
        genie = settings.opsgenie_api_key.get_secret_value()
        found["opsgenie"] = OpsgenieTransport(seam, settings.opsgenie_api_url, genie)
    if settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from:
        token = settings.twilio_auth_token.get_secret_value()
        found["sms"] = SmsTransport(
            seam, settings.twilio_api_url, settings.twilio_account_sid, token, settings.twilio_from
        )
    if settings.smtp_host:
        found["email"] = _email(settings)
    return found


def _email(settings: IncidentSettings) -> EmailTransport:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return EmailTransport(
        settings.smtp_host or "localhost",
        settings.smtp_port,
        settings.smtp_from,
        settings.public_url,
        username=settings.smtp_username,
        password=password,
        starttls=settings.smtp_starttls,
        ca_file=settings.smtp_ca_file,
        timeout=settings.request_timeout_seconds,
    )


def build(
    settings: IncidentSettings,
    client: httpx.AsyncClient,
    clock: Clock = wall_clock,
    grafana_url: str | None = None,
) -> Incidents:
    oncall = load_oncall(settings.oncall_file or ONCALL_FILE)
    grafana = grafana_annotations.sender(settings, grafana_url)
    return Incidents(settings, oncall, transports(settings, client), clock, client, grafana)


def incidents_of(request: Request) -> Incidents:
    found: Incidents = request.app.state.incidents
    return found
