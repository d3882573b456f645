"""A real Prometheus serving a data directory built offline (no scraping, no rules).

The configuration is the repository's ``prometheus.yml`` through
:func:`alert_rules.localize.prometheus_config` with no scrape target and no rule file:
the served data is exactly what the directory holds, and nothing is written at the
current time. Retention is production's 400 days, so blocks older than the default 15
days are kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from alert_rules.localize import prometheus_config
from opsdeck.embedded import free_port
from opsdeck.supervisor import Service, Supervisor, http_ready

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
RETENTION = "400d"
NOWHERE = "127.0.0.1:9"  # no alert is ever sent: no rule is loaded
READY_TIMEOUT = 300.0  # opening a month of blocks on a busy machine


def binary(path: str) -> str:
    """``path``, or the same program found on PATH; a clear error when neither exists."""
    name = Path(path).name
    found = path if Path(path).exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed (Debian package prometheus)")
    return found


@contextmanager
def serve(data: Path, *, port: int = 0) -> Iterator[str]:
    """Run Prometheus on ``data`` (a TSDB directory; its blocks are served as they are)
    until the block exits; yields its base URL once it answers ``/-/ready``. Its config
    and log go beside ``data`` (``<data>.prometheus.yml``, ``<data>.prometheus.log``)."""
    listen = free_port(port)
    config = data.with_name(data.name + ".prometheus.yml")
    config.write_text(
        yaml.safe_dump(prometheus_config({}, NOWHERE, rule_files=[]), sort_keys=True),
        encoding="utf-8",
    )
    url = f"http://127.0.0.1:{listen}"
    supervisor = Supervisor()
    try:
        supervisor.start(
            Service(
                name="prometheus",
                argv=[
                    binary(PROMETHEUS),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    f"--storage.tsdb.retention.time={RETENTION}",
                    f"--web.listen-address=127.0.0.1:{listen}",
                ],
                log_file=data.with_name(data.name + ".prometheus.log"),
                ready=http_ready(f"{url}/-/ready"),
                ready_timeout=READY_TIMEOUT,
            )
        )
        yield url
    finally:
        supervisor.stop_all(timeout=30.0)
