"""Upload the generated dashboards to a live Grafana, through ``grafana-client``.

The dashboards go into one folder, overwriting what is there: pushing the same files twice
sends the same requests and leaves Grafana as it was. Files on disk are what is pushed,
so what CI checked is what Grafana gets.
"""

from __future__ import annotations

from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

FOLDER_UID = "opsdeck"
FOLDER_TITLE = "opsdeck"
MESSAGE = "opsdeck dashboards push"
NOT_FOUND = 404


class GrafanaPushError(Exception):
    """Grafana refused or failed; ``permanent`` when retrying the same push cannot help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class GrafanaPublisher:
    def __init__(
        self, url: str, credential: str | tuple[str, str] | None, timeout: float = 10.0
    ) -> None:
        self.api = GrafanaApi.from_url(url, credential=credential, timeout=timeout)

    def push(self, boards: list[dict[str, Any]]) -> list[str]:
        """Ensure the folder exists, then upload every board; returns their uids."""
        try:
            self._ensure_folder()
            for board in boards:
                self.api.dashboard.update_dashboard(
                    {
                        "dashboard": {**board, "id": None},
                        "folderUid": FOLDER_UID,
                        "overwrite": True,
                        "message": MESSAGE,
                    }
                )
        except GrafanaClientError as exc:
            raise GrafanaPushError(f"Grafana refused: {exc.message}", permanent=True) from exc
        except GrafanaException as exc:
            raise GrafanaPushError(f"Grafana failed: {exc.message}", permanent=False) from exc
        return [str(board["uid"]) for board in boards]

    def _ensure_folder(self) -> None:
        try:
            self.api.folder.get_folder(FOLDER_UID)
        except GrafanaClientError as exc:
            if exc.status_code != NOT_FOUND:
                raise
            self.api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
