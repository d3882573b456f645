"""The settings a running ``opsdeck demo`` leaves for the commands run beside it.

The demo starts PostgreSQL and Redis of its own, on ports it picks, and makes the keys its
services share (the secrets key, the audit chain key). So that ``opsdeck users list``,
``opsdeck users reset-password`` and the other commands reach that demo from the same
directory without exporting anything, the demo writes those settings to
``<data_dir>/demo-settings.json`` (readable by its owner only, like the keys beside it),
with its process id, and removes the file when it stops.

:func:`core.settings.load_settings` reads the file only when no source of its own sets
``DATABASE_URL`` or ``REDIS_URL``, and only while the process that wrote it is alive: a
file left behind by a demo that was killed is ignored. Whatever is set explicitly wins.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

FILE_NAME = "demo-settings.json"


class DemoSettingsError(Exception):
    """The file cannot be used; the message says why."""


def settings_file(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def write(data_dir: Path, variables: Mapping[str, str], pid: int | None = None) -> Path:
    """Leave ``variables`` (setting variable -> value) for commands run beside the demo
    process ``pid`` (this one by default); replaced whole, never half written."""
    path = settings_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"pid": os.getpid() if pid is None else pid, "settings": dict(variables)}
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{FILE_NAME}.")
    try:
        with os.fdopen(handle, "w") as out:  # mkstemp: readable by its owner only
            json.dump(record, out, indent=2, sort_keys=True)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def remove(data_dir: Path, pid: int | None = None) -> None:
    """Remove the file, if the demo process ``pid`` (this one by default) wrote it."""
    path = settings_file(data_dir)
    record = _read(path)
    if record is not None and record[0] == (os.getpid() if pid is None else pid):
        path.unlink(missing_ok=True)


def running_pid(data_dir: Path) -> int | None:
    """The process id of the live demo that left its settings in ``data_dir``, if any."""
    record = _read(settings_file(data_dir))
    return record[0] if record is not None and _alive(record[0]) else None


def live_settings(data_dir: Path) -> dict[str, str] | None:
    """The variables a live demo left in ``data_dir``; None without one."""
    record = _read(settings_file(data_dir))
    return record[1] if record is not None and _alive(record[0]) else None


def _read(path: Path) -> tuple[int, dict[str, str]] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DemoSettingsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        record = json.loads(text)
        pid, values = int(record["pid"]), record["settings"]
    except (ValueError, TypeError, KeyError):
        raise DemoSettingsError(f"{path} is not a demo's settings file; remove it") from None
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise DemoSettingsError(f"{path} is not a demo's settings file; remove it")
    return pid, values


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # no signal: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
