"""Every page of the API, as every role, in headless Chromium (Debian's, driven by
Playwright), checked with axe-core: no violation of impact "serious" or "critical" anywhere.

The pages are the route table's HTML GET routes (``route_specs()``), so a page added to it is
covered without touching this file; a detail page opens a real row of the test's history
(tests/api/route_paths.py fills its path parameter, or the test fails naming the route). A
role signs in through the sign-in page, then opens each page: one it may open answers 200,
any other the refusal page (403). Every page answered 200 is checked, and the refusal page
once per permission it names (the same page, only that name differs). Each checked page's
full screenshot, at a 1400x900 viewport, goes to test-artifacts/pages/<role>/<page>.png,
and axe's findings of every impact to test-artifacts/pages/<role>/axe.json.

axe-core comes from the npm registry, a pinned version installed with the machine's npm
into this session's temporary directory. Playwright's ``add_script_tag`` injects it as an
inline script, which the API's Content-Security-Policy (``script-src 'self'``) blocks, so
the browser context is made with ``bypass_csp=True``: that lets the test's own script in and
changes nothing the pages themselves load or run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pyotp
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from api.app import route_specs
from api.rbac import ROLES, Role, allowed
from api.routing import RouteSpec
from tests.api.conftest import PASSWORD, SECRET, serving
from tests.api.manage_route_cases import KEY_ROUTES, USER_ROUTES
from tests.api.route_paths import MissingSample, route_path, route_samples
from tests.authenticator import device_secret
from tests.conftest import REPO, opsdeck_env, run_opsdeck

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

AXE = "axe-core@4.10.3"
BLOCKING = ("serious", "critical")  # impacts that fail the test
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
VIEWPORT: ViewportSize = {"width": 1400, "height": 900}
ARTIFACTS = Path(os.environ.get("OPSDECK_TEST_ARTIFACTS", REPO / "test-artifacts")) / "pages"
PAGES = [s for s in route_specs() if s.kind == "html" and "GET" in s.methods]
# A page with one fault per rule: no language, an unnamed field, faint text, a bare image.
FAULTY = (
    "<html><head><title>faulty</title></head><body><main><h1>Faulty</h1>"
    '<input name="q"><p style="color:#ccc">faint</p><img src="data:,"></main></body></html>'
)
FAULTS = {
    "html-has-lang": "serious",
    "label": "critical",
    "color-contrast": "serious",
    "image-alt": "critical",
}


class Database:
    """The fixtures' own SQL on the database the server reads."""

    def __init__(self, url: str) -> None:
        self.url = url

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []


@dataclass
class Findings:
    """What one role's walk found: axe's violations by page, and what was wrong besides."""

    violations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def blocking(self) -> list[str]:
        return [
            f"{page}: {v['impact']} {v['id']} ({v['help']}) at "
            + ", ".join(str(node["target"]) for node in v["nodes"][:5])
            for page, found in self.violations.items()
            for v in found
            if v["impact"] in BLOCKING
        ]

    def by_impact(self) -> Counter[str]:
        return Counter(str(v["impact"]) for found in self.violations.values() for v in found)


@pytest.fixture(scope="module")
def axe_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """axe-core from the npm registry, installed for this session."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            f"npm is not installed (make test installs it: scripts/system-deps.sh); {AXE} comes with it"
        )
    prefix = tmp_path_factory.mktemp("axe-core")
    installed = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", AXE],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    script = prefix / "node_modules" / "axe-core" / "axe.min.js"
    if installed.returncode != 0 or not script.is_file():
        pytest.fail(f"npm install {AXE} failed ({installed.returncode}): {installed.stderr}")
    return script


@pytest.fixture(scope="module")
def server(api_db: str, api_redis: str) -> Iterator[tuple[str, dict[str, str]]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = opsdeck_env(DATABASE_URL=api_db, REDIS_URL=api_redis, OPSDECK_API__SECRET_KEY=SECRET)
    with serving(env, ARTIFACTS / "server.log") as base:
        yield base, env


@pytest.fixture(scope="module")
def samples(api_db: str) -> dict[str, str]:
    return route_samples(Database(api_db))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


def _add_user(env: dict[str, str], role: Role) -> tuple[str, str]:
    """A user of ``role`` added with the CLI, with a TOTP device: name and TOTP secret."""
    name = f"a11y-{role.value.replace('_', '-')}"
    added = run_opsdeck(
        "users", "add", name, "--role", role.value, "--totp", "--password-stdin",
        env=env, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return name, device_secret(added.stdout)


def _own_rows(env: dict[str, str], name: str, role: Role) -> dict[str, str]:
    """The user's own row for the user pages, and a key of theirs for the key pages (another
    user's key is not theirs to see)."""
    made = run_opsdeck(
        "api-keys", "create", "--user", name, "--name", "a11y", "--role", role.value, env=env
    )
    assert made.returncode == 0, made.stderr
    db = Database(env["DATABASE_URL"])
    user = db.sql("SELECT id FROM ops.users WHERE username = %s", (name,))[0][0]
    key = db.sql("SELECT max(k.id) FROM ops.api_keys k WHERE k.user_id = %s", (user,))[0][0]
    return dict.fromkeys(USER_ROUTES, str(user)) | dict.fromkeys(KEY_ROUTES, str(key))


def _sign_in(page: Page, base: str, name: str, secret: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{base}/")


def _axe(page: Page, script: Path) -> list[dict[str, Any]]:
    """axe-core's violations on the page shown (every rule, every impact)."""
    page.add_script_tag(path=str(script))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return list(result["violations"])


def _visit(page: Page, url: str, spec: RouteSpec, role: Role) -> tuple[int, str | None]:
    """Opens ``url``: its status, and what is wrong with the answer (None: the page or
    refusal expected)."""
    response = page.goto(url)
    status = response.status if response else 0
    expected = 200 if spec.permission is None or allowed(role, spec.permission) else 403
    if status != expected:
        return status, f"{spec.name}: GET {url} answered {status}, expected {expected}"
    return status, None


def _walk(page: Page, base: str, role: Role, samples: dict[str, str], axe: Path) -> Findings:
    findings = Findings()
    shots = ARTIFACTS / role.value
    shots.mkdir(parents=True, exist_ok=True)
    refusals: set[str | None] = set()  # the permissions whose refusal page was checked
    for spec in PAGES:
        try:
            url = base + route_path(spec, samples)
        except MissingSample as missing:
            findings.problems.append(str(missing))
            continue
        status, wrong = _visit(page, url, spec, role)
        if wrong:
            findings.problems.append(wrong)
        if status == 403:
            if spec.permission in refusals:
                continue
            refusals.add(spec.permission)
        page.screenshot(path=str(shots / f"{spec.name}.png"), full_page=True)
        findings.violations[spec.name] = _axe(page, axe)
    (shots / "axe.json").write_text(json.dumps(findings.violations, indent=2, sort_keys=True))
    return findings


def test_the_check_finds_the_faults_it_looks_for(axe_script: Path, browser: Browser) -> None:
    """The same injection and run, on a page made of faults: each is reported, with the
    impact that fails the page test (so a clean page means a clean check, not a dead one)."""
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    page = context.new_page()
    try:
        page.set_content(FAULTY)
        found = {v["id"]: v["impact"] for v in _axe(page, axe_script)}
    finally:
        context.close()
    assert {rule: found.get(rule) for rule in FAULTS} == FAULTS
    assert set(FAULTS.values()) <= set(BLOCKING)


@pytest.mark.parametrize("role", ROLES, ids=str)
def test_every_page_is_accessible_as(
    role: Role,
    server: tuple[str, dict[str, str]],
    samples: dict[str, str],
    axe_script: Path,
    browser: Browser,
) -> None:
    base, env = server
    name, secret = _add_user(env, role)
    own = _own_rows(env, name, role)
    context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
    page = context.new_page()
    try:
        _sign_in(page, base, name, secret)
        findings = _walk(page, base, role, samples | own, axe_script)
    finally:
        context.close()
    assert not findings.problems, "\n".join(findings.problems)
    blocking = findings.blocking()
    assert not blocking, f"{dict(findings.by_impact())}:\n" + "\n".join(blocking)
