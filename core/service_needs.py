"""What each service needs before it starts, in one table: ``opsdeck check-config``
reports from it and every long-running command checks it first (:func:`require_service`),
so the two can never disagree."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.settings import Settings, SettingsError, setting_label


def service_problems(settings: Settings, service: str) -> list[SettingsError]:
    """Every setting ``opsdeck <service>`` cannot start without that is missing or
    unusable (:data:`SERVICE_NEEDS`), in the table's order."""
    found = (need.problem(settings, service) for need in SERVICE_NEEDS[service])
    return [problem for problem in found if problem is not None]


def require_service(settings: Settings, service: str) -> None:
    """Raise the first of :func:`service_problems`: for a command to check at start, so
    that it stops on exactly what ``opsdeck check-config`` reports."""
    problems = service_problems(settings, service)
    if problems:
        raise problems[0]


@dataclass(frozen=True)
class Need:
    """A setting a service cannot start without: set, at least ``min_chars`` long, and a
    readable file when ``readable_file``; only when ``when`` (another setting) is set, if
    given, and only when set at all for an optional file."""

    setting: str  # dotted: "database_url", "api.secret_key"
    why: str
    min_chars: int = 1
    when: str | None = None
    readable_file: bool = False

    def problem(self, settings: Settings, service: str) -> SettingsError | None:
        if self.when is not None and _dotted(settings, self.when) is None:
            return None
        label = setting_label(tuple(self.setting.split(".")))
        value = _dotted(settings, self.setting)
        if value is None:
            if self.readable_file:
                return None
            when = f" when {setting_label(tuple(self.when.split('.')))} is set" if self.when else ""
            return SettingsError(
                label, f"not set, and opsdeck {service} needs it{when}; {self.why}"
            )
        if self.readable_file and not (Path(value).is_file() and os.access(value, os.R_OK)):
            return SettingsError(label, f"cannot read {value}; opsdeck {service} {self.why}")
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        if len(text) < self.min_chars:
            least = "empty" if self.min_chars == 1 else f"shorter than {self.min_chars} characters"
            return SettingsError(label, f"{least}, and opsdeck {service} needs more; {self.why}")
        return None


def _dotted(settings: Settings, path: str) -> Any:
    value: Any = settings
    for name in path.split("."):
        value = getattr(value, name)
    return value


_DATABASE = Need("database_url", "its tables live there")
_PSP_WEBHOOKS = "simulator.psp_webhook_url"
_CHAIN_KEY = Need(
    "audit.chain_key",
    "it links every audit row it writes with it (make one with `python -c "
    "'import secrets; print(secrets.token_urlsafe(48))'`)",
    min_chars=32,
)
_SECRETS_KEY = Need(
    "secrets_key",
    "the TOTP and webhook signing secrets in the database are sealed with it (make one with "
    "`opsdeck secrets new-key`)",
)

# What each command that runs as a service needs before it starts, in one place:
# `opsdeck check-config` reports from this table and require_service raises its first problem
# for a command's own check at start. tests/opsdeck/test_settings.py runs each
# command beside check-config and requires both to name the same setting.
SERVICE_NEEDS: dict[str, tuple[Need, ...]] = {
    "migrate": (_DATABASE,),
    "simulate": (
        _DATABASE,
        Need("simulator.stripe_webhook_secret", "it signs Stripe's webhooks", when=_PSP_WEBHOOKS),
        Need("simulator.paystack_secret_key", "it signs Paystack's webhooks", when=_PSP_WEBHOOKS),
    ),
    "exporter": (_DATABASE,),
    "worker": (_DATABASE, _CHAIN_KEY, _SECRETS_KEY),
    # `dashboards provision` renders files from settings alone: no database, no secret.
    "dashboards": (),
    "api": (
        _DATABASE,
        Need("redis_url", "sessions and rate limits live there"),
        Need(
            "api.secret_key",
            "it signs session cookies, CSRF tokens and cursors (make one with `python -c "
            "'import secrets; print(secrets.token_urlsafe(48))'`)",
            min_chars=32,
        ),
        _CHAIN_KEY,
        _SECRETS_KEY,
        Need(
            "incidents.alertmanager_token",
            "Alertmanager's webhook (/hooks/alertmanager) proves itself with it",
            when="alertmanager_url",
        ),
        Need("incidents.oncall_file", "reads the on-call policy from it", readable_file=True),
        Need("incidents.grafana_ca_file", "trusts Grafana's certificate by it", readable_file=True),
        Need("incidents.smtp_ca_file", "trusts the mail server's certificate", readable_file=True),
    ),
}
