"""The incremental KPI engine and its /metrics server."""
