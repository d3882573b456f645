"""What a running API holds: connection pools, Redis, keys, templates, metrics.

The platform pool is read-only (``default_transaction_read_only``): the drilldowns never
write the platform. Connections are named ``API`` (``core/application_names.py``), which the
KPI engine leaves out of its commit horizon, so a long export never holds the KPIs back.

Exports have pools of their own (``api.export_pool_size`` each, read-only, named
``API_EXPORT``), whose sessions end a transaction left idle past the export deadline: a
client that stops reading an export holds one of these, never a connection the pages,
sign-in or ``/readyz`` need.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cached_property

from psycopg_pool import AsyncConnectionPool
from redis.asyncio import BlockingConnectionPool, Redis
from starlette.templating import Jinja2Templates

from api.auth.key_usage import KeyUsage
from api.auth.rate_limit import RateLimiter
from api.auth.session_users import SessionUsers
from api.auth.sessions import SessionStore
from api.auth.trusted_proxy import TrustedProxy
from api.display import filters
from api.http_metrics import HttpMetrics
from api.signing import Keys
from core import assets
from core.application_names import API, API_EXPORT
from core.database import async_pool
from core.sealed_secrets import SecretBox
from core.settings import ApiSettings, Settings, SettingsError

TEMPLATES = assets.api_templates()
REDIS_CONNECTIONS = 100
REDIS_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class ExportPools:
    platform: AsyncConnectionPool
    ops: AsyncConnectionPool

    def of(self, database: str) -> AsyncConnectionPool:
        return self.platform if database == "platform" else self.ops


@dataclass
class Runtime:
    settings: Settings
    platform: AsyncConnectionPool
    ops: AsyncConnectionPool
    exports: ExportPools
    redis: Redis
    keys: Keys
    sessions: SessionStore
    session_users: SessionUsers
    limiter: RateLimiter
    proxy: TrustedProxy
    templates: Jinja2Templates
    metrics: HttpMetrics
    key_usage: KeyUsage = field(default_factory=KeyUsage)  # requests per API key, not yet saved

    @property
    def api(self) -> ApiSettings:
        return self.settings.api

    @cached_property
    def secret_box(self) -> SecretBox:
        """Seals and opens the secrets stored in the database (TOTP, webhook signing)."""
        return SecretBox.required(self.settings, "opsdeck api")


def secret_key(settings: Settings) -> str:
    secret = settings.api.secret_key
    if secret is None or len(secret.get_secret_value()) < 32:
        raise SettingsError(
            "OPSDECK_API__SECRET_KEY (api.secret_key)",
            "needs at least 32 characters (e.g. from `python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))'`)",
        )
    return secret.get_secret_value()


def _pool(url: str, settings: ApiSettings, *, read_only: bool) -> AsyncConnectionPool:
    # psycopg prepares a query it has run five times, and PostgreSQL may then reuse one
    # generic plan for it: a plan made without the parameters (a 24-hour or a 30-day range,
    # a rare or a common search word) and kept whatever SET LOCAL later asks (the search's
    # choice of index, api.queries.api_logs). Every execution is planned for its values.
    return async_pool(
        url,
        API,
        settings.pool_max_connections,
        read_only=read_only,
        statement_timeout_seconds=settings.statement_timeout_seconds,
        parameters={
            "max_parallel_workers_per_gather": settings.parallel_workers_per_query,
            "plan_cache_mode": "force_custom_plan",
        },
        name=f"{API}-{'platform' if read_only else 'ops'}",
    )


def _export_pool(url: str, settings: ApiSettings, database: str) -> AsyncConnectionPool:
    return async_pool(
        url,
        API_EXPORT,
        settings.export_pool_size,
        min_size=0,
        read_only=True,
        statement_timeout_seconds=settings.statement_timeout_seconds,
        parameters={
            "idle_in_transaction_session_timeout": int(settings.export_deadline_seconds * 1000),
            "max_parallel_workers_per_gather": settings.parallel_workers_per_query,
            "plan_cache_mode": "force_custom_plan",
        },
        name=f"{API_EXPORT}-{database}",
    )


@asynccontextmanager
async def open_runtime(settings: Settings, metrics: HttpMetrics) -> AsyncIterator[Runtime]:
    ops_url = settings.require("database_url", "opsdeck api")
    redis_url = settings.require("redis_url", "opsdeck api", "sessions and rate limits live there")
    keys = Keys(secret_key(settings))
    platform = _pool(settings.platform_url or ops_url, settings.api, read_only=True)
    ops = _pool(ops_url, settings.api, read_only=False)
    exports = ExportPools(
        _export_pool(settings.platform_url or ops_url, settings.api, "platform"),
        _export_pool(ops_url, settings.api, "ops"),
    )
    # A burst of requests (hundreds of live streams reconnecting at once) waits for one of
    # the pool's connections instead of failing with "Too many connections".
    redis = Redis.from_pool(  # which closes the pool with the client
        BlockingConnectionPool.from_url(
            redis_url,
            decode_responses=True,
            max_connections=REDIS_CONNECTIONS,
            timeout=REDIS_WAIT_SECONDS,
        )
    )
    for pool in (platform, ops, exports.platform, exports.ops):
        await pool.open(wait=False)
    templates = Jinja2Templates(directory=TEMPLATES)
    filters.install(templates.env)
    try:
        yield Runtime(
            settings=settings,
            platform=platform,
            ops=ops,
            exports=exports,
            redis=redis,
            keys=keys,
            sessions=SessionStore(redis, keys.session, settings.api.session_ttl_seconds),
            session_users=SessionUsers(ops, settings.api.session_recheck_seconds),
            limiter=RateLimiter(redis),
            proxy=TrustedProxy(settings.api),
            templates=templates,
            metrics=metrics,
        )
    finally:
        for pool in (platform, ops, exports.platform, exports.ops):
            await pool.close()
        await redis.aclose()
