"""SQL of the drilldown API: constant fragments only, values always bound as parameters."""
