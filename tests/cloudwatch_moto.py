"""What moto does not model of CloudWatch's GetMetricData, taught to it for the CloudWatch tests.

AWS cannot run here; moto stands in for it (tests/aws_helpers.py). moto 5 stores every value of
PutMetricData (``Values``/``Counts`` expanded) and answers GetMetricData's ``MetricStat`` queries for
Sum, Average, Minimum, Maximum and SampleCount. It does NOT model:

- **trimmed counts** ``TC(x:y)`` (moto answers None): added here as AWS documents them, the number
  of values ``v`` with ``x < v <= y`` (lower bound excluded, upper included; ``TC(:y)`` has no lower
  bound), per period, from the values moto stored;
- **metric math** (moto only echoes an expression that names one query): added here for the two
  functions vigil sends, ``SUM([a, b, ...])`` and ``MAX([...])`` over query ids, aligned by
  timestamp (a series without a point at a timestamp does not take part there);
- resolution and retention (1-minute data for 15 days, 5 minutes for 63, hours for 455), the
  two-weeks window of ListMetrics, pagination of GetMetricData (NextToken) and throttling: the
  source's handling of those is tested with botocore errors injected (aws_helpers.inject) and
  with its pure helpers, not on moto.

Everything else (the requests as botocore serialises and validates them, ListMetrics, the native
statistics, PutMetricData's storage) is moto's own. For speed, moto is handed one metric's datums
per native query (it scans every stored datum for every period otherwise, minutes per test).
"""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta
from typing import Iterator

TC = re.compile(r"^TC\((-?[0-9.eE+-]*):(-?[0-9.eE+-]*)\)$")
MATH = re.compile(r"^(SUM|MAX)\(\[([a-z][a-zA-Z0-9_]*(?:,[a-z][a-zA-Z0-9_]*)*)\]\)$")


def _key(namespace: str, name: str, dims) -> tuple:
    return (namespace, name, tuple(sorted(dims)))


def _index(backend) -> dict:
    idx: dict = {}
    for md in backend.get_all_metrics():
        idx.setdefault(_key(md.namespace, md.name, ((d.name, d.value) for d in md.dimensions)), []).append(md)
    return idx


def _tc(idx: dict, q: dict, start, end) -> dict:
    ms = q["MetricStat"]
    m = TC.match(ms["Stat"])
    assert m, ms["Stat"]
    lo = float(m.group(1)) if m.group(1) else float("-inf")
    hi = float(m.group(2)) if m.group(2) else float("inf")
    metric = ms["Metric"]
    key = _key(metric["Namespace"], metric["MetricName"], ((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
    period = timedelta(seconds=int(ms["Period"]))
    counts: dict = {}
    for md in idx.get(key, ()):
        if not (start <= md.timestamp < end) or not hasattr(md, "value"):
            continue
        k = start + ((md.timestamp - start) // period) * period
        counts.setdefault(k, 0)
        if lo < md.value <= hi:
            counts[k] += 1
    ts = sorted(counts)
    return {"id": q["Id"], "label": q.get("Label") or q["Id"], "values": [float(counts[t]) for t in ts], "timestamps": ts,
            "status_code": "Complete"}


def _math(q: dict, results: dict) -> dict:
    m = MATH.match(q["Expression"].replace(" ", ""))
    assert m, q["Expression"]
    fn = sum if m.group(1) == "SUM" else max
    acc: dict = {}
    for i in m.group(2).split(","):
        r = results[i]
        for t, v in zip(r["timestamps"], r["values"]):
            if v is not None:
                acc.setdefault(t, []).append(v)
    ts = sorted(acc)
    return {"id": q["Id"], "label": q.get("Label") or q["Id"], "values": [fn(acc[t]) for t in ts], "timestamps": ts,
            "status_code": "Complete"}


@contextlib.contextmanager
def with_tc_and_math() -> Iterator[None]:
    """moto's GetMetricData, plus TC(x:y) statistics and SUM/MAX metric math (see the module)."""
    from moto.cloudwatch.models import CloudWatchBackend

    orig = CloudWatchBackend.get_metric_data

    def patched(self, queries, start_time, end_time, scan_by="TimestampAscending"):
        start_time = start_time.replace(microsecond=0)
        end_time = end_time.replace(microsecond=0)
        idx = _index(self)
        results: dict = {}
        saved = self.metric_data
        try:
            for q in queries:
                if "MetricStat" in q and not q["MetricStat"]["Stat"].startswith("TC("):
                    metric = q["MetricStat"]["Metric"]
                    key = _key(metric["Namespace"], metric["MetricName"], ((d["Name"], d["Value"]) for d in metric.get("Dimensions", [])))
                    self.metric_data = idx.get(key, []) if metric.get("Dimensions") else [
                        md for k, mds in idx.items() if k[:2] == key[:2] for md in mds]
                    for r in orig(self, [dict(q, ReturnData=True)], start_time, end_time, "TimestampAscending"):
                        results[r["id"]] = r
        finally:
            self.metric_data = saved
        for q in queries:
            if "MetricStat" in q and q["MetricStat"]["Stat"].startswith("TC("):
                results[q["Id"]] = _tc(idx, q, start_time, end_time)
        for q in queries:
            if "Expression" in q:
                results[q["Id"]] = _math(q, results)
        out = [results[q["Id"]] for q in queries if q.get("ReturnData", True)]
        if scan_by == "TimestampDescending":
            out = [dict(r, values=r["values"][::-1], timestamps=r["timestamps"][::-1]) for r in out]
        return out

    CloudWatchBackend.get_metric_data = patched
    try:
        yield
    finally:
        CloudWatchBackend.get_metric_data = orig
