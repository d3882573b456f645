"""The drilldowns Grafana links into: one module per page family, built on the shared
list/detail/export machinery of :mod:`api.drilldowns.views`."""
