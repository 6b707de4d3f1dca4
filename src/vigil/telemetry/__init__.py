"""Telemetry: the metric model, selectors, ingest (push) and the embedded store."""
