"""Settings: environment variables, files and an optional YAML file, validated once at start.

Every setting has one variable (``DATABASE_URL``, ``OPSDECK_API__SECRET_KEY``) and may also
come from a file, for secrets (core.settings_files). The first source that sets a value
wins, in this order:

1. the environment variable;
2. ``<VAR>_FILE``: the file it names (``OPSDECK_API__SECRET_KEY_FILE=/run/secrets/key``);
3. the secrets directory (``OPSDECK_SECRETS_DIR``, else ``/run/secrets`` when present): a
   file named after the variable, in lower or exact case (``opsdeck_api__secret_key``);
4. the YAML file (``--config FILE`` or ``OPSDECK_CONFIG``);
5. when none of those names a database or Redis, the settings a running ``opsdeck demo``
   left in the data directory (core.running_demo);
6. the defaults below.

``DATABASE_PASSWORD`` (or its file) supplies the password of a ``DATABASE_URL`` written
without one, so the URL can stay in plain configuration and only the password is a secret;
``REDIS_PASSWORD`` does the same for ``REDIS_URL``.

Every command loads :class:`Settings` through :func:`load_settings`, which turns any
problem into a :class:`SettingsError` naming the setting; the CLI prints that one line and
exits with status 2. ``core/service_needs.py`` says which settings each long-running command
cannot start without (``opsdeck check-config`` reports them all at once). Thresholds and
selectors that alerts, dashboards and the simulator share live here too, so a number is
never written twice.
"""

from __future__ import annotations

import base64
import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit, urlunsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from core import running_demo, settings_files
from core.settings_files import SECRETS_DIR_ENV, FileSettingError

CONFIG_ENV = "OPSDECK_CONFIG"
ENV_PREFIX = "OPSDECK_"
NESTED_DELIMITER = "__"

# Top-level settings read from well-known variable names instead of OPSDECK_*.
WELL_KNOWN_ENV = {
    "database_url": "DATABASE_URL",
    "database_password": "DATABASE_PASSWORD",
    "platform_database_url": "PLATFORM_DATABASE_URL",
    "redis_url": "REDIS_URL",
    "redis_password": "REDIS_PASSWORD",
    "prometheus_url": "PROMETHEUS_URL",
    "alertmanager_url": "ALERTMANAGER_URL",
    "grafana_url": "GRAFANA_URL",
}


class SettingsError(Exception):
    """A setting is missing or wrong; ``str()`` is the one line shown to the user."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


def _url_checker(schemes: tuple[str, ...], example: str) -> AfterValidator:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            raise ValueError(
                f"expected a URL like {example}, got scheme {parts.scheme or 'none'!r}"
            )
        if not parts.hostname and not parts.path and "host=" not in (parts.query or ""):
            raise ValueError(f"expected a URL like {example}, got no host")
        return value

    return AfterValidator(check)


PostgresUrl = Annotated[
    str,
    _url_checker(
        ("postgresql", "postgres", "postgresql+psycopg"), "postgresql://user@host:5432/db"
    ),
]
RedisUrl = Annotated[str, _url_checker(("redis", "rediss", "unix"), "redis://host:6379/0")]
HttpUrl = Annotated[str, _url_checker(("http", "https"), "http://host:9090")]


def _base_url(value: str) -> str:
    # Links are built as base + "/path?query": a query or fragment here would break them.
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ValueError(f"expected a base URL without query or fragment, got {value!r}")
    return value.rstrip("/")


# Where a browser reaches a service: the base of the links opsdeck writes for people.
PublicUrl = Annotated[HttpUrl, AfterValidator(_base_url)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(
            f"expected an address or network like 127.0.0.1/32, got {value!r}"
        ) from None
    return value


Network = Annotated[str, AfterValidator(_network)]
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveSeconds = Annotated[float, Field(gt=0)]
Severity = Annotated[str, Field(pattern="^(critical|high|medium)$")]

# A secret that proves a caller (a signing secret, a shared secret, a bearer token): an
# empty one would let anybody sign (``compare_digest(b"", b"")`` is true, an HMAC under an
# empty key is anybody's), a short one can be guessed. Refused when set at all.
SECRET_MIN_CHARS = 16


def _long_secret(value: SecretStr) -> SecretStr:
    length = len(value.get_secret_value().strip())
    if length == 0:
        raise ValueError("empty: a secret that proves a caller cannot be blank")
    if length < SECRET_MIN_CHARS:
        raise ValueError(
            f"shorter than {SECRET_MIN_CHARS} characters: a secret that proves a caller "
            "must not be guessable"
        )
    return value


ProvingSecret = Annotated[SecretStr, AfterValidator(_long_secret)]


def _fernet_key(value: SecretStr) -> SecretStr:
    # Fernet's key format (cryptography.fernet): 32 bytes, URL-safe base64 (44 characters).
    try:
        raw = base64.urlsafe_b64decode(value.get_secret_value().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(
            "expected a key made by `opsdeck secrets new-key` (32 bytes, URL-safe base64)"
        )
    return value


SecretsKey = Annotated[SecretStr, AfterValidator(_fernet_key)]

# JSON a client sends nests at most this deep (core.json_depth): Alertmanager's, Slack's
# and the PSPs' payloads nest under ten levels.
JSON_MAX_DEPTH = 64


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExporterSettings(Section):
    host: str = "127.0.0.1"
    port: Port = 9464
    # How often the commit horizon is read and every collector folds the rows committed
    # since: the dial between freshness and database cost. Each fold has a fixed cost, so
    # the exporter's PostgreSQL CPU is nearly proportional to 1 / interval (measured: 2.2
    # CPU s/min at 0.2 s, 1.6 at 0.3 s, 100 payment attempts/s; while the platform commits
    # nothing, a tick costs only the horizon's reading); a row shows in /metrics
    # about horizon_margin_seconds + interval + 0.1 s after its commit at most.
    fold_interval_seconds: PositiveSeconds = 0.3
    # State-like gauges (bounded index queries) are refreshed at most this often.
    gauge_interval_seconds: PositiveSeconds = 1.0
    statement_timeout_seconds: PositiveSeconds = 5.0
    # Extra look-back on the commit horizon: covers the instant between a transaction
    # taking its start time and showing it in pg_stat_activity, and platforms whose event
    # times come from application clocks (then: at least their clock skew). The same margin
    # past the last commit bounds the event times an idle exporter still reads (the
    # horizon's ceiling, core/horizon.py): an event stamped later than that after its commit
    # is counted at the platform's next commit.
    horizon_margin_seconds: Annotated[float, Field(ge=0)] = 0.25
    # Without pg_stat_activity (no pg_read_all_stats, or a replica) the horizon trails the
    # clock by this much: it must exceed the platform's longest writing transaction.
    horizon_lookback_seconds: PositiveSeconds = 10.0
    # Sessions beyond opsdeck's own (core/application_names.py) that never write platform
    # tables, left out of the horizon so that a long read does not hold the KPIs back.
    horizon_ignore_applications: tuple[str, ...] = ()
    # Catch-up folds read at most this much event time per transaction.
    max_fold_window_seconds: PositiveSeconds = 86_400.0
    # Folds of at most this much event time (steady state) reuse generic plans instead of
    # planning every query for every fold; 0 plans every fold (exporters/plans.py).
    generic_plan_max_window_seconds: Annotated[float, Field(ge=0)] = 60.0
    # Replicas share this advisory lock; the holder folds and serves the KPIs, the others
    # stand by (serving only their own health) until it goes.
    leader_lock_key: int = 7_220_260_001
    # How often the leader verifies it still holds the lock and a standby asks for it: a
    # standby takes over within about this long of the leader's session dying.
    leader_check_seconds: PositiveSeconds = 1.0
    # Series the exporter should expose at most; it logs its count against this on start.
    series_budget: Annotated[int, Field(gt=0)] = 2_000
    # Keys the customer_ref Grafana's double-booking panel shows (HMAC of the customer id):
    # without the key nobody can tell which customer a ref is. Unset: no ref is recorded.
    customer_ref_key: ProvingSecret | None = None
    # How often a replica that does not fold checks whether it was elected (and must load
    # the saved values) or, cut off from ops, whether ops is reachable again.
    standby_refresh_seconds: PositiveSeconds = 0.5
    # Bounded label values: api_logs.route outside this list is exported as "other".
    api_routes: tuple[str, ...] = (
        "/v1/availability",
        "/v1/bookings",
        "/v1/bookings/{id}",
        "/v1/bookings/{id}/cancel",
        "/v1/bookings/{id}/confirm",
        "/v1/customers",
        "/v1/customers/{id}",
        "/v1/locations",
        "/v1/payment_intents",
        "/v1/payment_intents/{id}/capture",
        "/v1/payment_intents/{id}/confirm",
        "/v1/refunds",
        "/v1/resources",
        "/v1/webhooks/paystack",
        "/v1/webhooks/stripe",
    )
    methods: tuple[str, ...] = ("DELETE", "GET", "PATCH", "POST", "PUT")
    failure_codes: tuple[str, ...] = (
        "authentication_required",
        "card_declined",
        "expired_card",
        "insufficient_funds",
        "processing_error",
    )
    api_duration_buckets_seconds: tuple[float, ...] = (
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
    )
    resolution_buckets_seconds: tuple[float, ...] = (
        300,
        900,
        1_800,
        3_600,
        7_200,
        14_400,
        28_800,
        43_200,
        86_400,
        172_800,
        259_200,
        604_800,
    )
    currencies: tuple[str, ...] = ("EUR", "GBP", "NGN", "USD")
    calendar_providers: tuple[str, ...] = ("google", "ical", "outlook")
    services: tuple[str, ...] = ("booking_api", "calendar_sync", "payment_webhook_handler")


class Thresholds(Section):
    """The seed-001 alert thresholds; alert rules, runbooks and injections read these."""

    booking_conflict_rate: Ratio = 0.001
    api_5xx_rate: Ratio = 0.01
    # ...and at least this many 5xx in those 5 minutes: on a quiet platform (a few hundred
    # requests in 5 minutes, 0.3 % of them 5xx as usual) three unlucky errors are already
    # 1 %, and that is chance, not an outage.
    api_5xx_min_errors: Annotated[int, Field(ge=1)] = 10
    webhook_queue_depth: Annotated[int, Field(ge=0)] = 50
    reconciliation_drift: Ratio = 0.005
    reconciliation_drift_suspend_payouts: Ratio = 0.01
    chargeback_rate: Ratio = 0.005
    unprocessed_bookings: Annotated[int, Field(ge=0)] = 10
    unprocessed_after_seconds: PositiveSeconds = 600.0
    booking_api_down_seconds: PositiveSeconds = 60.0
    # A service whose latest health check is older than this reads down: a checker that
    # died (with the host it ran on) must not leave its last `ok` standing. Checks come
    # every 15 s, so this is six missed in a row, not one slow write.
    service_check_stale_seconds: PositiveSeconds = 90.0
    support_time_to_resolve_seconds: PositiveSeconds = 86400.0
    # The bookings timeline's anomaly band: a minute this many standard deviations off the
    # last hour's mean is a drop or a spike; below the floor (bookings a minute) the spread
    # is noise, so the z-score is read against the floor instead.
    bookings_anomaly_z: Annotated[float, Field(gt=0)] = 3.0
    bookings_anomaly_min_stddev: Annotated[float, Field(gt=0)] = 1.0
    # Below this many captured live payments in 30 days the chargeback rate is read against
    # this floor: right after Prometheus starts, one chargeback over a few hundred captures
    # is not a 0.5 % rate.
    chargeback_min_payments_30d: Annotated[int, Field(ge=1)] = 1000
    # A transaction with no PSP report yet, younger than this, is pending, not drift: the
    # PSP's report is not due. Older ones count as seed 001's query counts them.
    reconciliation_grace_seconds: PositiveSeconds = 300.0
    # Payment failures against their own baseline, as the bookings band: the 5-minute
    # failure ratio this many standard deviations above the last hour's mean (the spread
    # read against the floor when smaller), and above an absolute floor as well.
    payment_failure_anomaly_z: Annotated[float, Field(gt=0)] = 3.0
    payment_failure_min_stddev: Ratio = 0.02
    payment_failure_min_ratio: Ratio = 0.2
    # A PSP is out when its 5-minute success ratio falls below this while it still gets
    # at least the given attempts a minute: a quiet PSP is not an outage, and below 30
    # attempts in 5 minutes a run of ordinary declines can halve the ratio by chance.
    psp_outage_success_ratio: Ratio = 0.5
    psp_outage_min_attempts_per_minute: Annotated[float, Field(ge=0)] = 6.0
    # The payment webhook handler and calendar sync: down (or silent) for this long.
    service_down_seconds: PositiveSeconds = 300.0


class SimulatorSettings(Section):
    writers: Annotated[int, Field(ge=1, le=256)] = 8
    test_mode_share: Ratio = 0.04
    # Shares of charges the PSP feed never reports, or reports with another amount. The
    # drift ratio sums minor units across currencies, so an NGN charge (about 1500x a USD
    # one) weighs most: one missing is 0.1-0.2 % of a small-scale day. At 1 in 5000 a plain
    # day stays well under the 0.5 % threshold; at 1 in 1000 it came within reach of it.
    psp_missing_share: Ratio = 0.0002
    psp_different_share: Ratio = 0.0005
    psp_delay_seconds: PositiveSeconds = 5.0
    # When set, the live stream reports charges to the gateway's inbound PSP webhooks
    # (`<url>/stripe`, `<url>/paystack`), signed, instead of writing psp_transactions itself.
    psp_webhook_url: HttpUrl | None = None
    stripe_webhook_secret: ProvingSecret | None = None
    paystack_secret_key: ProvingSecret | None = None
    psp_webhook_duplicate_share: Ratio = 0.05
    psp_webhook_bad_signature_share: Ratio = 0.01
    psp_webhook_reorder_share: Ratio = 0.05


class ApiSettings(Section):
    """The drilldown API (``opsdeck api``): sign-in, limits, masking, paging."""

    host: str = "127.0.0.1"
    port: Port = 8000
    # Signs session cookies, CSRF tokens and cursors; `opsdeck api` refuses to start without.
    secret_key: SecretStr | None = None
    session_ttl_seconds: PositiveSeconds = 8 * 3600.0
    # A session's user (role, disabled, session version) is read from the database on load
    # and trusted this long at most: a demoted or disabled user loses access within it.
    session_recheck_seconds: Annotated[float, Field(ge=0, le=10)] = 2.0
    # Served over HTTPS (behind a TLS proxy): cookies get the Secure flag and responses
    # HSTS. Set false only for plain HTTP on a local machine (the demo, tests).
    cookie_secure: bool = True
    # The Grafana origin allowed to frame the pages (CSP frame-ancestors); GRAFANA_URL's
    # origin when unset, and no framing at all when neither is set.
    grafana_origin: HttpUrl | None = None
    # Trusted-proxy SSO: an auth proxy (oauth2-proxy) at these addresses names the user in
    # `trusted_proxy_header` and proves itself with the shared secret.
    trusted_proxy_addresses: tuple[str, ...] = ()
    trusted_proxy_header: str = "X-Forwarded-Email"
    trusted_proxy_secret_header: str = "X-Opsdeck-Proxy-Secret"  # noqa: S105 - a header name
    trusted_proxy_secret: ProvingSecret | None = None
    # Behind these proxies (addresses or networks: the TLS proxy, a load balancer) the client
    # is the right-most address of Forwarded / X-Forwarded-For that is not one of them; from
    # any other peer the headers are ignored. Rate limits, the audit and the logs use it.
    trusted_proxies: tuple[Network, ...] = ()
    # Sign-in, in Redis and before any database work: attempts per client address per
    # window, then a backoff after repeated failures of one user from one address and of one
    # address (doubling from base up to max): no address can lock another out.
    login_attempts_per_address: Annotated[int, Field(ge=1)] = 50
    login_window_seconds: Annotated[int, Field(ge=1)] = 900
    login_user_failures_before_backoff: Annotated[int, Field(ge=1)] = 5
    login_address_failures_before_backoff: Annotated[int, Field(ge=1)] = 20
    login_backoff_base_seconds: PositiveSeconds = 1.0
    login_backoff_max_seconds: PositiveSeconds = 900.0
    # An account without a two-factor device enrols one at sign-in: the new secret waits in
    # Redis this long for a code from it (then the sign-in starts over).
    totp_enrolment_ttl_seconds: PositiveSeconds = 600.0
    requests_per_minute: Annotated[int, Field(ge=1)] = 1200
    max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    pii_unmask_ttl_seconds: PositiveSeconds = 900.0
    unmask_reason_min_chars: Annotated[int, Field(ge=1)] = 10
    # Rows holding more free text than this (bodies, traces) are masked in a worker thread.
    pii_off_loop_chars: Annotated[int, Field(ge=0)] = 16_384
    page_size_default: Annotated[int, Field(ge=1, le=1000)] = 50
    page_size_max: Annotated[int, Field(ge=1, le=1000)] = 500
    export_max_rows: Annotated[int, Field(ge=1)] = 10_000_000
    export_batch_rows: Annotated[int, Field(ge=100)] = 5_000
    # Exports run on their own pool (per database) so a slow reader never holds a connection
    # the pages need; at most this many per principal and in all (slots in Redis), each cut
    # at the deadline (its transaction too: idle_in_transaction_session_timeout).
    export_pool_size: Annotated[int, Field(ge=1, le=50)] = 4
    exports_per_principal: Annotated[int, Field(ge=1)] = 2
    exports_total: Annotated[int, Field(ge=1)] = 4
    export_deadline_seconds: PositiveSeconds = 900.0
    # Pages whose filter no index can answer (reconciliation status) scan at most this many
    # rows; a short page then carries a cursor to continue the scan.
    scan_budget_rows: Annotated[int, Field(ge=100)] = 5_000
    statement_timeout_seconds: PositiveSeconds = 10.0
    # Pages read a few hundred rows: starting parallel workers costs more than it saves.
    parallel_workers_per_query: Annotated[int, Field(ge=0, le=64)] = 0
    pool_max_connections: Annotated[int, Field(ge=2, le=200)] = 10
    body_preview_bytes: Annotated[int, Field(ge=64)] = 4096
    # Full-text search reads matches from the GIN index when that costs fewer row visits
    # than walking the range newest first; one match fetched from the index costs this many
    # walked rows (measured: ~13 us against ~1.7 us).
    search_index_row_cost: Annotated[float, Field(gt=0)] = 8.0
    # The estimates can be wrong (a word rare in the window but common over 30 days is
    # dear to collect from the index): the chosen plan gets this long, then the other runs.
    search_plan_budget_seconds: PositiveSeconds = 0.1
    # Lists count their matches exactly up to this many (a LIMITed count, which gets
    # count_budget_seconds); past either they show the planner's estimate, marked "about".
    count_exact_cap: Annotated[int, Field(ge=0)] = 10_000
    count_budget_seconds: PositiveSeconds = 0.2
    timeline_window_seconds: PositiveSeconds = 900.0
    timeline_max_events: Annotated[int, Field(ge=1)] = 200
    # Seed 004's fraud risk levels (score below medium: low; at or above high: high).
    fraud_medium_score: Annotated[int, Field(ge=0, le=100)] = 30
    fraud_high_score: Annotated[int, Field(ge=0, le=100)] = 70
    fraud_velocity_per_hour: Annotated[int, Field(ge=1)] = 5
    fraud_amount_factor: Annotated[float, Field(gt=1)] = 3.0
    # The usage report's roll-up of platform.api_logs: how often, and how far behind the
    # commit horizon (without pg_stat_activity it trails the clock by the lookback).
    usage_rollup_interval_seconds: PositiveSeconds = 30.0
    usage_rollup_step_seconds: PositiveSeconds = 3600.0
    usage_horizon_lookback_seconds: PositiveSeconds = 10.0
    # The audit log trigger refuses to delete younger rows, so this cannot go below 90.
    audit_retention_days: Annotated[int, Field(ge=90)] = 90
    audit_retention_interval_seconds: PositiveSeconds = 3600.0
    # Requests per API key are counted in each API process and added to
    # ops.api_key_usage_daily this often (a process that dies loses at most this much).
    key_usage_flush_seconds: PositiveSeconds = 10.0
    # The highest per-key rate limit a key may be given (requests a minute).
    key_rate_limit_max: Annotated[int, Field(ge=1, le=1_000_000)] = 100_000
    # How far ahead a key's expiry may be set, in days.
    key_expiry_max_days: Annotated[int, Field(ge=1)] = 3650


class LiveSettings(Section):
    """Live lists: payments, API logs, webhooks and incidents pages follow new and changed
    rows over Server-Sent Events (or polling), from one tail per list per API process."""

    # How often each tail reads the commit horizon and the rows committed below it: a row
    # reaches its viewers about horizon_margin_seconds + this + the longest writing
    # transaction after its commit.
    tail_interval_seconds: PositiveSeconds = 0.5
    # A tail no one follows (no stream, no poll, no page load) for this long stops reading.
    idle_seconds: PositiveSeconds = 30.0
    # Each tail keeps this much event time of rows in memory, so a stream resumed or a poll
    # with a recent cursor is answered without a query.
    buffer_seconds: PositiveSeconds = 300.0
    # A cursor older than the buffer is caught up with one query, when it is at most this
    # old and the rows since it fit in catchup_max_rows; older, the page is reloaded.
    resume_max_seconds: PositiveSeconds = 900.0
    catchup_max_rows: Annotated[int, Field(ge=1)] = 5_000
    # One tail query reads at most this much event time (a catch-up after a stall).
    max_window_seconds: PositiveSeconds = 60.0
    # Open streams per person (sessions and API keys of one user count together; the next
    # one is refused with 429), and in all, counted in Redis across API processes.
    streams_per_user: Annotated[int, Field(ge=1)] = 4
    streams_total: Annotated[int, Field(ge=1)] = 2_000
    # A stream with nothing to send says where it is this often (its event id moves on).
    heartbeat_seconds: PositiveSeconds = 15.0
    # A stream whose client reads too slowly to take this many events is ended; its
    # browser reconnects and resumes from its last event id.
    queue_events: Annotated[int, Field(ge=1)] = 256
    # How often the page's script polls when EventSource is unavailable.
    poll_seconds: PositiveSeconds = 2.0
    # A stopping API process waits this long for requests still running, then cuts them:
    # streams never end on their own (their browsers reconnect, to this process restarted or
    # another, and resume from their last event id).
    shutdown_grace_seconds: PositiveSeconds = 5.0


class WebhookSettings(Section):
    """The webhook gateway: ``opsdeck worker`` (outbound delivery, inbound processing, the
    platform-event tail) and the API's inbound PSP routes."""

    # Outbound delivery, per worker process.
    concurrency: Annotated[int, Field(ge=1, le=5000)] = 200
    claim_batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    # Per endpoint, unless the endpoint sets its own cap.
    default_max_in_flight: Annotated[int, Field(ge=1, le=10_000)] = 50
    poll_interval_seconds: PositiveSeconds = 1.0  # LISTEN/NOTIFY wakes workers; this is backup
    lease_seconds: PositiveSeconds = 60.0  # must exceed request_timeout_seconds
    heartbeat_seconds: PositiveSeconds = 10.0
    request_timeout_seconds: PositiveSeconds = 15.0
    shutdown_grace_seconds: PositiveSeconds = 30.0
    flush_interval_seconds: PositiveSeconds = 0.05
    # Delays before the 2nd, 3rd ... attempt (the first is immediate), each +/- jitter.
    retry_schedule_seconds: tuple[PositiveSeconds, ...] = (
        5.0,
        300.0,
        1_800.0,
        7_200.0,
        18_000.0,
        36_000.0,
        50_400.0,
        72_000.0,
        86_400.0,
    )
    retry_jitter: Ratio = 0.2
    # An endpoint's own retry schedule (it replaces the one above for that endpoint): at
    # most this many delays, none longer than this.
    endpoint_retry_max_delays: Annotated[int, Field(ge=1, le=100)] = 20
    endpoint_retry_max_delay_seconds: PositiveSeconds = 86_400.0
    # Deliveries a second to an endpoint that sets no rate limit of its own (None: no limit).
    default_rate_limit_per_second: Annotated[float, Field(gt=0, le=100_000)] | None = None
    # An endpoint failing this long without one success is disabled (and an incident opened).
    disable_after_failing_seconds: PositiveSeconds = 5 * 86_400.0
    # The circuit opens after this many consecutive failures, for open_seconds doubling up
    # to open_max_seconds; then one probe at a time until a success closes it.
    circuit_failure_threshold: Annotated[int, Field(ge=1)] = 5
    circuit_open_seconds: PositiveSeconds = 30.0
    circuit_open_max_seconds: PositiveSeconds = 600.0
    response_body_bytes: Annotated[int, Field(ge=0)] = 20 * 1024
    # A rotated signing secret stays valid (and signs too) this long.
    secret_grace_seconds: PositiveSeconds = 86_400.0
    # Networks a delivery may reach although the SSRF guard refuses them (development and
    # tests only, e.g. "127.0.0.1/32").
    ssrf_allow: tuple[Network, ...] = ()
    dns_cache_seconds: Annotated[float, Field(ge=0)] = 5.0
    replay_max_messages: Annotated[int, Field(ge=1)] = 10_000
    # Rejected inbound requests older than this are deleted, every retention interval.
    retention_days: Annotated[int, Field(ge=1)] = 30
    retention_interval_seconds: PositiveSeconds = 3600.0
    latency_buckets_seconds: tuple[float, ...] = (
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
        30.0,
        60.0,
        300.0,
        1_800.0,
        7_200.0,
        86_400.0,
    )
    # The worker's own /metrics (webhook families come from the worker holding the lock).
    metrics_host: str = "127.0.0.1"
    metrics_port: Port = 9465
    leader_lock_key: int = 7_220_260_005
    # How often the metrics leader verifies its lock and the other workers ask for it.
    leader_check_seconds: PositiveSeconds = 1.0
    # Platform events tailed into messages, at most this much event time per transaction.
    tail_enabled: bool = True
    tail_max_window_seconds: PositiveSeconds = 60.0
    # Inbound PSP webhooks. Several secrets may be active during a rotation.
    stripe_secrets: tuple[ProvingSecret, ...] = ()
    stripe_tolerance_seconds: PositiveSeconds = 300.0
    paystack_secrets: tuple[ProvingSecret, ...] = ()
    # Paystack's published source addresses, when set (empty: any address).
    paystack_allowed_networks: tuple[Network, ...] = ()
    inbound_max_body_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024
    # Per client address, in Redis and before any database work: requests per minute, and
    # rejected requests (bad signature, malformed, oversize) stored per window; a request
    # past either gets 429 and writes no row (correctly signed events still go through).
    # A rejection keeps the SHA-256 of its body and this many first bytes.
    inbound_requests_per_address_per_minute: Annotated[int, Field(ge=1)] = 6000
    inbound_rejections_per_address: Annotated[int, Field(ge=1)] = 20
    inbound_rejection_window_seconds: Annotated[int, Field(ge=1)] = 300
    rejected_sample_bytes: Annotated[int, Field(ge=0, le=4096)] = 256
    inbound_retry_schedule_seconds: tuple[PositiveSeconds, ...] = (
        1.0,
        5.0,
        30.0,
        120.0,
        600.0,
        1_800.0,
    )
    # Upsert platform.psp_transactions (the gateway is the platform's PSP webhook handler).
    process_psp_transactions: bool = True


class IncidentSettings(Section):
    """Incidents from Alertmanager, the escalation engine, its transports and the one-click
    actions."""

    # Alertmanager's webhook sends this as a bearer token (/hooks/alertmanager).
    alertmanager_token: ProvingSecret | None = None
    oncall_file: Path | None = None  # alert_rules/oncall.yaml when unset
    default_team: str = "platform"
    # "opsdeck": the engine pages; "pagerduty": PagerDuty escalates (after `opsdeck oncall
    # sync`) and opsdeck only fans out to Slack and email, so nobody is paged twice.
    pager_of_record: Annotated[str, Field(pattern="^(opsdeck|pagerduty)$")] = "opsdeck"
    # Severities that trigger the outside pagers (seed 001: critical and high page; medium
    # goes to Slack and email only). Acknowledge and resolve follow only what was triggered.
    page_severities: tuple[Severity, ...] = ("critical", "high")
    # Times the whole policy repeats after its last level without an acknowledgement.
    repeat_rounds: Annotated[int, Field(ge=0, le=10)] = 1
    engine_enabled: bool = True
    tick_seconds: PositiveSeconds = 5.0
    engine_lock_key: int = 7_220_260_006
    # How often the engine's leader verifies it still holds the lock and the other API
    # processes ask for it: one of them takes over within about this long.
    engine_check_seconds: PositiveSeconds = 1.0
    # How often each API process recounts the open incidents it serves on /metrics (also
    # right after each incident change it makes): what other replicas changed shows up
    # within about this long.
    open_counts_refresh_seconds: PositiveSeconds = 5.0
    # Transports: one request timeout; attempts spread over the retry schedule.
    request_timeout_seconds: PositiveSeconds = 10.0
    retry_schedule_seconds: tuple[PositiveSeconds, ...] = (5.0, 30.0, 120.0, 600.0)
    # Each delay +/- this fraction, so failures at one moment do not all retry at once.
    retry_jitter: Ratio = 0.1
    max_retry_after_seconds: PositiveSeconds = 600.0
    slack_api_url: str = "https://slack.com/api"
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: ProvingSecret | None = None
    slack_tolerance_seconds: PositiveSeconds = 300.0
    pagerduty_events_url: str = "https://events.pagerduty.com"
    pagerduty_routing_key: SecretStr | None = None
    # `opsdeck oncall sync` (REST API v2).
    pagerduty_api_url: str = "https://api.pagerduty.com"
    pagerduty_api_token: SecretStr | None = None
    # Email (SMTP), SMS (a Twilio-compatible API) and Opsgenie (legacy: support ends
    # 2027-04-05; never the only pager).
    smtp_host: str | None = None
    smtp_port: Port = 587
    smtp_from: str = "opsdeck@example.com"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ca_file: Path | None = None  # a private CA for the SMTP server's certificate
    twilio_api_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    opsgenie_api_url: str = "https://api.opsgenie.com"
    opsgenie_api_key: SecretStr | None = None
    # Grafana annotations of actions (GRAFANA_URL is where they go).
    grafana_token: SecretStr | None = None
    grafana_ca_file: Path | None = None  # a private CA for Grafana's certificate
    # The API as a browser reaches it: links in emails, alert annotations and dashboards
    # (drilldowns, one-click actions, runbooks) point here.
    public_url: PublicUrl = "http://localhost:8000"
    mute_seconds: PositiveSeconds = 3600.0
    reason_min_chars: Annotated[int, Field(ge=1)] = 5
    # A payout change awaits its second approver this long; then it expires (neither
    # approvable nor blocking a new request).
    approval_ttl_seconds: PositiveSeconds = 3600.0
    reprocess_lease_seconds: PositiveSeconds = 120.0
    reprocess_batch: Annotated[int, Field(ge=1)] = 1000


# The audit chain's HMAC key: at least this long, so it cannot be guessed from the chain.
AUDIT_CHAIN_KEY_MIN_CHARS = 32


def _chain_key(value: SecretStr) -> SecretStr:
    if len(value.get_secret_value()) < AUDIT_CHAIN_KEY_MIN_CHARS:
        raise ValueError(
            f"shorter than {AUDIT_CHAIN_KEY_MIN_CHARS} characters (make one with `python -c "
            "'import secrets; print(secrets.token_urlsafe(48))'`)"
        )
    return value


class AuditSettings(Section):
    """The audit trail's keyed hash chain and its signed checkpoints (core.audit)."""

    # HMAC-SHA256 key of every chain link and checkpoint; held by the processes that write
    # or verify the trail, never stored in the database. Every process that audits needs it.
    chain_key: Annotated[SecretStr, AfterValidator(_chain_key)] | None = None
    # The API writes a signed checkpoint of the chain head here this often, for
    # `opsdeck audit verify --against FILE` (unset: none; `opsdeck audit checkpoint`).
    checkpoint_path: Path | None = None
    checkpoint_interval_seconds: PositiveSeconds = 300.0


RoleName = Annotated[str, Field(pattern="^[a-z_][a-z0-9_]{0,62}$")]


class DatabaseRoleSettings(Section):
    """The two roles `opsdeck migrate` creates (core.database_roles): the owner of every
    opsdeck object (NOLOGIN; migrations hand their objects to it) and the role the services
    connect as, which may only append to the audit log."""

    owner: RoleName = "opsdeck_owner"
    service: RoleName = "opsdeck_service"
    # Set (or changed) by every `opsdeck migrate`; unset: the role's password is left alone.
    service_password: SecretStr | None = None


class Settings(BaseSettings):
    """All of opsdeck's settings. Environment variables win over files, files over the YAML
    file (the module docstring has the whole order)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
        validate_by_name=True,
    )

    database_url: PostgresUrl | None = Field(None, validation_alias="DATABASE_URL")
    # The password of a DATABASE_URL written without one (load_settings puts it in).
    database_password: SecretStr | None = Field(None, validation_alias="DATABASE_PASSWORD")
    platform_database_url: PostgresUrl | None = Field(
        None, validation_alias="PLATFORM_DATABASE_URL"
    )
    redis_url: RedisUrl | None = Field(None, validation_alias="REDIS_URL")
    # The password of a REDIS_URL written without one (Redis' requirepass; load_settings
    # puts it in, like DATABASE_PASSWORD).
    redis_password: SecretStr | None = Field(None, validation_alias="REDIS_PASSWORD")
    prometheus_url: HttpUrl | None = Field(None, validation_alias="PROMETHEUS_URL")
    alertmanager_url: HttpUrl | None = Field(None, validation_alias="ALERTMANAGER_URL")
    grafana_url: HttpUrl | None = Field(None, validation_alias="GRAFANA_URL")
    # Grafana as a browser reaches it (GRAFANA_URL is where opsdeck calls its HTTP API,
    # e.g. http://grafana:3000 inside docker-compose): alert annotations link here.
    grafana_public_url: PublicUrl = "http://localhost:3000"
    data_dir: Path = Path(".opsdeck")
    # Encrypts the secrets opsdeck stores (TOTP secrets, webhook signing secrets) in the
    # database (core.sealed_secrets); never stored there. `opsdeck secrets new-key` makes
    # one. A rotation moves the old key to secrets_previous_keys (still read) and runs
    # `opsdeck secrets reseal` (docs/operations.md).
    secrets_key: SecretsKey | None = None
    secrets_previous_keys: tuple[SecretsKey, ...] = ()
    log_level: Annotated[str, Field(pattern="^(DEBUG|INFO|WARNING|ERROR)$")] = "INFO"
    exporter: ExporterSettings = ExporterSettings()
    thresholds: Thresholds = Thresholds()
    simulator: SimulatorSettings = SimulatorSettings()
    api: ApiSettings = ApiSettings()
    live: LiveSettings = LiveSettings()
    webhooks: WebhookSettings = WebhookSettings()
    incidents: IncidentSettings = IncidentSettings()
    audit: AuditSettings = AuditSettings()
    database_roles: DatabaseRoleSettings = DatabaseRoleSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init kwargs; every other source overrides it. Files are
        # read with the environment source's parsing, so a file means what its variable would.
        known = setting_variables()
        try:
            from_files = settings_files.values_from_file_variables(os.environ, known)
            directory = settings_files.secrets_dir(os.environ)
            from_dir = settings_files.values_from_secrets_dir(directory, known) if directory else {}
        except FileSettingError as exc:
            raise SettingsError(exc.variable, exc.problem) from None
        # The environment less the <VAR>_FILE references, which are not values of their own.
        environment = {
            name: value
            for name, value in os.environ.items()
            if settings_files.file_variable_target(name, known) is None
        }
        return (
            settings_files.ValuesSource(settings_cls, environment),
            settings_files.ValuesSource(settings_cls, from_files),
            settings_files.ValuesSource(settings_cls, from_dir),
            init_settings,
        )

    @property
    def platform_url(self) -> str | None:
        """Where the platform tables are read; the ops database unless set apart."""
        return self.platform_database_url or self.database_url

    def require(self, name: str, needed_by: str, hint: str = "") -> str:
        """Return a URL setting that a command cannot run without, or raise."""
        value = getattr(self, name)
        if value is None:
            suffix = f"; {hint}" if hint else ""
            raise SettingsError(
                setting_label((name,)), f"not set, and {needed_by} needs it{suffix}"
            )
        return str(value)


def setting_label(loc: tuple[Any, ...]) -> str:
    """The environment variable (and YAML path) a validation error location refers to."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in WELL_KNOWN_ENV.values():
        return parts[0]
    if parts and parts[0] in WELL_KNOWN_ENV:
        return WELL_KNOWN_ENV[parts[0]]
    env = ENV_PREFIX + NESTED_DELIMITER.join(p.upper() for p in parts)
    return f"{env} ({'.'.join(parts)})"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(CONFIG_ENV, f"cannot read {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SettingsError(CONFIG_ENV, f"{path} is not valid YAML{where}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(CONFIG_ENV, f"{path} must hold a mapping of settings")
    return data


def setting_variables() -> dict[str, tuple[str, ...]]:
    """Every variable that sets one setting (upper case) -> that setting's path."""
    names: dict[str, tuple[str, ...]] = {}
    for name, info in Settings.model_fields.items():
        section = info.annotation
        if name in WELL_KNOWN_ENV:
            names[WELL_KNOWN_ENV[name]] = (name,)
        elif isinstance(section, type) and issubclass(section, BaseModel):
            for field in section.model_fields:
                names[f"{ENV_PREFIX}{name}{NESTED_DELIMITER}{field}".upper()] = (name, field)
        else:
            names[f"{ENV_PREFIX}{name}".upper()] = (name,)
    return names


def _check_env_names() -> None:
    """A misspelt OPSDECK_* variable, ``<VAR>_FILE`` included, is an error, not a silently
    ignored value."""
    known = setting_variables()
    for var in os.environ:
        if not var.startswith(ENV_PREFIX) or var in (CONFIG_ENV, SECRETS_DIR_ENV):
            continue
        if var.upper() not in known and not settings_files.file_variable_target(var, known):
            raise SettingsError(var, "unknown setting")


def _read_from(variable: str) -> str:
    """Where a value the environment did not set was read, for an error about it."""
    if variable in os.environ:
        return ""
    file_variable = variable + settings_files.FILE_SUFFIX
    if os.environ.get(file_variable):
        return f" (read from {os.environ[file_variable]}, {file_variable})"
    directory = settings_files.secrets_dir(os.environ)
    for name in (variable.lower(), variable):
        if directory is not None and (directory / name).is_file():
            return f" (read from {directory / name})"
    return ""


def _with_password(settings: Settings, url_field: str, password_field: str) -> Settings:
    """A URL setting with its password setting in it, when the URL was written without one
    (DATABASE_URL + DATABASE_PASSWORD, REDIS_URL + REDIS_PASSWORD)."""
    password: SecretStr | None = getattr(settings, password_field)
    if password is None:
        return settings
    label, url_label = WELL_KNOWN_ENV[password_field], WELL_KNOWN_ENV[url_field]
    if not password.get_secret_value():
        raise SettingsError(label, "empty")
    current: str | None = getattr(settings, url_field)
    if current is None:
        raise SettingsError(label, f"set, but {url_label} is not: the password is for it")
    parts = urlsplit(current)
    if parts.password is not None:
        raise SettingsError(label, f"set, but {url_label} holds a password already")
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user}:{quote(password.get_secret_value(), safe='')}@{host}"
    url = urlunsplit(parts._replace(netloc=netloc))
    return settings.model_copy(update={url_field: url})


def _validated(values: dict[str, Any]) -> Settings:
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = "unknown setting"
        label = setting_label(tuple(first["loc"]))
        message += _read_from(label.partition(" ")[0])
        raise SettingsError(label, message) from None


def _under(values: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """``more`` with ``values`` on top, section by section."""
    merged = dict(more)
    for name, value in values.items():
        below = merged.get(name)
        if isinstance(value, dict) and isinstance(below, dict):
            merged[name] = _under(value, below)
        else:
            merged[name] = value
    return merged


def _running_demo(settings: Settings) -> dict[str, Any]:
    """The settings of a demo running from this data directory, as YAML-like values, when
    nothing here names a database or Redis (core.running_demo)."""
    if settings.database_url or settings.redis_url:
        return {}
    try:
        variables = running_demo.live_settings(settings.data_dir)
    except running_demo.DemoSettingsError as exc:
        raise SettingsError("demo settings", str(exc)) from None
    known = setting_variables()
    values: dict[str, Any] = {}
    for variable, value in (variables or {}).items():
        if variable not in known:
            raise SettingsError(variable, "unknown setting (in a running demo's settings file)")
        *sections, name = known[variable]
        target = values
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value
    return values


def load_settings(config_path: Path | None = None) -> Settings:
    """Load and validate settings; raise :class:`SettingsError` with one clear line."""
    _check_env_names()
    if config_path is None and os.environ.get(CONFIG_ENV):
        config_path = Path(os.environ[CONFIG_ENV])
    file_values = _read_yaml(config_path) if config_path is not None else {}
    settings = _validated(file_values)
    demo_values = _running_demo(settings)
    if demo_values:
        settings = _validated(_under(file_values, demo_values))
    settings = _with_password(settings, "database_url", "database_password")
    return _with_password(settings, "redis_url", "redis_password")
