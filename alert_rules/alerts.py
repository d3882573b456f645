"""Every alert opsdeck ships, in the order the rule file lists them."""

from __future__ import annotations

from alert_rules.alert import Alert
from alert_rules.business_alerts import business_alerts
from alert_rules.opsdeck_alerts import opsdeck_alerts
from alert_rules.seed_alerts import seed_alerts
from core.settings import Thresholds


def all_alerts(t: Thresholds) -> list[Alert]:
    return seed_alerts(t) + business_alerts(t) + opsdeck_alerts()
