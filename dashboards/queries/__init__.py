"""SQL of the dashboards' PostgreSQL panels, one module per dashboard."""
