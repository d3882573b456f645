"""``opsdeck demo``: the whole stack on one machine, with nothing configured.

Missing URLs are filled with embedded services (PostgreSQL, Redis). The database is
migrated and, on the first run, backfilled; then the live simulation and every opsdeck
service run as children, with Prometheus and Alertmanager when they are installed. All data
stays under the data directory and is reused next time.

The history is loaded at the live traffic's rate (``opsdeck simulate --backfill DAYS
--rate R``): every 24 h window and every baseline the alerts compare against holds traffic
like the traffic that follows, so normal traffic raises no alert.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from alert_rules.localize import (
    LocalAlerting,
    alertmanager_config,
    host_port,
    prometheus_config,
)
from core import running_demo
from core.application_names import DEMO
from core.audit import use_key
from core.database import connect
from core.database_roles import service_url
from core.migrate import migrate
from core.sealed_secrets import SecretBox, new_key
from core.settings import Settings
from opsdeck.demo_account import DemoAccount, ensure_account, sign_in_lines
from opsdeck.demo_webhooks import psp_secrets, receiver_service, worker_service
from opsdeck.embedded import EmbeddedPostgres, EmbeddedRedis, PortBook
from opsdeck.supervisor import Service, Supervisor, http_ready

log = logging.getLogger(__name__)
DEMO_API_URL = "http://127.0.0.1:8000"
STATUS_EVERY_SECONDS = 10.0
INSTALL_HINT = (
    "Prometheus/Alertmanager not found on PATH: install them with "
    "'apt-get install -y prometheus prometheus-alertmanager' to get alerting in the demo"
)
RECENT_TRAFFIC = """
SELECT (SELECT count(*) FROM platform.transactions WHERE created_at > now() - interval '1 min'),
       (SELECT count(*) FROM platform.bookings WHERE created_at > now() - interval '1 min'),
       (SELECT count(*) FROM platform.api_logs WHERE updated_at > now() - interval '1 min')
"""


@dataclass
class DemoPlan:
    settings: Settings
    data_dir: Path
    rate: float
    backfill_days: float
    urls: dict[str, str] = field(default_factory=dict)


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "opsdeck", *args]


class Demo:
    def __init__(self, plan: DemoPlan, say: Callable[[str], None]) -> None:
        self.plan = plan
        self.say = say
        self.supervisor = Supervisor()
        self.ports = PortBook(plan.data_dir / "ports.json")
        self.logs = plan.data_dir / "logs"

    def run(self, stop: threading.Event) -> int:
        try:
            self._start_stores()
            self._prepare_database()
            account = self._account()
            running_demo.write(self.plan.data_dir, self._cli_settings())
            if stop.is_set():
                return 0
            self._start_services()
            self._print_urls()
            for line in sign_in_lines(account, self._api_url()):
                self.say(line)
            self.say(
                "opsdeck commands run from this directory reach this demo, e.g. "
                "opsdeck users list (its settings: "
                f"{running_demo.settings_file(self.plan.data_dir)})"
            )
            return self._watch(stop)
        finally:
            self.say("stopping ...")
            running_demo.remove(self.plan.data_dir)
            self.supervisor.stop_all()
            self.say("stopped")

    # -- stores -----------------------------------------------------------------------

    def _start_stores(self) -> None:
        settings, urls = self.plan.settings, self.plan.urls
        if settings.database_url:
            urls["postgres"] = settings.database_url
        else:
            pg = EmbeddedPostgres(
                self.plan.data_dir / "postgres", self.ports.port("postgres", 55432)
            )
            pg.initialize()
            self.say(f"starting embedded PostgreSQL on port {pg.port} ...")
            self.supervisor.start(pg.service(self.logs / "postgres.log"))
            urls["postgres"] = pg.url
        urls["platform"] = settings.platform_database_url or urls["postgres"]
        if settings.redis_url:
            urls["redis"] = settings.redis_url
        else:
            redis = EmbeddedRedis(self.plan.data_dir / "redis", self.ports.port("redis", 56379))
            self.say(f"starting embedded Redis on port {redis.port} ...")
            self.supervisor.start(redis.service(self.logs / "redis.log"))
            urls["redis"] = redis.url

    def _prepare_database(self) -> None:
        urls = self.plan.urls
        if self.plan.settings.secrets_key is None:
            # A data directory from before secrets were sealed: its migration seals them.
            os.environ["OPSDECK_SECRETS_KEY"] = self._secrets_key()
        migrate(urls["postgres"], urls["platform"], roles=self.plan.settings.database_roles)
        with connect(urls["platform"], application_name=DEMO) as conn:
            empty = conn.execute("SELECT NOT EXISTS (SELECT FROM platform.bookings)").fetchone()
        if empty and empty[0] and self.plan.backfill_days > 0:
            self.say(
                f"first run: loading {self.plan.backfill_days:g} days of history at "
                f"{self.plan.rate:g} payment attempts/s ..."
            )
            self.supervisor.start(self._backfill_service())
            self._wait_for_exit("backfill")

    def _account(self) -> DemoAccount:
        """The demo's super admin, made on the first run (and audited, under the chain key
        the demo's services link with)."""
        if self.plan.settings.audit.chain_key is None:
            use_key(self._audit_chain_key())
        return ensure_account(self.plan.urls["postgres"], self._box())

    def _cli_settings(self) -> dict[str, str]:
        """What the commands run from this directory need to reach this demo: its stores
        and the keys it made (core.running_demo)."""
        settings, urls = self.plan.settings, self.plan.urls
        values = {"DATABASE_URL": urls["postgres"], "REDIS_URL": urls["redis"]}
        if urls["platform"] != urls["postgres"]:
            values["PLATFORM_DATABASE_URL"] = urls["platform"]
        if settings.secrets_key is None:
            values["OPSDECK_SECRETS_KEY"] = self._secrets_key()
        if settings.audit.chain_key is None:
            values["OPSDECK_AUDIT__CHAIN_KEY"] = self._audit_chain_key()
        return values

    def _backfill_service(self) -> Service:
        return Service(
            name="backfill",
            argv=_python(
                "simulate",
                "--backfill",
                f"{self.plan.backfill_days:g}",
                "--scale",
                "small",
                "--rate",
                f"{self.plan.rate:g}",
            ),
            log_file=self.logs / "backfill.log",
            env=self._env(),
        )

    def _wait_for_exit(self, name: str) -> None:
        while (exited := self.supervisor.exited()) is None:
            time.sleep(0.2)
        service, status = exited
        if service.name != name or status != 0:
            raise RuntimeError(
                f"{service.name} exited with status {status}; see {service.log_file}"
            )
        self.supervisor.forget(service)

    # -- services ---------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        urls = self.plan.urls
        env = {
            "DATABASE_URL": urls["postgres"],
            "PLATFORM_DATABASE_URL": urls["platform"],
            "REDIS_URL": urls["redis"],
        }
        for name in ("prometheus", "alertmanager"):
            if name in urls:
                env[f"{name.upper()}_URL"] = urls[name]
        if self.plan.settings.secrets_key is None:
            env["OPSDECK_SECRETS_KEY"] = self._secrets_key()
        if self.plan.settings.audit.chain_key is None:
            env["OPSDECK_AUDIT__CHAIN_KEY"] = self._audit_chain_key()
        return {**env, **self._webhook_env()}

    def _service_env(self) -> dict[str, str]:
        """:meth:`_env` for opsdeck's own services: connected as the service role, which
        may only append to the audit log (the simulator stands in for the platform and
        keeps the administrator's URL)."""
        roles, urls = self.plan.settings.database_roles, self.plan.urls
        return {
            **self._env(),
            "DATABASE_URL": service_url(urls["postgres"], roles),
            "PLATFORM_DATABASE_URL": service_url(urls["platform"], roles),
        }

    def _secrets_key(self) -> str:
        """The key the stored TOTP and webhook secrets are sealed with, made once."""
        key_file = self.plan.data_dir / "secrets-key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.touch(mode=0o600)
            key_file.write_text(new_key())
        return key_file.read_text().strip()

    def _audit_chain_key(self) -> str:
        return self._kept_secret("audit-chain-key", 48)

    def _box(self) -> SecretBox:
        box = SecretBox.from_settings(self.plan.settings)
        return box if box is not None else SecretBox(self._secrets_key())

    def _webhook_env(self) -> dict[str, str]:
        """The simulator sends signed PSP webhooks to the API, which knows the secrets; the
        worker may reach the demo's partner receiver on 127.0.0.1."""
        stripe, paystack = psp_secrets(self.plan.data_dir)
        # Booked once: the API's port must not be looked up again while the API holds it.
        inbound = self.plan.urls.setdefault(
            "psp-webhooks", f"http://127.0.0.1:{self.ports.port('api', 8000)}/webhooks/inbound"
        )
        return {
            "OPSDECK_SIMULATOR__PSP_WEBHOOK_URL": inbound,
            "OPSDECK_SIMULATOR__STRIPE_WEBHOOK_SECRET": stripe,
            "OPSDECK_SIMULATOR__PAYSTACK_SECRET_KEY": paystack,
            "OPSDECK_WEBHOOKS__STRIPE_SECRETS": f'["{stripe}"]',
            "OPSDECK_WEBHOOKS__PAYSTACK_SECRETS": f'["{paystack}"]',
            "OPSDECK_WEBHOOKS__SSRF_ALLOW": '["127.0.0.1/32"]',
        }

    def _start_services(self) -> None:
        self.supervisor.start(
            Service(
                name="simulator",
                argv=_python("simulate", "--live", "--rate", f"{self.plan.rate:g}"),
                log_file=self.logs / "simulator.log",
                env=self._env(),
            )
        )
        self._start_exporter()
        self._start_api()
        self._start_webhooks()
        self._start_monitoring()

    def _start_webhooks(self) -> None:
        """The gateway's worker, and a local partner receiver it delivers to."""
        receiver_port = self.ports.port("webhook-receiver", 9480)
        self.supervisor.start(
            receiver_service(self.plan.urls["postgres"], receiver_port, self.logs, self._box())
        )
        self.plan.urls["webhook-receiver"] = f"http://127.0.0.1:{receiver_port}"
        worker_port = self.ports.port("worker", 9465)
        self.supervisor.start(worker_service(worker_port, self.logs, self._service_env()))
        self.plan.urls["worker"] = f"http://127.0.0.1:{worker_port}/metrics"

    def _start_exporter(self) -> None:
        """The exporter; the key of Grafana's customer refs is generated once."""
        port = self.ports.port("exporter", 9464)
        env = self._service_env()
        if self.plan.settings.exporter.customer_ref_key is None:
            env["OPSDECK_EXPORTER__CUSTOMER_REF_KEY"] = self._kept_secret("customer-ref-key")
        self.supervisor.start(
            Service(
                name="exporter",
                argv=_python("exporter", "--host", "127.0.0.1", "--port", str(port)),
                log_file=self.logs / "exporter.log",
                env=env,
                ready=http_ready(f"http://127.0.0.1:{port}/metrics"),
            )
        )
        self.plan.urls["exporter"] = f"http://127.0.0.1:{port}/metrics"

    def _start_api(self) -> None:
        """The drilldown API; its secret key is generated once into the data directory."""
        port = self.ports.port("api", 8000)
        env = self._service_env()
        if self.plan.settings.audit.checkpoint_path is None:
            checkpoint = self.plan.data_dir.resolve() / "audit-checkpoint.json"
            env["OPSDECK_AUDIT__CHECKPOINT_PATH"] = str(checkpoint)
        if self.plan.settings.api.secret_key is None:
            env["OPSDECK_API__SECRET_KEY"] = self._kept_secret("api-secret-key", 48)
        # The demo serves plain HTTP on this machine: no Secure cookies, no HSTS.
        env["OPSDECK_API__COOKIE_SECURE"] = "false"
        # Incidents: Alertmanager's webhook token, and Alertmanager for the Mute 1h silences.
        env["OPSDECK_INCIDENTS__ALERTMANAGER_TOKEN"] = self._alertmanager_token()
        env["ALERTMANAGER_URL"] = f"http://127.0.0.1:{self.ports.port('alertmanager', 59093)}"
        self.supervisor.start(
            Service(
                name="api",
                argv=_python("api", "--port", str(port)),
                log_file=self.logs / "api.log",
                env=env,
                ready=http_ready(f"http://127.0.0.1:{port}/readyz"),
            )
        )
        self.plan.urls["api"] = f"http://127.0.0.1:{port}"

    def _alertmanager_token(self) -> str:
        """The bearer token Alertmanager sends to /hooks/alertmanager, made once."""
        return self._kept_secret("alertmanager-api-token")

    def _kept_secret(self, name: str, nbytes: int = 32) -> str:
        """A random secret made once into the data directory (readable by its owner only)."""
        secret_file = self.plan.data_dir / name
        if not secret_file.exists():
            secret_file.parent.mkdir(parents=True, exist_ok=True)
            secret_file.touch(mode=0o600)
            secret_file.write_text(secrets.token_urlsafe(nbytes))
        return secret_file.read_text().strip()

    def _start_monitoring(self) -> None:
        prometheus = shutil.which("prometheus")
        alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if not (prometheus and alertmanager):
            self.say(INSTALL_HINT)
            return
        am_port = self.ports.port("alertmanager", 59093)
        # Routing as in production; the API's hooks on localhost, secrets as local files.
        am_config = self.plan.data_dir / "alertmanager.yml"
        am_config.write_text(
            alertmanager_config(
                LocalAlerting(
                    self._api_url(),
                    secrets_dir=self.plan.data_dir / "secrets",
                    secrets={"alertmanager_api_token": self._alertmanager_token()},
                )
            )
        )
        self.supervisor.start(
            Service(
                name="alertmanager",
                argv=[
                    alertmanager,
                    f"--config.file={am_config}",
                    f"--storage.path={self.plan.data_dir / 'alertmanager'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                log_file=self.logs / "alertmanager.log",
                ready=http_ready(f"http://127.0.0.1:{am_port}/-/ready"),
            )
        )
        self.plan.urls["alertmanager"] = f"http://127.0.0.1:{am_port}"
        prom_port = self.ports.port("prometheus", 59090)
        config = self._prometheus_config(prom_port, am_port)
        self.supervisor.start(
            Service(
                name="prometheus",
                argv=[
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.plan.data_dir / 'prometheus'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--storage.tsdb.retention.time=400d",
                    "--web.enable-lifecycle",
                ],
                log_file=self.logs / "prometheus.log",
                ready=http_ready(f"http://127.0.0.1:{prom_port}/-/ready"),
            )
        )
        self.plan.urls["prometheus"] = f"http://127.0.0.1:{prom_port}"

    def _api_url(self) -> str:
        return self.plan.urls.get("api", DEMO_API_URL)

    def _prometheus_config(self, prom_port: int, am_port: int) -> Path:
        """The repository's Prometheus config with every job scraping its local process."""
        urls = self.plan.urls
        alertmanager = f"127.0.0.1:{am_port}"
        targets = {
            "prometheus": f"127.0.0.1:{prom_port}",
            "alertmanager": alertmanager,
            "opsdeck-exporter": host_port(urls["exporter"]),
            "opsdeck-api": host_port(self._api_url()),
        }
        if "worker" in urls:
            targets["opsdeck-worker"] = host_port(urls["worker"])
        config = prometheus_config(targets, alertmanager)
        path = self.plan.data_dir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=True))
        return path

    def _print_urls(self) -> None:
        self.say("opsdeck demo is running:")
        for name, url in self.plan.urls.items():
            self.say(f"  {name:<13} {url}")
        self.say(f"  {'logs':<13} {self.logs}")
        self.say("Ctrl-C stops everything.")

    def _watch(self, stop: threading.Event) -> int:
        """Wait for Ctrl-C, or for a service to exit. The first traffic line comes as soon as
        the simulator's first transaction is in, then one every ``STATUS_EVERY_SECONDS``."""
        last_line = time.monotonic()
        traffic_shown = False
        while not stop.wait(0.5):
            exited = self.supervisor.exited()
            if exited is not None:
                service, status = exited
                self.say(f"{service.name} exited with status {status}; see {service.log_file}")
                return 1
            due = time.monotonic() - last_line >= STATUS_EVERY_SECONDS
            if due or not traffic_shown:
                transactions = self._print_traffic(only_if_any=not due)
                if transactions is not None:
                    last_line = time.monotonic()
                    traffic_shown = traffic_shown or transactions > 0
        return 0

    def _print_traffic(self, only_if_any: bool) -> int | None:
        """Print the last minute's traffic and return its transactions; print nothing and
        return None when ``only_if_any`` and there were none."""
        try:
            with connect(self.plan.urls["platform"], application_name=DEMO) as conn:
                row = conn.execute(RECENT_TRAFFIC).fetchone() or (0, 0, 0)
        except Exception as exc:  # noqa: BLE001 - a status line must never stop the demo
            if only_if_any:
                return None
            self.say(f"traffic: cannot read the database ({exc})")
            return 0
        tx, bookings, api = (int(v) for v in row)
        if only_if_any and tx == 0:
            return None
        self.say(
            f"traffic: {tx:,} transactions, {bookings:,} bookings, {api:,} API requests "
            "in the last minute"
        )
        return tx
