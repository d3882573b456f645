"""`opsdeck dashboards push` sends exactly the requests Grafana's HTTP API expects: the
folder once, then every dashboard with overwrite, the same on every push. The dashboards
are rendered with the settings: the committed ones under the default settings, and with
the deployment's API URL under its own."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dashboards import catalog
from dashboards.grafana_push import FOLDER_UID, MESSAGE
from tests.conftest import REPO, opsdeck_env, run_opsdeck
from tests.dashboards.fake_grafana import FakeGrafana, serve


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    running, url = serve(fake)
    yield fake, url
    running.stop()


def _committed() -> list[dict[str, object]]:
    return [json.loads((REPO / b.path).read_text()) for b in catalog.BOARDS]


def test_push_creates_the_folder_and_uploads_every_dashboard(
    grafana: tuple[FakeGrafana, str],
) -> None:
    fake, url = grafana
    env = opsdeck_env(GRAFANA_TOKEN="glsa_test")
    result = run_opsdeck("dashboards", "push", "--grafana-url", url, env=env)
    assert result.returncode == 0, result.stderr
    expected = [
        ("GET", f"/api/folders/{FOLDER_UID}", None),
        ("POST", "/api/folders", {"title": "opsdeck", "uid": FOLDER_UID}),
    ] + [
        (
            "POST",
            "/api/dashboards/db",
            {
                "dashboard": {**board, "id": None},
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": MESSAGE,
            },
        )
        for board in _committed()
    ]
    assert [(r.method, r.path, r.body) for r in fake.requests] == expected
    assert {r.authorization for r in fake.requests} == {"Bearer glsa_test"}

    first = len(fake.requests)
    again = run_opsdeck("dashboards", "push", "--grafana-url", url, env=env)
    assert again.returncode == 0, again.stderr
    repeat = fake.requests[first:]
    assert [(r.method, r.path) for r in repeat] == [("GET", f"/api/folders/{FOLDER_UID}")] + [
        ("POST", "/api/dashboards/db")
    ] * len(catalog.BOARDS)
    assert [r.body for r in repeat[1:]] == [e[2] for e in expected[2:]]


def test_push_sends_the_deployments_api_url(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    env = opsdeck_env(OPSDECK_INCIDENTS__PUBLIC_URL="https://ops.example.com")
    result = run_opsdeck("dashboards", "push", "--grafana-url", url, env=env)
    assert result.returncode == 0, result.stderr
    pushed = [r.body["dashboard"] for r in fake.requests if r.path == "/api/dashboards/db"]
    assert [b["uid"] for b in pushed] == [b.uid for b in catalog.BOARDS]
    for board in pushed:
        (api_url,) = [v for v in board["templating"]["list"] if v["name"] == "api_url"]
        assert api_url["query"] == "https://ops.example.com", board["uid"]
    assert "localhost" not in json.dumps(pushed)


def test_push_reports_a_refusal_in_one_line(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.handle = lambda method, path, body: (401, {"message": "invalid API key"})  # type: ignore[method-assign]
    result = run_opsdeck("dashboards", "push", "--grafana-url", url, env=opsdeck_env())
    assert result.returncode == 1
    assert result.stderr.startswith("opsdeck dashboards: Grafana refused")


def test_push_without_a_url_is_a_settings_error() -> None:
    result = run_opsdeck("dashboards", "push", env=opsdeck_env())
    assert result.returncode == 2
    assert "GRAFANA_URL" in result.stderr
