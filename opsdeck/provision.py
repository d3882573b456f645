"""A deployment's own dashboards and rule files, written where Grafana and Prometheus read them.

The committed artefacts carry the default settings' public URLs; a deployment serves its
API and Grafana elsewhere. ``opsdeck dashboards provision`` renders the same code with the
deployment's settings (public URLs and thresholds) into the directory Grafana's dashboard
provider reads (``provisioning/grafana/dashboards/opsdeck.yaml``) and the one Prometheus's
``rule_files`` glob reads (``*.rules.yaml``). docker-compose runs it as a one-shot service,
into two volumes, before Grafana and Prometheus start.

Each file is replaced atomically (written beside, then renamed), so Grafana's provider,
which rescans every 30 s, and a Prometheus reload never read half a file. The directories
are opsdeck's own: a dashboard (``*.json``) or rule file (``*.rules.yaml``) there that the
code no longer generates is removed, so a dashboard deleted from the code leaves Grafana
too; other files are left alone. Files are world-readable, whichever user Grafana and
Prometheus run as.
"""

from __future__ import annotations

import os
from pathlib import Path

from alert_rules import rule_files
from core.settings import Settings
from dashboards import catalog

DASHBOARDS_GLOB = "*.json"
RULES_GLOB = "*.rules.yaml"
FILE_MODE = 0o644


def dashboard_files(settings: Settings) -> dict[str, str]:
    """File name → JSON, one per dashboard."""
    return {path.name: text for path, text in catalog.generated_files(settings).items()}


def rules_files(settings: Settings) -> dict[str, str]:
    """File name → YAML, the recording and the alerting rules (not their promtool tests)."""
    return {
        path.name: rule_files.dump(data) for path, data in rule_files.rule_files(settings).items()
    }


def write_dir(directory: Path, files: dict[str, str], owned: str) -> list[str]:
    """Make ``directory`` hold exactly ``files`` among the names matching ``owned``.

    Returns one line per file written or removed; an unchanged file is not rewritten.
    """
    directory.mkdir(parents=True, exist_ok=True)
    changes: list[str] = []
    for name, text in sorted(files.items()):
        target = directory / name
        if target.is_file() and target.read_text(encoding="utf-8") == text:
            continue
        partial = directory / f".{name}.partial"
        partial.write_text(text, encoding="utf-8")
        partial.chmod(FILE_MODE)
        os.replace(partial, target)
        changes.append(f"wrote {target}")
    for stale in sorted(directory.glob(owned)):
        if stale.name not in files and stale.is_file():
            stale.unlink()
            changes.append(f"removed {stale}")
    return changes


def provision(
    settings: Settings, *, dashboards_dir: Path | None, rules_dir: Path | None
) -> list[str]:
    """Write the dashboards and/or the rule files; at least one directory is required."""
    if dashboards_dir is None and rules_dir is None:
        raise ValueError("nothing to provision: give a dashboards directory, a rules one or both")
    changes: list[str] = []
    if dashboards_dir is not None:
        changes += write_dir(dashboards_dir, dashboard_files(settings), DASHBOARDS_GLOB)
    if rules_dir is not None:
        changes += write_dir(rules_dir, rules_files(settings), RULES_GLOB)
    return changes
