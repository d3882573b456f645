"""Commands run beside a demo reach it: the settings a live demo left in its data directory
fill in what nothing else sets, never what is set, and never after the demo is gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from api.accounts import Admin, add_user
from api.rbac import Role
from core import running_demo
from core.settings import SettingsError, load_settings
from tests.conftest import (
    REPO,
    TEST_AUDIT_CHAIN_KEY,
    TEST_SECRETS_KEY,
    opsdeck_env,
    suite_box,
)

DEMO = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:55432/opsdeck",
    "REDIS_URL": "redis://127.0.0.1:56379/0",
    "OPSDECK_SECRETS_KEY": TEST_SECRETS_KEY,
    "OPSDECK_AUDIT__CHAIN_KEY": TEST_AUDIT_CHAIN_KEY,
}


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def test_a_live_demo_fills_in_what_nothing_sets(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("OPSDECK_DATA_DIR", str(tmp_path))
    config = tmp_path / "opsdeck.yaml"
    config.write_text("audit:\n  checkpoint_interval_seconds: 60\n")
    running_demo.write(tmp_path, DEMO)  # this process plays the demo
    assert (running_demo.settings_file(tmp_path).stat().st_mode & 0o777) == 0o600
    settings = load_settings(config)
    assert settings.database_url == DEMO["DATABASE_URL"]
    assert settings.redis_url == DEMO["REDIS_URL"]
    assert settings.secrets_key is not None
    assert settings.secrets_key.get_secret_value() == TEST_SECRETS_KEY
    assert settings.audit.chain_key is not None
    assert settings.audit.chain_key.get_secret_value() == TEST_AUDIT_CHAIN_KEY
    assert settings.audit.checkpoint_interval_seconds == 60  # the YAML file's, beside it


def test_explicit_settings_win_and_a_dead_demo_is_ignored(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("OPSDECK_DATA_DIR", str(tmp_path))
    running_demo.write(tmp_path, DEMO)
    clean_env.setenv("DATABASE_URL", "postgresql://me@db.example/ops")
    settings = load_settings()
    assert settings.database_url == "postgresql://me@db.example/ops"
    assert settings.redis_url is None  # nothing of the demo's is mixed into one's own setup
    assert settings.secrets_key is None
    clean_env.delenv("DATABASE_URL")
    running_demo.write(tmp_path, DEMO, pid=_dead_pid())
    assert running_demo.running_pid(tmp_path) is None
    assert load_settings().database_url is None


def test_only_the_demo_that_wrote_the_file_removes_it(tmp_path: Path) -> None:
    running_demo.write(tmp_path, DEMO, pid=_dead_pid())
    running_demo.remove(tmp_path)  # another process's file
    assert running_demo.settings_file(tmp_path).exists()
    running_demo.write(tmp_path, DEMO)
    running_demo.remove(tmp_path)
    assert not running_demo.settings_file(tmp_path).exists()


def test_a_damaged_file_is_named(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("OPSDECK_DATA_DIR", str(tmp_path))
    running_demo.settings_file(tmp_path).write_text("{not json")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(running_demo.settings_file(tmp_path)) in str(caught.value)


def _users_list(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "opsdeck", "users", "list"],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_command_from_the_demo_directory_reaches_its_database(
    db_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(db_url) as conn:
        add_user(
            Admin("test", conn, None, suite_box()), "ida", Role.OPS, "ida password 0123", False
        )
    demo_dir = tmp_path / "checkout"
    running_demo.write(demo_dir / ".opsdeck", {**DEMO, "DATABASE_URL": db_url})
    env = opsdeck_env()  # no URL, no key: all from the demo's file
    for name in ("OPSDECK_SECRETS_KEY", "OPSDECK_AUDIT__CHAIN_KEY"):
        env.pop(name)
    listed = _users_list(demo_dir, env)
    assert listed.returncode == 0, listed.stderr
    assert "ida" in listed.stdout
    # From another directory (no demo there) the same command has no database.
    elsewhere = _users_list(tmp_path / "elsewhere", env)
    assert elsewhere.returncode == 2
    assert "DATABASE_URL" in elsewhere.stderr
