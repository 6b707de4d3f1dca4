"""Telemetry out: vigil's push-format samples written where other tools read them.

- :mod:`vigil.telemetry.out.cloudwatch`: CloudWatch Embedded Metric Format lines and PutMetricData
  requests, batched within the API's limits (the platform's custom metrics: job success, outbox
  backlog, index staleness);
- :mod:`vigil.telemetry.out.openmetrics`: OpenMetrics text for ``promtool tsdb create-blocks-from
  openmetrics`` (a Prometheus backfill holding exactly what the embedded store holds).
"""
