"""Where the files opsdeck ships live: package data, found through ``importlib.resources``.

Templates, the stylesheet, runbooks, rule files, the Alertmanager and Prometheus configs,
the on-call file and the generated dashboards are package data of the package that owns
them, so an installed wheel finds them exactly as a source checkout does. Nothing computes
a path from ``__file__`` up to a checkout.

Prometheus, Alertmanager, Jinja and ``FileResponse`` need real files: pip installs wheels
unpacked, so each asset is a directory on disk; a zipped install is refused with a clear
error rather than half working.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_dir(package: str) -> Path:
    """The directory of an installed (or checked-out) package, as a real path."""
    location = files(package)
    if not isinstance(location, Path) or not location.is_dir():
        raise RuntimeError(f"package {package!r} is not installed as files on disk")
    return location


def install_root() -> Path:
    """The directory holding opsdeck's top-level packages: a checkout, or site-packages.

    Generated artefacts are named relative to it (``dashboards/generated/…``), so the
    same names work in both.
    """
    return package_dir("dashboards").parent


def api_templates() -> Path:
    return package_dir("api") / "templates"


def api_static() -> Path:
    return package_dir("api") / "static"


def runbooks() -> Path:
    return package_dir("runbooks")


def alert_rules() -> Path:
    return package_dir("alert_rules")


def prometheus_config() -> Path:
    return package_dir("provisioning") / "prometheus" / "prometheus.yml"
