"""Every long-running process is observable the same way.

The exporter, the worker and the API run as real processes against a real database and
Redis. Each /metrics names the build (``opsdeck_build_info``) and carries the process
families, once each and promtool-clean; each writes only JSON log lines to stderr, every one
naming its process (the API's also the request id); the exporter answers /healthz; and
``opsdeck --version`` names the version, the revision and Python.
"""

from __future__ import annotations

import json
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core import build_info
from core.log_format import configure_logging
from opsdeck.embedded import free_port
from tests.api.conftest import SECRET
from tests.conftest import REPO, opsdeck_env, scratch_database
from tests.processes import stopped_on_exit, terminate
from tests.webhooks.harness import FAST

pytestmark = pytest.mark.slow

PROCESSES = ("exporter", "worker", "api")
REQUEST_ID = "observability.42"
START_SECONDS = 90.0


@dataclass
class Child:
    """One ``opsdeck`` process, its stderr in a file."""

    name: str
    port: int
    ready_path: str
    process: subprocess.Popen[bytes]
    stderr: Path
    scraped: dict[str, httpx.Response] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited:\n{self.stderr.read_text()}")
            try:
                if httpx.get(self.base + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} never ready:\n{self.stderr.read_text()[-3000:]}")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = httpx.get(self.base + path, timeout=5, **kwargs)
        self.scraped[path] = response
        return response

    def stop(self) -> int:
        return terminate(self.process, timeout=40)


def _wait_healthy(exporter: Child, timeout: float = 15.0) -> None:
    """/healthz until it answers 200 (the snapshot loads just after /metrics starts)."""
    deadline = time.monotonic() + timeout
    while exporter.get("/healthz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)


def _start(name: str, env: dict[str, str], log_dir: Path) -> Child:
    port = free_port(0)
    options = {
        "exporter": (["--port", str(port)], "/metrics"),
        "worker": (["--metrics-port", str(port)], "/metrics"),
        "api": (["--port", str(port)], "/readyz"),
    }
    args, ready = options[name]
    stderr = log_dir / f"{name}.stderr"
    with stderr.open("wb") as err, (log_dir / f"{name}.stdout").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "opsdeck", name, *args],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=err,
        )
    return Child(name, port, ready, process, stderr)


@pytest.fixture(scope="module")
def children(
    admin_url: str,
    template_db: str,
    services: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Child]]:
    """The three processes, started, used (scrapes, one API request), then stopped: the
    tests read what they served and everything they logged, shutdown included."""
    log_dir = tmp_path_factory.mktemp("observability")
    started: dict[str, Child] = {}
    with scratch_database(admin_url, template_db) as url, stopped_on_exit(started.values()):
        env = opsdeck_env(
            DATABASE_URL=url,
            REDIS_URL=services["redis"],
            OPSDECK_API__SECRET_KEY=SECRET,
            OPSDECK_EXPORTER__STANDBY_REFRESH_SECONDS="0.3",
            **FAST,
        )
        for process in PROCESSES:
            started[process] = _start(process, env, log_dir)
        for child in started.values():
            child.wait_ready()
            child.get("/metrics")
        _wait_healthy(started["exporter"])
        started["exporter"].get("/nowhere")
        started["api"].get("/healthz", headers={"X-Request-ID": REQUEST_ID})
        for child in started.values():
            # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly
            assert child.stop() in (0, -signal.SIGTERM), child.stderr.read_text()[-3000:]
        yield started


def _git_revision() -> str:
    if shutil.which("git") is None:
        return "unknown"
    result = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _families(text: str) -> list[str]:
    return [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]


@pytest.mark.parametrize("process", PROCESSES)
def test_metrics_name_the_build_and_the_process(children: dict[str, Child], process: str) -> None:
    response = children[process].scraped["/metrics"]
    assert response.status_code == 200
    samples = {
        sample.name: sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    assert samples["opsdeck_build_info"].labels == {
        "version": version("opsdeck"),
        "revision": _git_revision(),
        "python": platform.python_version(),
    }
    assert samples["opsdeck_build_info"].value == 1
    assert samples["process_cpu_seconds_total"].value > 0
    assert samples["process_resident_memory_bytes"].value > 0
    assert "python_info" in samples
    families = _families(response.text)
    assert len(families) == len(set(families)), sorted(f for f in families if families.count(f) > 1)


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian prometheus) not installed"
)
@pytest.mark.parametrize("process", PROCESSES)
def test_metrics_pass_promtool(children: dict[str, Child], process: str) -> None:
    result = subprocess.run(
        ["promtool", "check", "metrics"],
        input=children[process].scraped["/metrics"].text,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def _log_lines(child: Child) -> list[dict[str, Any]]:
    lines = [line for line in child.stderr.read_text().splitlines() if line.strip()]
    assert lines, f"{child.name} logged nothing"
    parsed = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"{child.name}: not a JSON line: {line!r}") from None
        assert isinstance(entry, dict), line
        parsed.append(entry)
    return parsed


@pytest.mark.parametrize("process", PROCESSES)
def test_every_log_line_is_json_naming_its_process(
    children: dict[str, Child], process: str
) -> None:
    entries = _log_lines(children[process])
    assert {entry["process"] for entry in entries} == {process}
    for entry in entries:
        assert {"ts", "level", "logger", "msg"} <= entry.keys(), entry


def test_api_log_lines_carry_the_request_id(children: dict[str, Child]) -> None:
    served = children["api"].scraped["/healthz"]
    assert served.headers["x-request-id"] == REQUEST_ID
    access = [e for e in _log_lines(children["api"]) if e.get("request_id") == REQUEST_ID]
    assert [(e["process"], e["route"], e["status"]) for e in access] == [("api", "/healthz", 200)]


def test_exporter_healthz(children: dict[str, Child]) -> None:
    healthz = children["exporter"].scraped["/healthz"]
    assert (healthz.status_code, healthz.text) == (200, "ok\n")
    assert children["exporter"].scraped["/nowhere"].status_code == 404


def _opsdeck(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsdeck", *args],
        env=opsdeck_env(**env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_names_version_revision_and_python() -> None:
    result = _opsdeck("--version")
    assert result.returncode == 0, result.stderr
    expected = (
        f"opsdeck {version('opsdeck')} ({_git_revision()}, Python {platform.python_version()})"
    )
    assert result.stdout == expected + "\n"


def test_the_revision_is_unknown_without_git_or_outside_a_checkout(tmp_path: Path) -> None:
    no_git = _opsdeck("--version", PATH=str(tmp_path))
    assert no_git.returncode == 0, no_git.stderr
    assert f"(unknown, Python {platform.python_version()})" in no_git.stdout
    assert build_info.revision(tmp_path) == "unknown"


def test_an_unknown_log_format_is_refused() -> None:
    result = _opsdeck("--log-format", "yaml", "worker")
    assert result.returncode == 2
    assert "argument --log-format: invalid choice: 'yaml'" in result.stderr
    with pytest.raises(ValueError, match="unknown log format 'yaml'"):
        configure_logging("worker", "yaml", "INFO")
