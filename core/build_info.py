"""What is running: the package version, the source revision and the Python version.

Every long-running process exposes them on its /metrics as ``opsdeck_build_info{version,
revision,python} 1`` (beside prometheus_client's ``process_*`` and ``python_info``
families), and ``opsdeck --version`` prints them, so a dashboard, an alert or a bug report
can name the build it is about.

The revision is the short commit of the git checkout the package is imported from, or
``unknown`` when there is none (an installed wheel, no git on the machine): finding it never
raises. It is looked up once per process.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Iterator
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as PrometheusCollector

UNKNOWN = "unknown"
SOURCE_ROOT = Path(__file__).resolve().parent.parent  # the checkout, when run from one
GIT_TIMEOUT_SECONDS = 5.0


@cache
def version() -> str:
    try:
        return package_version("opsdeck")
    except PackageNotFoundError:
        return UNKNOWN


def revision(root: Path = SOURCE_ROOT) -> str:
    """The short commit of the checkout at ``root``, or ``unknown``."""
    return _revision(root.resolve())


@cache
def _revision(root: Path) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--show-toplevel", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return UNKNOWN
    lines = result.stdout.split()
    # A package installed into a virtualenv that sits inside some other checkout must not
    # report that checkout's commit: only a checkout rooted where the package lives counts.
    if result.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != root:
        return UNKNOWN
    return lines[1]


def python() -> str:
    return platform.python_version()


def describe() -> str:
    """The ``--version`` line: ``opsdeck <version> (<revision>, Python <x.y.z>)``."""
    return f"opsdeck {version()} ({revision()}, Python {python()})"


class BuildInfoCollector(PrometheusCollector):
    """``opsdeck_build_info``: a constant 1 whose labels name the build."""

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        family.add_metric([version(), revision(), python()], 1.0)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "opsdeck_build_info",
            "The running opsdeck build: package version, source revision, Python version.",
            labels=["version", "revision", "python"],
        )


def register_process_metrics(registry: CollectorRegistry) -> None:
    """Add the build, process (CPU, memory, file descriptors, start time) and platform
    families to ``registry``; none of them touches a database."""
    registry.register(BuildInfoCollector())
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
