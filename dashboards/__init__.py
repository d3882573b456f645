"""Grafana dashboards as Python, generating the committed JSON beside them."""
