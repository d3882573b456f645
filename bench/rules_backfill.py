"""The repository's recording rules evaluated over a built data directory's span, as blocks.

``promtool tsdb create-blocks-from rules`` evaluates rules against a running Prometheus and
cannot use a rule's output in the same run, so the rules go in levels: level 1 reads only
raw series, level n reads rules of lower levels. Each level is evaluated against a
Prometheus serving everything built so far, and its blocks are moved into the data
directory before the next level starts. Groups keep their names and intervals; a group
without an interval is evaluated at the global ``evaluation_interval`` of
``prometheus.yml``.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from alert_rules.rule_files import RECORDING_FILE
from bench.prometheus_server import PROMTOOL, binary, serve
from core import assets

Rule = dict[str, Any]
Group = dict[str, Any]


def recording_groups() -> list[Group]:
    path = assets.install_root() / RECORDING_FILE
    groups: list[Group] = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return groups


def evaluation_interval() -> str:
    config = yaml.safe_load(assets.prometheus_config().read_text(encoding="utf-8"))
    return str(config["global"]["evaluation_interval"])


def levels(groups: list[Group]) -> list[list[Group]]:
    """The groups split by level: a rule's level is one more than the highest level of the
    recorded series its expression reads (1 when it reads none)."""
    rules = [rule for group in groups for rule in group["rules"] if "record" in rule]
    level: dict[str, int] = {}
    for _ in rules:  # enough passes for the longest chain
        for rule in rules:
            reads = [
                level.get(other["record"], 1)
                for other in rules
                if re.search(rf"(?<![\w:]){re.escape(other['record'])}(?![\w:])", rule["expr"])
            ]
            level[rule["record"]] = 1 + max(reads, default=0)
    out: list[list[Group]] = []
    for n in range(1, max(level.values(), default=0) + 1):
        split = [
            {**group, "rules": [r for r in group["rules"] if level.get(r.get("record", "")) == n]}
            for group in groups
        ]
        out.append([group for group in split if group["rules"]])
    return out


def backfill(data: Path, start: datetime, end: datetime) -> list[tuple[int, int, float]]:
    """Evaluate every recording rule over [start, end] into ``data``; per level: (level,
    rules, seconds)."""
    figures = []
    for n, groups in enumerate(levels(recording_groups()), start=1):
        began = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=data.parent, prefix="rules-") as work:
            rules = Path(work) / f"level{n}.rules.yaml"
            rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), "utf-8")
            blocks = Path(work) / "blocks"
            with serve(data) as url:
                _promtool(url, rules, blocks, start, end)
            for block in blocks.iterdir():
                block.rename(data / block.name)
        figures.append((n, sum(len(g["rules"]) for g in groups), time.perf_counter() - began))
    return figures


def _promtool(url: str, rules: Path, blocks: Path, start: datetime, end: datetime) -> None:
    command = [
        binary(PROMTOOL),
        "tsdb",
        "create-blocks-from",
        "rules",
        "--quiet",
        f"--url={url}",
        f"--start={start.timestamp():.0f}",
        f"--end={end.timestamp():.0f}",
        f"--output-dir={blocks}",
        f"--eval-interval={evaluation_interval()}",
        str(rules),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"promtool rules backfill failed: {done.stderr.strip()[-2000:]}")
