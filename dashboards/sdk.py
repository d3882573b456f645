"""grafana-foundation-sdk's v1 dashboard builders and models, imported once and quietly.

The SDK warns at import that a v2 dashboard schema exists. Grafana's file provisioning,
its HTTP API and the schemas our tests validate against are the v1 dashboard, so that is
what we build; every dashboards module imports the SDK through here.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Prefer using dashboardv2", DeprecationWarning)
    from grafana_foundation_sdk.builders import common as cb
    from grafana_foundation_sdk.builders import dashboard as dash
    from grafana_foundation_sdk.builders import (
        heatmap,
        piechart,
        prometheus,
        stat,
        table,
        timeseries,
    )
    from grafana_foundation_sdk.cog import builder as cogbuilder
    from grafana_foundation_sdk.cog import variants as cogvariants
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as model
    from grafana_foundation_sdk.models import heatmap as heatmap_model
    from grafana_foundation_sdk.models import piechart as piechart_model
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat

__all__ = [
    "JSONEncoder",
    "PromQueryFormat",
    "cb",
    "cogbuilder",
    "cogvariants",
    "common",
    "dash",
    "heatmap",
    "heatmap_model",
    "model",
    "piechart",
    "piechart_model",
    "prometheus",
    "stat",
    "table",
    "timeseries",
]
