"""Backfill: deterministic for a seed, realistic in shape, and only into an empty schema."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from core.settings import SimulatorSettings
from simulator.backfill import PLATFORM_TABLES, BackfillPlan, BackfillRefused, run_backfill
from simulator.vocabulary import SCALES
from tests.conftest import opsdeck_env, run_opsdeck

UNTIL = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _backfill(url: str, seed: int = 3, days: float = 1) -> None:
    plan = BackfillPlan(days, SCALES["small"], seed, UNTIL)
    run_backfill(url, plan, SimulatorSettings(), lambda table, rows: None)


def _fingerprints(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return {
            table: str(
                conn.execute(
                    f"SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM platform.{table} t"
                ).fetchone()
            )
            for table in PLATFORM_TABLES
        }


def test_same_seed_same_history(db_url: str, empty_db_url: str) -> None:
    from core.migrate import migrate

    migrate(empty_db_url, empty_db_url)
    _backfill(db_url)
    _backfill(empty_db_url)
    assert _fingerprints(db_url) == _fingerprints(empty_db_url)


def test_another_seed_another_history(db_url: str, empty_db_url: str) -> None:
    from core.migrate import migrate

    migrate(empty_db_url, empty_db_url)
    _backfill(db_url, seed=3)
    _backfill(empty_db_url, seed=4)
    differing = {
        t for t, fp in _fingerprints(db_url).items() if fp != _fingerprints(empty_db_url)[t]
    }
    assert {"bookings", "transactions", "api_logs"} <= differing


def test_refuses_a_platform_with_rows(db_url: str) -> None:
    _backfill(db_url)
    with pytest.raises(BackfillRefused, match="already has rows"):
        _backfill(db_url)


def test_history_has_the_seeds_shape(history_url: str) -> None:
    with psycopg.connect(history_url) as conn:

        def one(sql: str) -> float:
            row = conn.execute(sql).fetchone()
            assert row is not None
            return float(row[0])

        failed = one("SELECT count(*) FROM platform.transactions WHERE status = 'failed'")
        for code, share in (
            ("card_declined", 0.45),
            ("insufficient_funds", 0.30),
            ("authentication_required", 0.15),
        ):
            got = (
                one(f"SELECT count(*) FROM platform.transactions WHERE failure_code = '{code}'")
                / failed
            )
            assert abs(got - share) < 0.05, (code, got)
        test_share = one("SELECT avg((NOT livemode)::int) FROM platform.transactions")
        assert 0.005 < test_share < 0.1
        api_test_share = one("SELECT avg((NOT livemode)::int) FROM platform.api_logs")
        assert 0.01 < api_test_share < 0.08
        assert one("SELECT count(DISTINCT route) FROM platform.api_logs") <= 20
        p50, p99 = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), "
            "percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) FROM platform.api_logs"
        ).fetchone() or (0, 0)
        assert p99 > 8 * p50  # long-tailed latencies
        night, day = conn.execute(
            "SELECT count(*) FILTER (WHERE extract(hour FROM created_at AT TIME ZONE 'UTC') = 3), "
            "count(*) FILTER (WHERE extract(hour FROM created_at AT TIME ZONE 'UTC') = 11) "
            "FROM platform.bookings"
        ).fetchone() or (0, 0)
        assert day > 5 * night  # daily seasonality
        assert (
            one(
                "SELECT count(*) FROM platform.bookings WHERE status = 'confirmed' AND confirmed_at IS NULL"
            )
            == 0
        )
        assert (
            one(
                "SELECT count(*) FROM platform.transactions WHERE captured_at IS NOT NULL "
                "AND status NOT IN ('captured', 'refunded', 'partially_refunded')"
            )
            == 0
        )
        stuck = one(
            "SELECT count(*) FROM platform.bookings WHERE status = 'pending' "
            "AND created_at < (SELECT max(created_at) FROM platform.bookings) "
            "- interval '10 minutes'"
        )
        # at the history's end (the live sweep settles older ones once the demo runs)
        assert stuck == 0  # history alone must not fire the stuck-bookings alert


def test_cli_reports_rows_per_second(db_url: str) -> None:
    env = opsdeck_env(DATABASE_URL=db_url)
    result = run_opsdeck(
        "simulate", "--backfill", "0.5", "--scale", "small", "--seed", "9", env=env
    )
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
    assert lines["table"][-1] == "rows/s"
    for table in ("bookings", "transactions", "api_logs", "site_sessions"):
        rows, rate = int(lines[table][1].replace(",", "")), float(lines[table][3].replace(",", ""))
        assert rows > 0
        assert rate > 0
    assert "total" in lines
