"""Prometheus recording and alerting rules, generated from Python with the thresholds in
settings, their promtool unit tests, the Alertmanager configuration and on-call data."""
