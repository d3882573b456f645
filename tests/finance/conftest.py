"""The API with incidents enabled, over a migrated database without history."""

from __future__ import annotations

from tests.incidents.conftest import alertmanager_url, anyio_backend, api, api_db, api_redis

__all__ = ["alertmanager_url", "anyio_backend", "api", "api_db", "api_redis"]
