"""The committed dashboards and rule files are what the code generates, deterministically,
and `opsdeck dashboards check` says so (and says otherwise after a hand edit)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.settings import Settings, Thresholds
from dashboards import catalog, lint
from opsdeck.cli.dashboards import generated_files
from tests.conftest import REPO, opsdeck_env, run_opsdeck


def test_committed_files_are_what_the_code_generates(clean_env: pytest.MonkeyPatch) -> None:
    files = generated_files(Settings())
    assert len(files) == len(catalog.BOARDS) + 3
    stale = [p for p, text in files.items() if (REPO / p).read_text(encoding="utf-8") != text]
    assert stale == [], "run 'opsdeck dashboards build'"


def test_generation_is_deterministic_and_sorted() -> None:
    first, second = generated_files(Settings()), generated_files(Settings())
    assert first == second
    for board in catalog.BOARDS:
        text = first[board.path]
        assert (
            text
            == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )


def test_dashboards_are_fixed_readonly_and_numbered() -> None:
    for uid, board in catalog.dashboards(Settings()).items():
        assert board["uid"] == uid
        assert board["editable"] is False
        ids = [p["id"] for p in board["panels"]]
        assert ids == list(range(1, len(ids) + 1))
        names = [v["name"] for v in board["templating"]["list"]]
        assert "datasource" in names
        assert lint.lint(board) == []


def test_thresholds_come_from_settings() -> None:
    """Changing a threshold in settings changes the tile colour and the alert rule."""
    changed = Settings(thresholds=Thresholds(api_5xx_rate=0.02))
    files = generated_files(changed)
    board = json.loads(files[catalog.BOARDS[0].path])
    tile = next(p for p in board["panels"] if p["title"] == "API 5xx Error Rate")
    steps = tile["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 0.02]
    rules = files[Path("alert_rules/alerts.rules.yaml")]
    assert "opsdeck:api_requests:ratio_5xx_rate5m > 0.02" in rules


def test_check_passes_on_main() -> None:
    result = run_opsdeck("dashboards", "check", env=opsdeck_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "up to date" in result.stdout


def test_check_fails_after_a_hand_edit(tmp_path: Path) -> None:
    env = opsdeck_env()
    built = run_opsdeck("dashboards", "build", "--root", str(tmp_path), env=env)
    assert built.returncode == 0, built.stderr
    assert run_opsdeck("dashboards", "check", "--root", str(tmp_path), env=env).returncode == 0
    path = tmp_path / "dashboards" / "generated" / "opsdeck-command-center.json"
    board = json.loads(path.read_text())
    board["panels"][1]["title"] = "Edited by hand"
    path.write_text(json.dumps(board, indent=2, sort_keys=True) + "\n")
    result = run_opsdeck("dashboards", "check", "--root", str(tmp_path), env=env)
    assert result.returncode == 1
    assert "opsdeck-command-center.json: stale" in result.stdout
    rules = tmp_path / "alert_rules" / "alerts.rules.yaml"
    rules.write_text(rules.read_text().replace("> 0.01", "> 0.05"))
    shutil.copy(path, tmp_path / "dashboards" / "generated" / "stray.json")
    result = run_opsdeck("dashboards", "check", "--root", str(tmp_path), env=env)
    assert "alerts.rules.yaml: stale" in result.stdout
    assert "stray.json: not generated" in result.stdout
