"""The webhook gateway in ``opsdeck demo``: the worker, a local partner receiver that
verifies every signature, and the PSP secrets the simulator signs its webhooks with."""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path

from core.application_names import DEMO
from core.database import connect
from core.sealed_secrets import SecretBox
from gateway.endpoints import EndpointSpec, create, find_by_url
from opsdeck.supervisor import Service, http_ready

ACTIVE_SECRETS = """
SELECT secret FROM ops.webhook_endpoint_secrets
WHERE endpoint_id = %s AND (expires_at IS NULL OR expires_at > now()) ORDER BY id DESC
"""


def psp_secrets(data_dir: Path) -> tuple[str, str]:
    """(Stripe signing secret, Paystack secret key), generated on the first run."""
    path = data_dir / "psp-secrets.json"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(
            json.dumps(
                {
                    "stripe": "whsec_" + secrets.token_urlsafe(24),
                    "paystack": "sk_test_" + secrets.token_hex(20),
                }
            )
        )
    found = json.loads(path.read_text())
    return str(found["stripe"]), str(found["paystack"])


def _endpoint_secrets(ops_url: str, url: str, box: SecretBox) -> list[str]:
    """The receiver's endpoint (every platform event), created on the first run, and its
    active secrets (stored sealed in ``box``)."""
    with connect(ops_url, application_name=DEMO) as conn:
        endpoint_id = find_by_url(conn, url)
        if endpoint_id is None:
            spec = EndpointSpec(url, ("*",), "opsdeck demo: the local partner receiver")
            endpoint_id = int(create(conn, spec, box)[0]["id"])
            conn.commit()
        rows = conn.execute(ACTIVE_SECRETS, (endpoint_id,)).fetchall()
        return [box.open(str(r[0])) for r in rows]


def receiver_service(ops_url: str, port: int, logs: Path, box: SecretBox) -> Service:
    url = f"http://127.0.0.1:{port}/partner-webhooks"
    argv = [sys.executable, "-m", "opsdeck.partner_receiver", "--port", str(port)]
    for secret in _endpoint_secrets(ops_url, url, box):
        argv += ["--secret", secret]
    argv += ["--record", str(logs / "webhooks-received.tsv")]
    return Service(
        name="webhook-receiver",
        argv=argv,
        log_file=logs / "webhook-receiver.log",
        ready=http_ready(f"http://127.0.0.1:{port}/"),
    )


def worker_service(port: int, logs: Path, env: dict[str, str]) -> Service:
    return Service(
        name="worker",
        argv=[sys.executable, "-m", "opsdeck", "worker", "--metrics-port", str(port)],
        log_file=logs / "worker.log",
        env=env,
        ready=http_ready(f"http://127.0.0.1:{port}/metrics"),
    )
