"""The /metrics page: KPIs rendered once per change, off the scrape path; health and the
process's own families rendered per scrape; gzip and plain bodies carry the same exposition;
HTTP/1.1 keep-alive; /healthz once the snapshot is loaded."""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.build_info import python, revision, version
from core.settings import Settings
from exporters.exposition import HealthExposition
from exporters.http import serve
from exporters.metrics_page import GZIP, MetricsPage
from exporters.server import build_collectors, build_exposition
from exporters.snapshot import Health, Snapshot
from opsdeck.embedded import free_port

UNPROCESSED = "opsdeck_bookings_unprocessed"


def _page() -> tuple[Snapshot, MetricsPage]:
    settings = Settings()
    collectors = build_collectors(settings)
    snapshot = Snapshot(c.name for c in collectors)
    kpis = build_exposition(settings, collectors, snapshot)
    return snapshot, MetricsPage(snapshot, kpis, HealthExposition(snapshot), role=lambda: "leader")


def build_labels() -> dict[str, str]:
    return {"version": version(), "revision": revision(), "python": python()}


def _value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def _set(snapshot: Snapshot, value: float, horizon: datetime | None = None) -> None:
    snapshot.apply("bookings", [(UNPROCESSED, (), value)], Health(True, 0.01, horizon))


@pytest.fixture
def rendering() -> Iterator[tuple[Snapshot, MetricsPage]]:
    snapshot, page = _page()
    stop = threading.Event()
    renderer = threading.Thread(target=page.run, args=(stop,))
    renderer.start()
    try:
        yield snapshot, page
    finally:
        stop.set()
        renderer.join()


def _eventually(page: MetricsPage, value: float) -> None:
    deadline = time.monotonic() + 2
    while _value(page.body(gzip=False).decode(), UNPROCESSED) != value:
        assert time.monotonic() < deadline, f"{UNPROCESSED} never became {value}"
        time.sleep(0.01)


def test_a_change_is_rendered_without_a_scrape_asking(
    rendering: tuple[Snapshot, MetricsPage],
) -> None:
    snapshot, page = rendering
    _set(snapshot, 7)
    _eventually(page, 7)
    version = snapshot.version
    _set(snapshot, 7)  # the same series written again is a change too: rendered once more
    assert snapshot.version == version + 1
    _set(snapshot, 9)
    _eventually(page, 9)


def test_health_without_values_changes_no_version_and_is_measured_per_scrape(
    rendering: tuple[Snapshot, MetricsPage],
) -> None:
    snapshot, page = rendering
    before = snapshot.version
    horizon = datetime.now(UTC) - timedelta(seconds=30)
    snapshot.apply("bookings", [], Health(True, 0.01, horizon))
    assert snapshot.version == before
    first = _value(
        page.body(gzip=False).decode(), "opsdeck_collector_lag_seconds", collector="bookings"
    )
    time.sleep(0.2)
    second = _value(
        page.body(gzip=False).decode(), "opsdeck_collector_lag_seconds", collector="bookings"
    )
    assert first is not None
    assert second is not None
    assert 30 <= first < second < 40


def _without_process_samples(body: bytes) -> bytes:
    """The body minus the samples of this process's CPU and memory, which move between two
    scrapes."""
    return b"".join(
        line for line in body.splitlines(keepends=True) if not line.startswith(b"process_")
    )


def test_gzip_is_one_stream_of_the_same_exposition() -> None:
    snapshot, page = _page()
    _set(snapshot, 3)  # no horizon: no lag series, so the two bodies can be compared
    plain = page.body(gzip=False)
    inflate = zlib.decompressobj(GZIP)
    unzipped = inflate.decompress(page.body(gzip=True))
    assert _without_process_samples(unzipped) == _without_process_samples(plain)
    assert inflate.eof
    assert inflate.unused_data == b""
    assert _value(plain.decode(), UNPROCESSED) == 3
    assert _value(plain.decode(), "opsdeck_collector_up", collector="bookings") == 1


def test_the_server_keeps_the_connection_and_negotiates_gzip() -> None:
    snapshot, page = _page()
    _set(snapshot, 5)
    server, thread = serve("127.0.0.1", free_port(0), page)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with httpx.Client() as client:
            zipped = client.get(f"{base}/metrics")
            plain = client.get(f"{base}/metrics", headers={"Accept-Encoding": "identity"})
            missing = client.get(f"{base}/nothing")
        assert zipped.headers["content-encoding"] == "gzip"
        assert "content-encoding" not in plain.headers
        assert _without_process_samples(zipped.content) == _without_process_samples(plain.content)
        assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert _value(plain.text, UNPROCESSED) == 5
        assert missing.status_code == 404
        assert {r.http_version for r in (zipped, plain, missing)} == {"HTTP/1.1"}
        assert "close" not in {r.headers.get("connection") for r in (zipped, plain, missing)}
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_every_scrape_carries_the_build_and_the_process_once() -> None:
    snapshot, page = _page()
    _set(snapshot, 1)
    text = page.body(gzip=False).decode()
    families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(families) == len(set(families)), "a family appears twice on the page"
    assert _value(text, "opsdeck_build_info", **build_labels()) == 1
    assert (_value(text, "process_cpu_seconds_total") or 0) > 0
    assert _value(text, "process_start_time_seconds") is not None
    assert any(line.startswith("python_info{") for line in text.splitlines())


def test_healthz_answers_once_the_snapshot_is_loaded() -> None:
    snapshot, page = _page()
    server, thread = serve("127.0.0.1", free_port(0), page)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with httpx.Client() as client:
            starting = client.get(f"{base}/healthz")
            snapshot.load([], [], source_ok=True)
            ready = client.get(f"{base}/healthz")
            missing = client.get(f"{base}/healthz/extra")
        assert starting.status_code == 503
        assert "not loaded" in starting.text
        assert (ready.status_code, ready.text) == (200, "ok\n")
        assert ready.headers["content-type"] == "text/plain; charset=utf-8"
        assert missing.status_code == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
