"""Dashboards: the ``dashboards:`` spec section and panel queries over the Source protocol (pure),
the SLO charts (burn-down, burn rates, SLI over time) computed with the SLO engine, and the
Grafana and CloudWatch exports."""
