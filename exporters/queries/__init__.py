"""SQL of the KPI engine, one module per collector. Windows are half-open:
``%(since)s <= event_time < %(until)s``."""
