"""Every opsdeck dashboard, and the JSON files they generate (``dashboards/generated/``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboards import api_developers, command_center, opsdeck_health, payments, webhooks
from dashboards.render import to_dict, to_json
from opsdeck.settings import Settings

GENERATED = Path("dashboards") / "generated"


@dataclass(frozen=True)
class Board:
    uid: str
    build: Callable[[Settings], Any]

    @property
    def path(self) -> Path:
        """Where the JSON lives, relative to the repository root."""
        return GENERATED / f"{self.uid}.json"


BOARDS = (
    Board(command_center.UID, lambda s: command_center.build(s.thresholds)),
    Board(payments.UID, lambda s: payments.build(s.exporter)),
    Board(api_developers.UID, lambda s: api_developers.build()),
    Board(webhooks.UID, lambda s: webhooks.build(s.thresholds)),
    Board(opsdeck_health.UID, lambda s: opsdeck_health.build()),
)


def dashboards(settings: Settings) -> dict[str, dict[str, Any]]:
    """uid → dashboard JSON (as a dict)."""
    return {board.uid: to_dict(board.build(settings)) for board in BOARDS}


def generated_files(settings: Settings) -> dict[Path, str]:
    """Repository-relative path → file content, for every dashboard."""
    boards = dashboards(settings)
    return {board.path: to_json(boards[board.uid]) for board in BOARDS}


def panel_id(board: dict[str, Any], title: str) -> int:
    for panel in board.get("panels", []):
        if panel.get("title") == title:
            return int(panel["id"])
    raise KeyError(f"no panel {title!r} in dashboard {board.get('uid')}")
