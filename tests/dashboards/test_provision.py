"""`opsdeck dashboards provision` keeps the directories Grafana and Prometheus read holding
exactly what the code generates for this deployment: readable, whole files, nothing stale,
nothing rewritten that did not change, and nobody else's files touched."""

from __future__ import annotations

import stat
from pathlib import Path

from alert_rules.rule_files import ALERTS_FILE, RECORDING_FILE
from core.settings import Settings
from dashboards import catalog
from opsdeck.provision import dashboard_files, provision, rules_files
from tests.conftest import opsdeck_env, run_opsdeck


def test_writes_one_file_per_dashboard_and_the_rule_files(tmp_path: Path) -> None:
    settings = Settings()
    dashboards, rules = tmp_path / "grafana", tmp_path / "prometheus"
    changes = provision(settings, dashboards_dir=dashboards, rules_dir=rules)
    assert sorted(p.name for p in dashboards.iterdir()) == sorted(
        b.path.name for b in catalog.BOARDS
    )
    assert sorted(p.name for p in rules.iterdir()) == sorted(
        [ALERTS_FILE.name, RECORDING_FILE.name]
    )
    assert len(changes) == len(catalog.BOARDS) + 2
    for path in [*dashboards.iterdir(), *rules.iterdir()]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    expected = {**dashboard_files(settings), **rules_files(settings)}
    for path in [*dashboards.iterdir(), *rules.iterdir()]:
        assert path.read_text() == expected[path.name]


def test_again_changes_nothing_and_stale_files_of_its_kind_go(tmp_path: Path) -> None:
    settings = Settings()
    dashboards, rules = tmp_path / "grafana", tmp_path / "prometheus"
    provision(settings, dashboards_dir=dashboards, rules_dir=rules)
    before = {p: p.stat().st_mtime_ns for p in [*dashboards.iterdir(), *rules.iterdir()]}
    assert provision(settings, dashboards_dir=dashboards, rules_dir=rules) == []
    assert {p: p.stat().st_mtime_ns for p in before} == before

    (dashboards / "opsdeck-retired.json").write_text("{}")
    (rules / "retired.rules.yaml").write_text("groups: []\n")
    (dashboards / "notes.txt").write_text("kept")
    (rules / "other.yml").write_text("kept")
    changes = provision(settings, dashboards_dir=dashboards, rules_dir=rules)
    assert changes == [
        f"removed {dashboards / 'opsdeck-retired.json'}",
        f"removed {rules / 'retired.rules.yaml'}",
    ]
    assert (dashboards / "notes.txt").read_text() == "kept"
    assert (rules / "other.yml").read_text() == "kept"


def test_a_changed_file_is_replaced_whole(tmp_path: Path) -> None:
    settings = Settings()
    provision(settings, dashboards_dir=tmp_path, rules_dir=None)
    target = tmp_path / catalog.BOARDS[0].path.name
    target.write_text('{"edited": true}')
    assert provision(settings, dashboards_dir=tmp_path, rules_dir=None) == [f"wrote {target}"]
    assert target.read_text() == dashboard_files(settings)[target.name]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_only_the_directories_given_are_written(tmp_path: Path) -> None:
    result = run_opsdeck(
        "dashboards", "provision", "--rules-dir", str(tmp_path / "rules"), env=opsdeck_env()
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules"]
    assert result.stdout.count("wrote ") == 2


def test_without_a_directory_it_refuses() -> None:
    result = run_opsdeck("dashboards", "provision", env=opsdeck_env())
    assert result.returncode == 2
    assert "give --dashboards-dir, --rules-dir or both" in result.stderr


def test_an_unwritable_directory_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the directory should be")
    result = run_opsdeck(
        "dashboards", "provision", "--dashboards-dir", str(blocker / "d"), env=opsdeck_env()
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"opsdeck dashboards: cannot write {blocker / 'd'}: ")
    assert "Traceback" not in result.stderr
