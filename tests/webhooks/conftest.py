"""Fixtures of the gateway's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def logs(request: pytest.FixtureRequest) -> Path:
    """Where this test's processes write their logs (kept for a failed run)."""
    path: Path = REPO / "test-artifacts" / "webhooks" / str(request.node.name)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.log"):
        old.unlink()
    return path
