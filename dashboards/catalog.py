"""Every opsdeck dashboard, and the JSON files they generate (``dashboards/generated/``).

A dashboard is a function of the settings: thresholds colour its tiles, and the API's
public URL is its ``api_url`` constant, so the same code renders the committed files (with
the default settings) and a deployment's own (with its settings).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import Settings
from dashboards import api_developers, command_center, opsdeck_health, payments, webhooks
from dashboards.links import PublicUrls
from dashboards.render import to_dict, to_json

GENERATED = Path("dashboards") / "generated"


@dataclass(frozen=True)
class Board:
    uid: str
    build: Callable[[Settings], Any]

    @property
    def path(self) -> Path:
        """Where the JSON lives, relative to the repository root."""
        return GENERATED / f"{self.uid}.json"


def _api(settings: Settings) -> str:
    return PublicUrls.of(settings).api


BOARDS = (
    Board(command_center.UID, lambda s: command_center.build(s.thresholds, api_url=_api(s))),
    Board(payments.UID, lambda s: payments.build(s.exporter, api_url=_api(s))),
    Board(api_developers.UID, lambda s: api_developers.build(api_url=_api(s))),
    Board(webhooks.UID, lambda s: webhooks.build(s.thresholds, api_url=_api(s))),
    Board(opsdeck_health.UID, lambda s: opsdeck_health.build(api_url=_api(s))),
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
