"""The worker process: the :class:`~gateway.worker.Worker`, its metrics registry and the
/metrics HTTP server, assembled in one place (as ``exporters/server.py`` does for the
exporter); ``opsdeck worker`` only parses its arguments and calls :func:`run`.

Contract: /metrics serves the gateway's families (:class:`gateway.metrics.GatewayCollector`:
the values the metrics leader reads from ops, this worker's leader flag and in-flight
count) and the process families every opsdeck process serves (``core.build_info``), from
a registry of the worker's own: nothing registered on prometheus_client's global registry
leaks in. A scrape reads what the worker last published and never touches the database.
Port 0 serves no /metrics. The server starts before the worker's loops and stops after
they have stopped; SIGINT and SIGTERM stop the worker gracefully (``Worker.run``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, start_http_server

from core.build_info import register_process_metrics
from core.settings import Settings
from gateway.metrics import GatewayCollector
from gateway.worker import Worker

log = logging.getLogger(__name__)


def build_registry(collector: GatewayCollector) -> CollectorRegistry:
    """The worker's /metrics: its gateway collector and the process families."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    register_process_metrics(registry)
    return registry


@contextmanager
def serving_metrics(registry: CollectorRegistry, host: str, port: int) -> Iterator[None]:
    """/metrics on ``host:port`` for as long as the block runs (nothing when port is 0)."""
    if not port:
        yield
        return
    server, thread = start_http_server(port, addr=host, registry=registry)
    log.info("serving /metrics on http://%s:%d/metrics", host, port)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def run_worker(
    settings: Settings,
    concurrency: int | None,
    metrics_host: str,
    metrics_port: int,
    stop: asyncio.Event,
) -> None:
    """The worker and its /metrics until ``stop`` is set and the worker has drained."""
    worker = Worker(settings, concurrency)
    with serving_metrics(build_registry(worker.collector), metrics_host, metrics_port):
        await worker.run(stop)


def run(settings: Settings, concurrency: int | None, metrics_host: str, metrics_port: int) -> None:
    """:func:`run_worker` until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_worker(settings, concurrency, metrics_host, metrics_port, stop)

    asyncio.run(main())
