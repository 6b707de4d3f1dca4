"""Canary analysis: an SLO-aware judge (deploy/canary/judge.py) and the deploy loop (run.py)."""
