"""A quiet platform is quiet: the demo's normal traffic, on a history loaded the way the demo
loads it, raises no alert at all, not even a pending one.

Why this is faithful. The stack (:mod:`tests.alerting.stack`) runs the repository's own
rules, expressions and thresholds untouched, on a faster clock: Prometheus evaluates every
2 s instead of every 15 s and every ``for`` is cut to seconds. A pending alert needs no
``for`` at all: it is the alert's expression being true at one evaluation, on the real
exporter's values of real traffic. Prometheus records every pending or firing alert in its
``ALERTS`` series, so ``count_over_time(ALERTS[...])`` over the whole watched range sees
even one evaluation's pending alert; requiring none is stricter than requiring no page.
Watched for :data:`WATCH_SECONDS`, the test requires at least as many evaluations as
:data:`PRODUCTION_MINUTES` of production make (one every 15 s). Only the traffic's own
time is real time, so what takes hours to build up in production (a day's drift) is
covered by the history, loaded at the live rate as the demo loads it.

The traffic is the demo's: ``opsdeck demo``'s default rate, with seasonality, follow-ups at
their real pace and PSP reports after the simulator's real delay (the stack's own traffic
hurries both, so it is stopped once the stack is up). That every injected anomaly still
raises its alert on such a stack is tests/alerting/test_end_to_end.py's part.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.settings import SimulatorSettings
from opsdeck.cli.demo import DEMO_RATE
from simulator.live import LiveOptions, LiveSimulator
from tests.alerting.stack import monitoring_stack

# Its stack may wait for another test file's stack (tests.alerting.stack) first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

PRODUCTION_MINUTES = 10
PRODUCTION_EVALUATION_SECONDS = 15
WATCH_SECONDS = 90.0  # 45 evaluations every 2 s; 40 make 10 minutes of production's
# Always firing by design: the dead man's switch that proves the alerting pipeline works.
ALWAYS_FIRING = ("Watchdog",)


@contextmanager
def demo_traffic(url: str) -> Iterator[None]:
    """``opsdeck simulate --live --rate DEMO_RATE`` with the default simulator settings."""
    defaults = SimulatorSettings()
    options = LiveOptions(
        rate=DEMO_RATE,
        writers=defaults.writers,
        seed=5,
        test_share=defaults.test_mode_share,
        psp_missing_share=defaults.psp_missing_share,
        psp_different_share=defaults.psp_different_share,
        psp_delay_seconds=defaults.psp_delay_seconds,
    )
    stop = threading.Event()
    simulator = LiveSimulator(url, url, options)
    thread = threading.Thread(target=simulator.run, args=(stop, lambda c, e: None))
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_normal_traffic_raises_no_alert(
    admin_url: str, demo_history_template: str, redis_url: str, tmp_path: Path
) -> None:
    with monitoring_stack(
        admin_url,
        demo_history_template,
        tmp_path,
        redis_url=redis_url,
        gateway=True,
        traffic_rate=DEMO_RATE,
        lane="full",  # alone among stacks: one late scrape is a pending alert here
    ) as stack:
        stack.traffic.stop()
        with demo_traffic(stack.db_url):
            time.sleep(WATCH_SECONDS)
        end = time.time()
        watched = math.ceil(end - stack.started)
        others = ",".join(f'alertname!="{name}"' for name in ALWAYS_FIRING)
        raised = stack.query(f"count_over_time(ALERTS{{{others}}}[{watched}s])", at=end)
        # The watched range held evaluations: the always-firing alert is there throughout.
        evaluations = stack.query(f'count_over_time(ALERTS{{alertname="Watchdog"}}[{watched}s])')
    needed = PRODUCTION_MINUTES * 60 / PRODUCTION_EVALUATION_SECONDS
    assert float(evaluations[0]["value"][1]) >= needed, evaluations
    pending_or_firing = {
        (r["metric"]["alertname"], r["metric"].get("alertstate"), r["value"][1]) for r in raised
    }
    assert pending_or_firing == set(), (
        f"alerts (name, state, evaluations) raised by normal traffic; logs in {tmp_path}"
    )
