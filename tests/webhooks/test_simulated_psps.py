"""The live stream as the PSPs: signed Stripe and Paystack events sent to a real
``opsdeck api``, with duplicates, reordering and bad signatures, processed by a real worker
into ``platform.psp_transactions``, each event once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from simulator.live import LiveOptions, LiveSimulator
from simulator.psp_sender import PspSender, PspWebhooks
from tests.api.conftest import PAYSTACK_TEST_SECRET, SECRET, STRIPE_TEST_SECRET, serving
from tests.conftest import opsdeck_env
from tests.webhooks.harness import sql, wait_for, workers

pytestmark = pytest.mark.slow


def test_the_live_stream_reports_charges_through_the_gateway(
    history_url: str, redis_url: str, logs: Path
) -> None:
    env = opsdeck_env(
        DATABASE_URL=history_url,
        REDIS_URL=redis_url,
        OPSDECK_API__SECRET_KEY=SECRET,
        OPSDECK_WEBHOOKS__STRIPE_SECRETS=f'["{STRIPE_TEST_SECRET}"]',
        OPSDECK_WEBHOOKS__PAYSTACK_SECRETS=f'["{PAYSTACK_TEST_SECRET}"]',
    )
    before = sql(history_url, "SELECT count(*) FROM platform.psp_transactions")[0][0]
    with serving(env, logs / "api.log") as base, workers(history_url, logs) as (worker,):
        target = PspWebhooks(
            f"{base}/webhooks/inbound",
            STRIPE_TEST_SECRET,
            PAYSTACK_TEST_SECRET,
            duplicate_share=0.3,
            bad_signature_share=0.2,
            reorder_share=0.2,
        )
        options = LiveOptions(
            rate=30,
            seed=5,
            seasonal=False,
            speedup=30.0,
            psp_delay_seconds=1.0,
            psp_webhooks=target,
        )
        simulator = LiveSimulator(history_url, history_url, options)
        stop = threading.Event()
        thread = threading.Thread(target=simulator.run, args=(stop, lambda c, e: None))
        thread.start()
        time.sleep(15)
        stop.set()
        thread.join()
        assert simulator.psp_sender is not None
        assert simulator.psp_sender.sent > 20
        wait_for(
            "every stored event processed",
            lambda: (
                sql(
                    history_url,
                    "SELECT count(*) FROM ops.webhook_inbound_events WHERE status <> 'processed'",
                )
                == [(0,)]
            ),
            60,
        )
        stored = sql(history_url, "SELECT count(*) FROM ops.webhook_inbound_events")[0][0]
        wait_for(
            "the processing counted",
            lambda: (
                worker.value(
                    "opsdeck_webhook_delivery_attempts_total",
                    direction="inbound",
                    result="succeeded",
                )
                == float(stored)
            ),
        )
    events = sql(
        history_url,
        "SELECT provider, count(*), sum(duplicates), sum(attempts) "
        "FROM ops.webhook_inbound_events GROUP BY 1 ORDER BY 1",
    )
    assert [e[0] for e in events] == ["paystack", "stripe"]
    total = sum(int(e[1]) for e in events)
    assert sum(int(e[2]) for e in events) > 0  # duplicates were acknowledged, not stored
    assert sum(int(e[3]) for e in events) == total  # each processed once
    rejected = sql(
        history_url,
        "SELECT count(*) FROM ops.webhook_inbound_rejections WHERE reason = 'bad_signature'",
    )
    assert rejected[0][0] > 0
    # The stream wrote no PSP rows itself: every new one came through the gateway.
    after = sql(history_url, "SELECT count(*) FROM platform.psp_transactions")[0][0]
    applied = sql(
        history_url,
        "SELECT count(*) FROM ops.webhook_inbound_events WHERE outcome = 'applied'",
    )[0][0]
    assert after - before == applied == total
    mismatched = sql(
        history_url,
        "SELECT count(*) FROM ops.webhook_inbound_events i "
        "JOIN platform.psp_transactions p "
        "ON p.psp_id = coalesce(convert_from(i.body, 'UTF8')::jsonb #>> '{data,object,id}', "
        "convert_from(i.body, 'UTF8')::jsonb #>> '{data,reference}') "
        "WHERE p.amount_cents <> coalesce((convert_from(i.body, 'UTF8')::jsonb "
        "#>> '{data,object,amount}')::bigint, (convert_from(i.body, 'UTF8')::jsonb "
        "#>> '{data,amount}')::bigint)",
    )
    assert mismatched == [(0,)]


def test_a_restart_reports_what_the_last_run_left_unreported_as_webhooks(
    history_url: str,
) -> None:
    """Charges of the last minutes the PSP never reported are caught up on at start, and with
    ``psp_webhooks`` set that catch-up is webhooks too: the stream writes no PSP row itself."""
    unreported = (
        "FROM platform.transactions t WHERE psp_id IS NOT NULL"
        " AND NOT EXISTS (SELECT FROM platform.psp_transactions p WHERE p.psp_id = t.psp_id)"
    )
    # Exactly five unreported charges in the last 15 minutes, whenever the history was made.
    sql(
        history_url,
        f"UPDATE platform.transactions SET created_at = created_at - interval '1 hour'"
        f" WHERE id IN (SELECT id {unreported} AND created_at > now() - interval '1 hour')",
    )
    sql(
        history_url,
        f"UPDATE platform.transactions SET created_at = now()"
        f" WHERE id IN (SELECT id {unreported} LIMIT 5)",
    )
    before = sql(history_url, "SELECT count(*) FROM platform.psp_transactions")[0][0]
    target = PspWebhooks("http://127.0.0.1:9/webhooks/inbound", "s", "p", reorder_share=0.0)
    options = LiveOptions(rate=30, seed=5, psp_webhooks=target)

    simulator = LiveSimulator(history_url, history_url, options)

    assert simulator.psp_sender is not None
    assert simulator.psp_sender.pending() == 5
    assert sql(history_url, "SELECT count(*) FROM platform.psp_transactions")[0][0] == before
    # Without webhooks the PSP's catch-up lands in the table directly.
    LiveSimulator(history_url, history_url, LiveOptions(rate=30, seed=5))
    after = sql(history_url, "SELECT count(*) FROM platform.psp_transactions")[0][0]
    assert after - before == 5


def test_an_uncaptured_authorization_is_reported_as_a_succeeded_charge() -> None:
    target = PspWebhooks("http://127.0.0.1:9/webhooks/inbound", "s", "p", reorder_share=0.0)
    sender = PspSender(target, seed=1)
    sender.submit(("ch_1", "stripe", 1200, "USD", "requires_capture", False), 0.0)
    sender.submit(("ch_2", "stripe", 1200, "USD", "failed", False), 0.0)
    types = [json.loads(d.body)["type"] for d in sender._due()]
    assert sorted(types) == ["charge.failed", "charge.succeeded"]
