"""A real Alertmanager (the Debian binary) with a one-receiver config, for silences."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from opsdeck.embedded import free_port
from opsdeck.supervisor import Service, Supervisor

CONFIG = """
route:
  receiver: nobody
receivers:
  - name: nobody
"""


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def alertmanager(work: Path) -> Iterator[str]:
    """Yields the base URL of a running Alertmanager."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, "prometheus-alertmanager is not installed (scripts/system-deps.sh)"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "alertmanager.yml"
    config.write_text(CONFIG, encoding="utf-8")
    port = free_port(0)
    base = f"http://127.0.0.1:{port}"
    supervisor = Supervisor()
    try:
        supervisor.start(
            Service(
                name="alertmanager",
                argv=[
                    binary,
                    f"--config.file={config}",
                    f"--storage.path={work / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--cluster.listen-address=",
                ],
                log_file=work / "alertmanager.log",
                ready=lambda: _ready(f"{base}/-/ready"),
            )
        )
        yield base
    finally:
        supervisor.stop_all()
