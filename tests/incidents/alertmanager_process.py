"""A real Alertmanager (the Debian binary) with a one-receiver config, for silences."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import supervised_server

CONFIG = """
route:
  receiver: nobody
receivers:
  - name: nobody
"""


@contextmanager
def alertmanager(work: Path) -> Iterator[str]:
    """Yields the base URL of a running Alertmanager."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, "prometheus-alertmanager is not installed (scripts/system-deps.sh)"
    work.mkdir(parents=True, exist_ok=True)
    config = work / "alertmanager.yml"
    config.write_text(CONFIG, encoding="utf-8")

    def argv(port: int) -> list[str]:
        return [
            binary,
            f"--config.file={config}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]

    with supervised_server("alertmanager", argv, work / "alertmanager.log", "/-/ready") as base:
        yield base
