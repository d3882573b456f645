"""Every ``application_name`` opsdeck's own PostgreSQL sessions carry, once, and which of
them write the platform.

The name is how a session is known in ``pg_stat_activity``: the commit horizon
(``core/horizon.py``, and the API's usage roll-up) leaves out the open transactions of the
sessions named here that never write the platform, so that a long export or a slow fold
does not hold the KPIs back. Leaving out a session that does write the platform would let
the horizon pass events that are not yet visible, and they would never be folded; so each
name says whether it writes the platform, and :data:`HORIZON_IGNORED` is computed from that
flag, never written by hand. Every module names its sessions with the constants below,
and a session that writes the platform takes a name whose flag says so (a name shared by
several modules writes the platform if any of them does).
"""

from __future__ import annotations

from dataclasses import dataclass

EXPORTER = "opsdeck-exporter"
API = "opsdeck-api"
API_EXPORT = "opsdeck-api-export"
API_ENGINE = "opsdeck-api-engine"
API_RETENTION = "opsdeck-api-retention"
API_LIVE = "opsdeck-api-live"
WORKER = "opsdeck-worker"
WORKER_METRICS = "opsdeck-worker-metrics"
GATEWAY = "opsdeck-gateway"
GATEWAY_TAIL = "opsdeck-gateway-tail"
SIMULATOR = "opsdeck-simulator"
SIMULATOR_BACKFILL = "opsdeck-simulator-backfill"
SIMULATOR_INJECT = "opsdeck-simulator-inject"
DEMO = "opsdeck-demo"
CLI = "opsdeck-cli"


@dataclass(frozen=True)
class ApplicationName:
    name: str
    writes_platform: bool
    sessions: str  # whose sessions these are, and why they do or do not write the platform


TABLE: tuple[ApplicationName, ...] = (
    ApplicationName(EXPORTER, False, "KPI engine, commit horizons: read the platform"),
    ApplicationName(API, False, "API pools: the platform pool is read-only"),
    ApplicationName(API_EXPORT, False, "API export pools: they only read"),
    ApplicationName(API_ENGINE, False, "escalation engine's leader lock: ops only"),
    ApplicationName(API_RETENTION, False, "audit retention: ops only"),
    ApplicationName(API_LIVE, False, "live lists' tails and horizons: they only read"),
    ApplicationName(WORKER, False, "gateway worker: deliveries and inbound claims, ops only"),
    ApplicationName(WORKER_METRICS, False, "gateway metrics and their leader lock: ops only"),
    ApplicationName(GATEWAY, True, "inbound processing: writes platform.psp_transactions"),
    ApplicationName(GATEWAY_TAIL, False, "outbox tail: read-only platform snapshots"),
    ApplicationName(SIMULATOR, True, "live traffic: it is the platform"),
    ApplicationName(SIMULATOR_BACKFILL, True, "history: writes the platform"),
    ApplicationName(SIMULATOR_INJECT, True, "injected incidents: writes the platform"),
    ApplicationName(DEMO, False, "demo set-up: reads the platform, its receiver in ops"),
    ApplicationName(CLI, False, "admin and audit commands: ops only"),
)

BY_NAME: dict[str, ApplicationName] = {entry.name: entry for entry in TABLE}
if len(BY_NAME) != len(TABLE):
    raise RuntimeError("an application name is listed twice in core/application_names.py")

# The sessions the commit horizons leave out: those that never write the platform.
HORIZON_IGNORED: tuple[str, ...] = tuple(
    sorted(entry.name for entry in TABLE if not entry.writes_platform)
)
