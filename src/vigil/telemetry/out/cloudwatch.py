"""The platform's custom metrics to CloudWatch: Embedded Metric Format lines and PutMetricData.

Input is vigil's push format (``{"ts", "metric", "labels", "inc" | "observe" [+ "count"] | "set"}``),
the rows a job already pushes to vigil (job outcomes, the outbox backlog, index staleness). Each
series' rows are merged per minute (CloudWatch's finest standard resolution) into one datum:

- a counter (``inc``): the minute's sum, unit ``Count``: CloudWatch's ``Sum`` per minute is the count;
- an observation (``observe``, ``count``): the minute's distinct values with their counts
  (``Values``/``Counts``), in the metric's unit (seconds, or milliseconds with ``unit_seconds:
  0.001``): CloudWatch keeps them, so percentiles and ``TC(:threshold)`` are exact;
- a gauge (``set``): the minute's distinct values with their counts, so ``Maximum``, ``Minimum``
  and ``Average`` are those of the samples.

Labels become dimensions (``dimensions:`` renames them, e.g. ``service: ServiceName``). The
mapping is the CloudWatch source's (:class:`vigil.telemetry.spec.CloudWatchSourceSpec`), so what is
written here reads back through the source unchanged.

**Limits** (checked before anything is sent; a row that breaks one is refused with its line, and
nothing is sent): at most 30 dimensions, names and values of 1 to 255 (dimension values 1024)
characters, finite values within CloudWatch's range, timestamps at most two weeks old and two hours
ahead. PutMetricData requests hold at most 1000 datums, 150 values per datum and 1 MB (vigil keeps
them under 900 KB of JSON); EMF lines at most 100 metrics per directive and 100 values per metric
(a weighted observation is repeated, split over as many lines as it takes), each line under 1 MB.

**Retries.** PutMetricData has no idempotency key: a request CloudWatch stored but whose answer was
lost would count twice if sent again. vigil resends only what CloudWatch refused (throttling) or
what never left (a refused connection); after a timeout or a 5xx it stops and reports which batches
were stored, which may have been, and which were not sent.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping

from vigil.errors import ExternalError, UsageError

MAX_DATUMS = 1000
MAX_VALUES = 150
MAX_REQUEST_JSON = 900_000
MAX_DIMENSIONS = 30
EMF_MAX_METRICS = 100
EMF_MAX_VALUES = 100
EMF_MAX_BYTES = 1_000_000
MAX_AGE_MS = 14 * 86_400_000
MAX_AHEAD_MS = 2 * 3_600_000
VALUE_LIMIT = 2.0**360
SAFE_RETRY_CODES = frozenset(("Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"))


class OutError(UsageError):
    """A row cannot be written to CloudWatch as it is; nothing was sent."""

    code = "cloudwatch-out-invalid"


class PublishError(ExternalError):
    """PutMetricData failed part-way; ``report`` says what was stored, may have been, and was not sent."""

    code = "cloudwatch-put-failed"

    def __init__(self, message: str, report: "PutReport", *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["report"] = self.report.to_dict()
        return d


@dataclass(frozen=True)
class Target:
    """Where and how metrics go: the default namespace, label -> dimension names, and per metric
    name its CloudWatch name, namespace and unit (seconds per unit of an observation)."""

    namespace: str
    dimensions: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, spec: Any) -> "Target":
        """From a CloudWatch source spec (``telemetry.source`` or a named source)."""
        return cls(spec.namespace, dict(spec.dimensions), dict(spec.metrics))

    def where(self, metric: str) -> tuple[str, str, Decimal]:
        m = self.metrics.get(metric)
        if m is None:
            return self.namespace, metric, Decimal(1)
        return (getattr(m, "namespace", None) or self.namespace, getattr(m, "name", None) or metric,
                Decimal(getattr(m, "unit_seconds", 1) or 1))


def _unit(kind: str, unit_seconds: Decimal) -> str:
    if kind == "counter":
        return "Count"
    if kind == "gauge":
        return "None"
    return {Decimal(1): "Seconds", Decimal("0.001"): "Milliseconds", Decimal("0.000001"): "Microseconds"}.get(unit_seconds, "None")


@dataclass
class Datum:
    """One series' minute: namespace, name, dimensions, minute, kind, and its value(s)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    minute: int
    kind: str
    unit: str
    total: float = 0
    values: dict[float, int] = field(default_factory=dict)

    def to_api(self) -> list[dict]:
        """PutMetricData MetricDatum structures (several when more than 150 distinct values)."""
        base: dict[str, Any] = {
            "MetricName": self.name,
            "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
            "Timestamp": datetime.fromtimestamp(self.minute * 60, timezone.utc),
            "Unit": self.unit,
        }
        if self.kind == "counter":
            return [{**base, "Value": float(self.total)}]
        items = sorted(self.values.items())
        return [
            {**base, "Values": [v for v, _ in items[i : i + MAX_VALUES]], "Counts": [float(n) for _, n in items[i : i + MAX_VALUES]]}
            for i in range(0, len(items), MAX_VALUES)
        ]


def datums(rows: Iterable[Mapping], target: Target, *, now_ms: int | None = None) -> list[Datum]:
    """Rows merged per series and minute into datums, every limit checked first: an
    :class:`OutError` names the first bad row (1-based) and nothing is returned."""
    from vigil.telemetry.out.openmetrics import ts_ms

    now = int(time.time() * 1000) if now_ms is None else now_ms
    out: dict[tuple, Datum] = {}
    for i, r in enumerate(rows, 1):
        try:
            if not isinstance(r, Mapping):
                raise ValueError("a row is a JSON object")
            metric = r.get("metric")
            if not isinstance(metric, str) or not 1 <= len(metric) <= 255:
                raise ValueError("metric must be a name of 1 to 255 characters")
            try:
                ms = ts_ms(str(r.get("ts")))
            except ValueError:
                raise ValueError(f"ts {r.get('ts')!r} is not an RFC 3339 time like 2026-11-01T12:00:00Z") from None
            if ms < now - MAX_AGE_MS:
                raise ValueError(f"ts {r['ts']} is more than two weeks old: CloudWatch refuses it")
            if ms > now + MAX_AHEAD_MS:
                raise ValueError(f"ts {r['ts']} is more than two hours ahead: CloudWatch refuses it")
            labels = r.get("labels") or {}
            if not isinstance(labels, Mapping):
                raise ValueError("labels must be an object")
            if len(labels) > MAX_DIMENSIONS:
                raise ValueError(f"{len(labels)} labels; a CloudWatch metric has at most {MAX_DIMENSIONS} dimensions")
            dims = []
            for k, v in labels.items():
                name = target.dimensions.get(k, k)
                if not isinstance(v, str) or not 1 <= len(v) <= 1024:
                    raise ValueError(f"label {k}: a dimension value is 1 to 1024 characters")
                if not 1 <= len(name) <= 255:
                    raise ValueError(f"label {k}: a dimension name is 1 to 255 characters")
                dims.append((name, v))
            ns, name, unit_s = target.where(metric)
            kinds = [k for k in ("inc", "observe", "set") if k in r]
            if len(kinds) != 1:
                raise ValueError("a row has exactly one of inc, observe, set")
            kind = {"inc": "counter", "observe": "observation", "set": "gauge"}[kinds[0]]
            raw = r[kinds[0]]
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise ValueError(f"{kinds[0]} must be a number")
            value = float(raw)
            if not math.isfinite(value) or abs(value) >= VALUE_LIMIT:
                raise ValueError(f"{kinds[0]} {raw!r} is not a value CloudWatch stores (finite, under 2^360)")
            if kind == "counter" and (value < 0 or value != int(value)):
                raise ValueError("inc counts events: a whole number, 0 or more")
            if kind == "observation":
                if value < 0:
                    raise ValueError("observe must be 0 or more")
                value = float(Decimal(repr(value)) / unit_s)
            count = r.get("count", 1)
            if kind != "observation" and "count" in r:
                raise ValueError("count goes with observe only")
            if isinstance(count, bool) or not isinstance(count, (int, float)) or count < 1 or count != int(count):
                raise ValueError("count must be a whole number, 1 or more")
        except ValueError as e:
            raise OutError(f"row {i}: {e}", hint="fix the row; nothing was sent") from None
        minute = ms // 60_000
        key = (ns, name, tuple(sorted(dims)), minute)
        d = out.get(key)
        if d is None:
            d = out[key] = Datum(ns, name, tuple(sorted(dims)), minute, kind, _unit(kind, unit_s))
        elif d.kind != kind:
            raise OutError(f"row {i}: {metric} is a {d.kind} in an earlier row and a {kind} here", hint="one kind per metric")
        if kind == "counter":
            d.total += value
        else:
            d.values[value] = d.values.get(value, 0) + int(count)
    return sorted(out.values(), key=lambda d: (d.namespace, d.minute, d.name, d.dimensions))


# -- PutMetricData ----------------------------------------------------------------------------------


def _size(d: dict) -> int:
    return len(json.dumps(d, default=str)) + 2


def batches(ds: list[Datum]) -> list[tuple[str, list[dict]]]:
    """(namespace, MetricData) requests: one namespace each, at most 1000 datums and ~900 KB."""
    out: list[tuple[str, list[dict]]] = []
    cur: list[dict] = []
    size = 0
    ns = ""  # the namespace of cur (set with its first datum)
    for d in ds:
        for api in d.to_api():
            s = _size(api)
            if cur and (d.namespace != ns or len(cur) >= MAX_DATUMS or size + s > MAX_REQUEST_JSON):
                out.append((ns, cur))
                cur, size = [], 0
            ns = d.namespace
            cur.append(api)
            size += s
    if cur:
        out.append((ns, cur))
    return out


@dataclass
class PutReport:
    requests: int = 0
    datums: int = 0
    stored: int = 0  # batches CloudWatch answered OK
    retried: int = 0
    uncertain: list[int] = field(default_factory=list)  # batch numbers that may or may not be stored
    not_sent: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"requests": self.requests, "datums": self.datums, "batches_stored": self.stored, "retried": self.retried,
                "batches_uncertain": self.uncertain, "batches_not_sent": self.not_sent}


def put_metric_data(
    client: Any, rows: Iterable[Mapping], target: Target, *, now_ms: int | None = None, retries: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> PutReport:
    """Send ``rows`` with PutMetricData, batched within the API's limits. ``client`` is a boto3
    CloudWatch client; build it with botocore retries off (``retries={"max_attempts": 1}``):
    this function retries only what cannot have been stored."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

    plan = batches(datums(rows, target, now_ms=now_ms))
    rep = PutReport(datums=sum(len(b) for _, b in plan))
    for n, (ns, data) in enumerate(plan):
        attempt = 0
        while True:
            rep.requests += 1
            try:
                client.put_metric_data(Namespace=ns, MetricData=data)
                rep.stored += 1
                break
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
                if code in SAFE_RETRY_CODES and attempt < retries:
                    attempt += 1
                    rep.retried += 1
                    sleep(min(10.0, 0.2 * 2**attempt))
                    continue
                if status >= 500 or code in ("InternalServiceError", "InternalFailure", "ServiceUnavailable"):
                    rep.uncertain.append(n)
                rep.not_sent.extend(range(n + 1, len(plan)))
                if code in SAFE_RETRY_CODES:
                    rep.not_sent.insert(0, n)
                raise PublishError(
                    f"PutMetricData batch {n + 1} of {len(plan)} failed: {code}: {e.response.get('Error', {}).get('Message', '')}",
                    rep, hint="batches before it were stored; the report says what may have been and what was not sent",
                ) from None
            except (EndpointConnectionError, ConnectTimeoutError) as e:  # the request never left
                if attempt < retries:
                    attempt += 1
                    rep.retried += 1
                    sleep(min(10.0, 0.2 * 2**attempt))
                    continue
                rep.not_sent.extend(range(n, len(plan)))
                raise PublishError(f"PutMetricData batch {n + 1} of {len(plan)} not sent: {e}", rep,
                                   hint="check the network and the region; nothing from this batch on was sent") from None
            except BotoCoreError as e:  # a read timeout or a broken answer: it may have been stored
                rep.uncertain.append(n)
                rep.not_sent.extend(range(n + 1, len(plan)))
                raise PublishError(f"PutMetricData batch {n + 1} of {len(plan)}: no answer ({e}); it may have been stored", rep,
                                   hint="do not resend it blindly: CloudWatch would count it twice") from None
    return rep


# -- Embedded Metric Format ----------------------------------------------------------------------------


def emf_lines(rows: Iterable[Mapping], target: Target, *, now_ms: int | None = None) -> list[str]:
    """CloudWatch Embedded Metric Format log lines (one JSON object each) for ``rows``: one line per
    namespace, dimension set and minute, at most 100 metrics and 100 values per metric a line (a
    weighted observation is repeated ``count`` times, spread over as many lines as it takes)."""
    ds = datums(rows, target, now_ms=now_ms)
    groups: dict[tuple, list[Datum]] = {}
    for d in ds:
        groups.setdefault((d.namespace, d.minute, d.dimensions), []).append(d)
    lines: list[str] = []
    for (ns, minute, dims), members in sorted(groups.items()):
        # each metric's values as a list of numbers, to be cut into pieces of <= 100
        values: list[tuple[Datum, list[float] | float]] = []
        for d in members:
            if d.kind == "counter":
                values.append((d, d.total))
            else:
                flat = [v for v, n in sorted(d.values.items()) for _ in range(n)]
                values.append((d, flat))
        while values:
            line_metrics: list[tuple[Datum, Any]] = []
            rest: list[tuple[Datum, list[float] | float]] = []
            for d, v in values:
                if len(line_metrics) >= EMF_MAX_METRICS:
                    rest.append((d, v))
                elif isinstance(v, list):
                    line_metrics.append((d, v[:EMF_MAX_VALUES] if len(v) > 1 else (v[0] if v else 0)))
                    if len(v) > EMF_MAX_VALUES:
                        rest.append((d, v[EMF_MAX_VALUES:]))
                else:
                    line_metrics.append((d, v))
            doc: dict[str, Any] = {
                "_aws": {
                    "Timestamp": minute * 60_000,
                    "CloudWatchMetrics": [{
                        "Namespace": ns,
                        "Dimensions": [[n for n, _ in dims]],
                        "Metrics": [{"Name": d.name, "Unit": d.unit} for d, _ in line_metrics],
                    }],
                },
            }
            for n, v in dims:
                doc[n] = v
            for d, v in line_metrics:
                if d.name in doc or d.name == "_aws":
                    raise OutError(f"metric {d.name} has the name of a dimension; EMF keeps both at the top level",
                                   hint="rename the metric or the label (dimensions: maps labels to other names)")
                doc[d.name] = v
            text = json.dumps(doc, separators=(",", ":"), allow_nan=False)
            if len(text.encode()) > EMF_MAX_BYTES:  # pragma: no cover - 100 x 100 numbers stay far under 1 MB
                raise OutError("an EMF line would be over 1 MB")
            lines.append(text)
            values = rest
    return lines
