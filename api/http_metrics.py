"""The API's own metrics at ``/metrics``: request rate, errors and duration per route.

Names are distinct from the platform's ``opsdeck_api_*`` metrics (those describe the
platform's API, read from ``api_logs``). Labels are bounded: the route template, never the
raw path.

The page also carries ``opsdeck_build_info`` and the ``process_*``/``python_info`` families
(:mod:`core.build_info`), the same as the exporter's and the worker's. Other collectors
(the open incidents) register on :attr:`HttpMetrics.registry`, so the page is rendered once,
by prometheus_client; :attr:`HttpMetrics.listeners` hear of every request that ended (the
open-incident count refreshes after a change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from core.build_info import register_process_metrics

# Called with (route template, method, status) once a request has ended.
RequestListener = Callable[[str, str, int], None]
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "opsdeck_api_http_requests_total",
            "Requests served by the drilldown API.",
            ("route", "method", "status_class"),
            registry=self.registry,
        )
        self.duration = Histogram(
            "opsdeck_api_http_request_duration_seconds",
            "Time to the end of the response, per route.",
            ("route",),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "opsdeck_api_http_requests_in_flight",
            "Requests being served now.",
            registry=self.registry,
        )
        register_process_metrics(self.registry)
        self.listeners: list[RequestListener] = []

    def declare(self, routes: Iterable[tuple[str, str]]) -> None:
        """Start each (route, method)'s 2xx and 5xx counts at zero, so that an error ratio
        reads 0 rather than "no data" until the first error."""
        for route, method in routes:
            for status_class in ("2xx", "5xx"):
                self.requests.labels(route, method, status_class)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, f"{status // 100}xx").inc()
        self.duration.labels(route).observe(seconds)
        for listener in self.listeners:
            listener(route, method, status)

    def render(self) -> bytes:
        return generate_latest(self.registry)
