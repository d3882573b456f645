"""Settings read from files: ``<VAR>_FILE`` variables and a secrets directory.

Containers receive secrets as files (Docker and Kubernetes secrets under ``/run/secrets``)
because environment variables leak into ``docker inspect``, crash reports and every child
process. Any setting may therefore come from a file:

- ``<VAR>_FILE=/path`` reads ``<VAR>`` from that file, e.g.
  ``OPSDECK_API__SECRET_KEY_FILE=/run/secrets/api_secret_key`` or ``DATABASE_URL_FILE=...``;
- a secrets directory (``OPSDECK_SECRETS_DIR``; ``/run/secrets`` when unset and present)
  holds files named after the variable, in lower or exact case
  (``/run/secrets/opsdeck_api__secret_key``). Files there that name no opsdeck setting belong
  to other programs and are left alone, except names starting with ``opsdeck_``: those are
  meant for opsdeck, so a misspelt one is refused like a misspelt variable.

A file holds exactly what the variable would hold, less one trailing newline, and is parsed
exactly like it: the sources below are pydantic-settings' environment source reading these
values instead of ``os.environ``. Whatever cannot be read raises :class:`FileSettingError`
naming the variable to fix; nothing unreadable is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic_settings import BaseSettings, EnvSettingsSource

SECRETS_DIR_ENV = "OPSDECK_SECRETS_DIR"
DEFAULT_SECRETS_DIR = Path("/run/secrets")
FILE_SUFFIX = "_FILE"
OPSDECK_PREFIX = "OPSDECK_"


class FileSettingError(Exception):
    """A settings file cannot be used; ``variable`` is what the user has to fix."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem


def file_variable_target(variable: str, known: Mapping[str, object]) -> str | None:
    """The setting variable that ``variable`` (``<VAR>_FILE``) reads from a file, or None
    when ``variable`` is no such reference. A setting whose own name ends in ``_FILE``
    (``OPSDECK_INCIDENTS__ONCALL_FILE``) is that setting, not a reference."""
    upper = variable.upper()
    if upper in known or not upper.endswith(FILE_SUFFIX):
        return None
    target = upper.removesuffix(FILE_SUFFIX)
    return target if target in known else None


def read_value(path: Path, variable: str) -> str:
    """The value a settings file holds: its text less one trailing newline."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FileSettingError(variable, f"cannot read {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise FileSettingError(variable, f"{path} is not UTF-8 text") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def values_from_file_variables(
    environ: Mapping[str, str], known: Mapping[str, object]
) -> dict[str, str]:
    """Setting variable -> value, for every ``<VAR>_FILE`` variable in ``environ``."""
    values: dict[str, str] = {}
    for variable in sorted(environ):
        target = file_variable_target(variable, known)
        if target is None:
            continue
        if not environ[variable]:
            raise FileSettingError(variable, f"empty; name the file that holds {target}")
        values[target] = read_value(Path(environ[variable]), variable)
    return values


def secrets_dir(environ: Mapping[str, str]) -> Path | None:
    """The secrets directory to read: the configured one (which must exist), else
    ``/run/secrets`` when this machine has one."""
    configured = environ.get(SECRETS_DIR_ENV)
    if configured is None:
        return DEFAULT_SECRETS_DIR if DEFAULT_SECRETS_DIR.is_dir() else None
    if not configured:
        raise FileSettingError(SECRETS_DIR_ENV, "empty; name a directory of secret files")
    path = Path(configured)
    if not path.is_dir():
        raise FileSettingError(SECRETS_DIR_ENV, f"{path} is not a directory")
    return path


def values_from_secrets_dir(directory: Path, known: Mapping[str, object]) -> dict[str, str]:
    """Setting variable -> value, for every file in ``directory`` named after a setting."""
    try:
        entries = sorted(os.listdir(directory))
    except OSError as exc:
        raise FileSettingError(
            SECRETS_DIR_ENV, f"cannot read {directory}: {exc.strerror}"
        ) from None
    found: dict[str, str] = {}
    for entry in entries:
        variable = entry.upper()
        if variable in known and entry in (variable, variable.lower()):
            if variable in found:
                problem = f"both {directory / found[variable]} and {directory / entry} set it"
                raise FileSettingError(variable, problem)
            found[variable] = entry
        elif variable.startswith(OPSDECK_PREFIX):
            problem = (
                f"{directory / entry} names no setting (files are named after the "
                "variable, in lower or upper case)"
            )
            raise FileSettingError(SECRETS_DIR_ENV, problem)
    return {variable: read_value(directory / entry, variable) for variable, entry in found.items()}


class ValuesSource(EnvSettingsSource):
    """The environment source over a given mapping of variables, so that a value read from
    a file is parsed (nesting, JSON lists, aliases) exactly as the variable would be."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, str]) -> None:
        # Read by _load_env_vars, which the parent's __init__ calls.
        self._values = {name.lower(): value for name, value in values.items()}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._values

    def __repr__(self) -> str:
        # Never the values: they are secrets.
        return f"{type(self).__name__}({sorted(self._values)})"
