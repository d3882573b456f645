"""Every benchmark command the documents give starts: docs/benchmarks.md's, each script's
own usage line and the Makefile's, run from the repository's root as written, import their
module and parse their arguments (``--help``). A script run by path would find
``bench/simulator.py`` where ``simulator`` the package should be."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

COMMAND = re.compile(r"python (?P<target>-m bench\.[a-z_]+\b|bench/[a-z_]+\.py)")


def _documented() -> list[str]:
    texts = [
        (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8"),
        (REPO / "Makefile").read_text(encoding="utf-8"),
        *(path.read_text(encoding="utf-8") for path in sorted((REPO / "bench").glob("*.py"))),
    ]
    return sorted({m["target"] for text in texts for m in COMMAND.finditer(text)})


def test_the_documents_give_benchmark_commands() -> None:
    assert "-m bench.exporter" in _documented()


@pytest.mark.parametrize("target", _documented())
def test_a_documented_benchmark_command_starts(target: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "DATABASE_URL"}}
    done = subprocess.run(
        [sys.executable, *target.split(), "--help"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"python {target} --help: {done.stderr[-2000:]}"
    assert "usage:" in done.stdout
