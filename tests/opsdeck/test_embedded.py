"""Embedded PostgreSQL on a machine that has never run opsdeck."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdeck.embedded import _user_exists

# Each child sleeps until the same instant, then creates its cluster: the four pytest
# workers of `make test` do exactly this on their first run.
_CHILD = """
import sys, time
from pathlib import Path
from opsdeck.embedded import EmbeddedPostgres
start, root, user = float(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
time.sleep(max(0.0, start - time.time()))
EmbeddedPostgres(root, 0, **({"service_user": user} if "service_user" in EmbeddedPostgres.__dataclass_fields__ else {})).initialize()
"""


@pytest.fixture
def absent_user() -> Iterator[str]:
    """A service user name no earlier run created; removed again afterwards."""
    user = f"opsdeck-pg-{uuid.uuid4().hex[:8]}"
    assert not _user_exists(user)
    yield user
    if _user_exists(user):
        subprocess.run(["userdel", user], check=True, capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as a service user")
def test_four_servers_initialize_at_once_with_the_user_absent(
    absent_user: str, tmp_path: Path
) -> None:
    start = time.time() + 3
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(start), str(tmp_path / f"pg{n}"), absent_user],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for n in range(4)
    ]
    outcomes = [(child.wait(timeout=120), child.communicate()[0]) for child in children]
    failed = [output.decode(errors="replace")[-800:] for code, output in outcomes if code != 0]
    assert not failed, failed
    for n in range(4):
        data = tmp_path / f"pg{n}" / "data"
        assert (data / "PG_VERSION").exists()
        assert data.owner() == absent_user
