"""The KPI collectors, one per group of related families."""
