"""Alerting: rules and their state (model, rules, evaluate, state), routing and delivery."""
