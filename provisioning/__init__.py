"""Prometheus and Grafana provisioning: files mounted by docker-compose, and package data
that ``opsdeck demo`` and the tests rewrite for one machine (``alert_rules/localize.py``)."""
