"""Every Prometheus query of every generated dashboard returns data from the real stack:
the committed JSON's PromQL, with Grafana's macros and the dashboards' variables
substituted as Grafana would, run against a real Prometheus scraping the real exporter, API
and webhook worker over simulated history and live traffic (:mod:`tests.alerting.stack`;
:data:`TRAFFIC_RATE` payment attempts a second, a light stack, beside the full ones).

The dashboard's time range is the last stretch of the test's Prometheus history, half of it
so that "compared with the previous period" queries (``offset $__range``) have a previous
period. Windows longer than that (24 h and 30 d recording rules, ``increase(...[1d])``)
return what the available history holds, which is what Prometheus does.

The stack runs two exporter replicas, both scraped, as the README deploys them: every
panel, recording rule and alert computes the same over both as over the leader alone, the
KPI series equal plain SQL, and still do after the leader is killed. And the booking
API's health checker is stopped as the stack starts (``--inject checks-stop``): checks
that stop arriving must page as surely as checks that fail.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
import redis
import yaml

from alert_rules.rule_files import ALERTS_FILE, RECORDING_FILE
from api.accounts import Admin, add_user, create_key
from api.http_metrics import HttpMetrics
from api.rbac import Role
from core import recording_rules as rec
from core.settings import Settings
from dashboards.catalog import BOARDS
from dashboards.grafana_queries import expand_sql
from dashboards.grafana_time import Timing, Window, datasources, duration_ms, max_data_points
from dashboards.grafana_variables import promql_values, static_selection, substitute
from dashboards.lint import panels
from exporters.families import kpi_families
from simulator.inject import inject
from tests.alerting.stack import SCRAPE_SECONDS, Stack, monitoring_stack
from tests.conftest import REPO, suite_box
from tests.dashboards.link_promises import (
    DataLink,
    action_broken,
    data_links,
    kind_of,
    list_broken,
    record_broken,
    record_key,
    render,
    split,
)
from tests.exporters import truth
from tests.exporters.harness import Exporter, assert_equal, db_now, family_of
from tests.exporters.truth import Series

# Its stack may wait for another test file's stack (tests.alerting.stack) first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

# Light enough for the light lane, beside the full stacks; busy enough that every panel's
# range holds failed payments and support tickets (at the demo's rate some hold none).
TRAFFIC_RATE = 6
MIN_RANGE_SECONDS = 30  # each period spans many scrapes and folds, even on a busy machine
SCRAPE = f"{SCRAPE_SECONDS}s"  # the test stack's scrape interval, the datasource's
METRIC = re.compile(r"\b(?:opsdeck[_:][A-Za-z0-9_:]+|up)\b")
SETTINGS = Settings()
KPIS = set(kpi_families(SETTINGS.exporter))
RAW_METRIC = re.compile(r"\b(opsdeck_[a-z0-9_]+)(\{)?")
SILENCED_MINUTES = 30  # the health checker stays dead for the rest of the module


@dataclass(frozen=True)
class Target:
    board: str
    panel: str
    ref: str
    expr: str
    instant: bool
    interval: str | None  # the panel's minimum interval
    points: int  # the panel's max data points
    variables: tuple[tuple[str, str], ...]

    @property
    def id(self) -> str:
        return f"{self.board}/{self.panel}/{self.ref}"


def _variable_values(board: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Each variable's value as Grafana interpolates its current selection into PromQL."""
    sources = datasources()
    variables = board.get("templating", {}).get("list", [])
    selections = [static_selection(v, sources) for v in variables if v["type"] != "datasource"]
    return tuple(promql_values(selections).items())


def _targets() -> list[Target]:
    found = []
    for board_def in BOARDS:
        board = json.loads((REPO / board_def.path).read_text(encoding="utf-8"))
        variables = _variable_values(board)
        for panel in panels(board):
            if (panel.get("datasource") or {}).get("type") != "prometheus":
                continue
            for target in panel.get("targets", []):
                found.append(
                    Target(
                        board["uid"],
                        panel["title"],
                        target["refId"],
                        target["expr"],
                        bool(target.get("instant")),
                        panel.get("interval"),
                        max_data_points(panel),
                        variables,
                    )
                )
    return found


TARGETS = _targets()
BOARD_PATHS = {
    json.loads((REPO / b.path).read_text(encoding="utf-8"))["uid"]: b.path for b in BOARDS
}


def _annotations() -> list[tuple[str, str, str]]:
    found = []
    for board_def in BOARDS:
        board = json.loads((REPO / board_def.path).read_text(encoding="utf-8"))
        for annotation in board.get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                found.append((board["uid"], annotation["name"], annotation["expr"]))
    return found


def _seconds(duration: str) -> int:
    return duration_ms(duration) // 1000


def expand(expr: str, macros: dict[str, str], variables: dict[str, str]) -> str:
    """PromQL as Grafana sends it: the dashboard's variables, then the built-in macros."""
    return substitute(substitute(expr, variables), macros)


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range and the macros Grafana derives from it
    (:mod:`dashboards.grafana_time`), on the test stack's scrape interval."""

    start: float
    end: float

    @property
    def seconds(self) -> int:
        return int(self.end - self.start)

    def timing(self, panel_min: str | None, points: int) -> Timing:
        return Timing.of(Window(self.start, self.end), points, panel_min, SCRAPE)

    def interval(self, panel_min: str | None, points: int) -> int:
        return self.timing(panel_min, points).step_ms // 1000

    def macros(self, panel_min: str | None, points: int) -> dict[str, str]:
        return {
            **self.timing(panel_min, points).macros(),
            "__from": str(int(self.start * 1000)),
            "__to": str(int(self.end * 1000)),
        }


@pytest.fixture(scope="module")
def stack(
    admin_url: str,
    history_template: str,
    services: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The exporter, the API and the webhook worker, scraped by a real Prometheus."""
    work = tmp_path_factory.mktemp("panels")
    redis = services["redis"]
    with monitoring_stack(
        admin_url,
        history_template,
        work,
        redis_url=redis,
        gateway=True,
        exporters=2,
        traffic_rate=TRAFFIC_RATE,
        lane="light",
    ) as s:
        yield s


@pytest.fixture(scope="module")
def checks_stopped(stack: Stack) -> float:
    """The health checker dies while the booking API is healthy; returns when (unix time)."""
    up = 'opsdeck_service_up{service="booking_api"}'
    stack.wait("a healthy booking API", lambda: _value(stack, up) == 1.0, timeout=60)
    inject("checks-stop", stack.db_url, stack.db_url, SETTINGS.thresholds, SILENCED_MINUTES, 7)
    return time.time()


@pytest.fixture(scope="module")
def time_range(stack: Stack, checks_stopped: float) -> TimeRange:
    # Enough history for a range and the period before it, each with several scrapes, and
    # for the failure band, whose baseline is an hour that ended minutes ago.
    wait = stack.started + 2 * MIN_RANGE_SECONDS + 4 - time.time()
    if wait > 0:
        time.sleep(wait)
    stack.wait(
        "the payment failure band",
        lambda: bool(stack.query(rec.PAYMENT_FAILURE_UPPER)),
        timeout=_seconds(rec.FAILURE_BASELINE_OFFSET) + 60,
    )
    time.sleep(2 * SCRAPE_SECONDS)  # a range's last step falls after the band's first sample
    end = time.time()
    return TimeRange(end - (end - stack.started - 2) // 2, end)


def _finite(result: list[dict[str, Any]]) -> bool:
    samples = [s for series in result for s in series.get("values", [series.get("value")])]
    return any(s is not None and math.isfinite(float(s[1])) for s in samples)


def _run(stack: Stack, target: Target, window: TimeRange) -> list[dict[str, Any]]:
    expr = expand(
        target.expr, window.macros(target.interval, target.points), dict(target.variables)
    )
    assert "$" not in expr, f"unexpanded macro or variable in {expr}"
    if target.instant:
        return stack.query(expr, at=window.end)
    # Grafana steps by $__interval; a one-day step over minutes of history would put the
    # only point before the first sample, so the step is at most the range.
    step = min(window.interval(target.interval, target.points), window.seconds)
    return stack.query_range(expr, window.start, window.end, step)


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
def test_panel_query_returns_data(stack: Stack, time_range: TimeRange, target: Target) -> None:
    result = _run(stack, target, time_range)
    assert result, f"{target.id}: no series for {target.expr}"
    assert _finite(result), f"{target.id}: only NaN/Inf for {target.expr}: {result[:3]}"


@pytest.mark.parametrize("annotation", _annotations(), ids=lambda a: f"{a[0]}/{a[1]}")
def test_annotation_query_runs(stack: Stack, time_range: TimeRange, annotation: Any) -> None:
    """Annotations mark anomalies, so an empty result is normal; the query must run."""
    _board, _name, expr = annotation
    expanded = expand(expr, time_range.macros(None, max_data_points({})), {})
    stack.query_range(expanded, time_range.start, time_range.end, SCRAPE_SECONDS)


def test_the_api_exports_what_the_dashboards_query() -> None:
    metrics = HttpMetrics()
    metrics.observe("/healthz", "GET", 200, 0.01)
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in metrics.render().decode().splitlines()
        if line and not line.startswith("#")
    }
    recorded = dict(_rule_exprs())
    names = {name for target in TARGETS for name in METRIC.findall(target.expr)}
    # A panel reading a recorded series reads what its rule reads.
    names |= {raw for name in names if name in recorded for raw in METRIC.findall(recorded[name])}
    queried = {name for name in names if name.startswith("opsdeck_api_http_")}
    assert queried, "no panel queries the API's own metrics"
    assert queried <= exposed, sorted(queried - exposed)


# -- a health checker that stops ------------------------------------------------------------


def _value(stack: Stack, expr: str) -> float | None:
    result = stack.query(expr)
    return float(result[0]["value"][1]) if result else None


def _booking_api_down(stack: Stack) -> dict[str, Any] | None:
    alerts = stack.prometheus_alerts()
    return next((a for a in alerts if a["labels"]["alertname"] == "BookingApiDown"), None)


def test_checks_that_stop_arriving_fire_booking_api_down(
    stack: Stack, checks_stopped: float
) -> None:
    """The latest check passed; nothing is written after it. Once it is older than the
    staleness threshold the API reads down and the critical alert fires, saying the checks
    went silent, not that they failed."""
    stale = SETTINGS.thresholds.service_check_stale_seconds
    timeout = checks_stopped + stale + 60 - time.time()
    stack.wait(
        "BookingApiDown firing after the checks stopped",
        lambda: (_booking_api_down(stack) or {}).get("state") == "firing",
        timeout=max(timeout, 1),
    )
    alert = _booking_api_down(stack)
    assert alert is not None
    description = alert["annotations"]["description"]
    assert description.startswith("Silent: no health check of the booking API"), description
    last = _value(stack, 'opsdeck_service_last_check_timestamp_seconds{service="booking_api"}')
    assert last is not None
    assert last <= checks_stopped + SCRAPE_SECONDS, "a check arrived after the checker died"


# -- every data link, followed with a real row ----------------------------------------------

LINKS = data_links()
LINK_INCIDENT_ALERT = "LinkFollowTest"


@pytest.fixture(scope="module")
def api_client(stack: Stack, services: dict[str, str]) -> Iterator[httpx.Client]:
    """The stack's own ``opsdeck api`` (found where Prometheus scrapes it), as a super
    admin's API key: a role that may open every link."""
    (target,) = stack.query('up{job="opsdeck-api"}')
    with psycopg.connect(stack.db_url) as conn:
        admin = Admin("link-test", conn, redis.Redis.from_url(services["redis"]), suite_box())
        add_user(admin, "link-test", Role.SUPER_ADMIN, "link-test password 0123456789", True)
        token, _ = create_key(admin, "link-test", "dashboard links", Role.SUPER_ADMIN, [])
    base = "http://" + target["metric"]["instance"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        yield client


def _sql_rows(url: str, query: str) -> list[dict[str, Any]]:
    end = datetime.now(UTC) + timedelta(minutes=1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET ROLE opsdeck_grafana")
        window = Window((end - timedelta(hours=24)).timestamp(), end.timestamp())
        cursor = conn.execute(expand_sql(query, window, {}))
        names = [c.name for c in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _panel_row(stack: Stack, window: TimeRange, link: DataLink) -> dict[str, Any]:
    """The first row the link's panel shows: its SQL's, or its PromQL's labels."""
    for target in link.panel["targets"]:
        if "rawSql" in target:
            rows = _sql_rows(stack.db_url, target["rawSql"])
        else:
            found = [
                t for t in TARGETS if t.panel == link.panel["title"] and t.ref == target["refId"]
            ]
            rows = [dict(series["metric"]) for series in _run(stack, found[0], window)]
        rows = [r for r in rows if set(link.row_fields) <= set(r)]
        if rows:
            return rows[0]
    raise AssertionError(f"{link.id}: the panel shows no row with {link.row_fields}")


@pytest.fixture(scope="module")
def link_rows(
    stack: Stack, api_client: httpx.Client, time_range: TimeRange
) -> dict[str, dict[str, Any]]:
    """A row of every panel a row link sits on, once the tables hold what they show: an
    incident opened by hand, double bookings, payment mismatches, audit entries."""
    opened = api_client.post(
        f"/actions/create-incident?alertname={LINK_INCIDENT_ALERT}&source=api",
        json={"reason": "dashboard links followed by the test"},
        headers={"Idempotency-Key": "dashboard-links-0001"},
    )
    assert opened.status_code == 200, opened.text
    inject("double-booking", stack.db_url, stack.db_url, SETTINGS.thresholds, 5, 3)
    rows: dict[str, dict[str, Any]] = {}

    def all_found() -> bool:
        for link in LINKS:
            if link.row_fields and link.panel["title"] not in rows:
                try:
                    rows[link.panel["title"]] = _panel_row(stack, time_range, link)
                except AssertionError:
                    return False
        return True

    stack.wait("a row in every panel with row links", all_found, timeout=120)
    return rows


def _values(link: DataLink, window: TimeRange, rows: dict[str, dict[str, Any]]) -> dict[str, str]:
    board = json.loads((REPO / BOARD_PATHS[link.board]).read_text(encoding="utf-8"))
    values = {name: value for name, value in _variable_values(board) if name != "api_url"}
    values["api_url"] = ""
    macros = window.macros(None, max_data_points({}))
    values["__from"], values["__to"] = macros["__from"], macros["__to"]
    if any("rawSql" in t for t in link.panel["targets"]):  # the window its rows came from
        end = datetime.now(UTC) + timedelta(minutes=1)
        start = end - timedelta(hours=24)
        values["__from"], values["__to"] = (str(int(t.timestamp() * 1000)) for t in (start, end))
    row = rows.get(link.panel["title"], {})
    values.update({name: str(row[name]) for name in link.row_fields})
    return values


@pytest.mark.parametrize("link", LINKS, ids=lambda link: link.id)
def test_every_data_link_keeps_its_promise(
    api_client: httpx.Client,
    time_range: TimeRange,
    link_rows: dict[str, dict[str, Any]],
    link: DataLink,
) -> None:
    """Rendered as Grafana would (the dashboard's range and variables, a real row's values)
    and followed: 200, and the page shows what the link promises."""
    url = render(link.url, _values(link, time_range, link_rows))
    path, query = split(url)
    kind = kind_of(path)
    page = api_client.get(url, headers={"Accept": "text/html"})
    assert page.status_code == 200, (
        f"{link.id}: {url} answered {page.status_code}: {page.text[:500]}"
    )
    if kind == "action":
        body = api_client.get(url, headers={"Accept": "application/json"}).json()
        assert action_broken(query, body) == [], (link.id, url)
        if dict(query).get("incident"):
            assert any(item.startswith(f"#{dict(query)['incident']} ") for item in body["items"])
        return
    data = api_client.get("/api/v1" + url)
    assert data.status_code == 200, f"{link.id}: /api/v1{url}: {data.text[:500]}"
    if kind == "record":
        assert record_broken(*record_key(path), data.json()) == [], (link.id, url)
        return
    assert list_broken(query, data.json()) == [], (link.id, url)
    if link.row_fields:  # the row came from this data: the list holds it
        assert data.json()["data"], f"{link.id}: {url} lists nothing"


# -- two exporter replicas count once ---------------------------------------------------------


def _only(expr: str, instance: str) -> str:
    """``expr`` with every selector of an exporter KPI family narrowed to one replica."""

    def narrow(match: re.Match[str]) -> str:
        name, brace = match.group(1), match.group(2)
        if family_of(name, KPIS) not in KPIS:
            return match.group(0)
        return f'{name}{{instance="{instance}",' if brace else f'{name}{{instance="{instance}"}}'

    return RAW_METRIC.sub(narrow, expr)


def _vector(result: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _rule_exprs() -> list[tuple[str, str]]:
    found = []
    for path in (RECORDING_FILE, ALERTS_FILE):
        for group in yaml.safe_load((REPO / path).read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("record") or rule["alert"], rule["expr"]))
    return found


def _leader(stack: Stack) -> Exporter:
    (leader,) = [r for r in stack.replicas if r.leader_flag() == 1.0]
    return leader


def _address(replica: Exporter) -> str:
    return f"127.0.0.1:{replica.port}"


def _kpis_in_prometheus(stack: Stack) -> tuple[Series, list[str]]:
    """The exporter job's KPI series as Prometheus holds them now, summed over replicas,
    and the series more than one replica served."""
    series: Series = {}
    doubled = []
    for row in stack.query('{job="opsdeck-exporter", __name__=~"opsdeck_.+"}'):
        labels = dict(row["metric"])
        name = labels.pop("__name__")
        if family_of(name, KPIS) not in KPIS:
            continue
        labels.pop("instance")
        labels.pop("job")
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            doubled.append(f"{name}{labels}")
        series[key] = series.get(key, 0.0) + float(row["value"][1])
    return series, doubled


def _equal_to_plain_sql(stack: Stack, leader: Exporter) -> None:
    """Prometheus' KPI series equal plain SQL over the platform, once the leader has folded
    everything and been scraped (time-window gauges move, so the two are read until they
    agree or the time is up)."""
    leader.wait_caught_up(db_now(stack.db_url))
    deadline = time.monotonic() + 30
    with psycopg.connect(stack.db_url) as conn:
        while True:
            expected = truth.expected(conn, SETTINGS)
            actual, doubled = _kpis_in_prometheus(stack)
            assert not doubled, f"served by two replicas: {doubled[:10]}"
            try:
                assert_equal(actual, expected, KPIS)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(SCRAPE_SECONDS)


def test_every_query_counts_the_kpis_once_with_two_replicas(
    stack: Stack, time_range: TimeRange
) -> None:
    """Every panel, recording rule and alert expression evaluates, over both replicas, to
    exactly what it evaluates to over the leader's series alone: the standby adds nothing."""
    leader = _address(_leader(stack))
    at = time.time() - SCRAPE_SECONDS
    queries = [(n, e) for n, e in _rule_exprs()] + [
        (t.id, expand(t.expr, time_range.macros(t.interval, t.points), dict(t.variables)))
        for t in TARGETS
    ]
    narrowed = [(n, e) for n, e in queries if _only(e, leader) != e]
    assert len(narrowed) > 30, "too few queries read exporter KPIs: is the narrowing broken?"
    wrong = []
    for name, expr in narrowed:
        both = _vector(stack.query(expr, at=at))
        alone = _vector(stack.query(_only(expr, leader), at=at))
        same = both.keys() == alone.keys() and all(_same(both[k], alone[k]) for k in both)
        if not same:
            wrong.append(f"{name}: {expr}\n  both replicas {both}\n  leader alone {alone}")
    assert not wrong, "\n".join(wrong[:10])


def test_kpis_equal_plain_sql_before_and_after_the_leader_is_killed(stack: Stack) -> None:
    """Traffic stops so the platform holds still; Prometheus' KPI series equal plain SQL.
    The leader is killed; the standby takes over, serves the committed values and folds on,
    and Prometheus' series equal plain SQL again, each still served once."""
    stack.traffic.stop()
    leader = _leader(stack)
    _equal_to_plain_sql(stack, leader)
    leader.process.kill()
    leader.process.wait(timeout=10)
    (standby,) = [r for r in stack.replicas if r is not leader]
    address = _address(standby)
    stack.wait(
        "the standby leading in Prometheus",
        lambda: _value(stack, f'opsdeck_exporter_leader{{instance="{address}"}}') == 1.0,
        timeout=60,
    )
    _equal_to_plain_sql(stack, standby)
