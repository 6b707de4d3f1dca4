"""vigil's push-format samples as OpenMetrics text, for ``promtool tsdb create-blocks-from
openmetrics``: a Prometheus backfill that holds exactly what the embedded store holds.

- a counter ``x`` (``inc``) becomes the running total ``x_total`` (family ``x``, type counter),
  one sample at each pushed timestamp (increments at one timestamp summed). A series starts with a
  ``0`` at the start of the minute of its first increment, so that increment counts (a Prometheus
  series' first sample is its baseline);
- an observation ``x`` (``observe``, ``count``) becomes cumulative buckets ``x_bucket{le=...}``
  over the given bounds and ``+Inf`` (family type unknown, so no ``_count``/``_sum`` is needed),
  an observation counted in the first bound at or above its value, as the embedded store does;
- a gauge (``set``) is its value (the highest of one timestamp).

Running totals carry over from one :meth:`OpenMetricsWriter.write` to the next, so a long range
can be written as one file per block (this promtool makes one 2-hour block per 2 hours of input
and has no block-duration flag) with bounded memory: write the files in time order.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from datetime import datetime
from decimal import Decimal
from typing import IO, Iterable, Mapping, Sequence

from vigil.selector import quote

MINUTE_MS = 60_000


def ts_ms(ts: str) -> int:
    """An RFC 3339 time as Unix milliseconds, as the embedded store reads it."""
    dt = datetime.fromisoformat(ts.upper().replace("Z", "+00:00"))
    return int(dt.timestamp() * 1000) if dt.microsecond else int(dt.timestamp()) * 1000


def _ts(ms: int) -> str:
    return f"{ms // 1000}.{ms % 1000:03d}"


def _num(v: float | int) -> str:
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _labels(labels: Sequence[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{k}={quote(v)}" for k, v in labels) + "}" if labels else ""


def le_text(b: Decimal) -> str:
    return f"{b.normalize():f}"


class OpenMetricsWriter:
    """Writes push-format rows as OpenMetrics, keeping counters' and buckets' running totals."""

    def __init__(self, *, counter_suffix: str = "_total", bounds: Iterable[Decimal] | None = None) -> None:
        if bounds is None:
            from vigil.telemetry.ingest import DOCUMENTED_BOUNDS

            bounds = DOCUMENTED_BOUNDS
        self.suffix = counter_suffix
        self.bounds = sorted({Decimal(b) for b in bounds})
        self._floats = [float(b) for b in self.bounds]
        self._les = [le_text(b) for b in self.bounds] + ["+Inf"]
        self._counters: dict[tuple[str, tuple], int] = {}
        self._hists: dict[tuple[str, tuple], list[int]] = {}
        self.samples = 0

    def counter_name(self, metric: str) -> str:
        return metric if not self.suffix or metric.endswith(self.suffix) else metric + self.suffix

    def write(self, rows: Iterable[Mapping], out: IO[str]) -> None:
        """One OpenMetrics document (ending ``# EOF``) of ``rows``, any order within it; every row
        later than the rows of the previous call."""
        counters: dict[tuple[str, tuple], dict[int, int]] = {}
        gauges: dict[tuple[str, tuple], dict[int, float]] = {}
        hists: dict[tuple[str, tuple], dict[int, list[int]]] = {}
        nb = len(self._floats) + 1
        for r in rows:
            ms = ts_ms(str(r["ts"]))
            key = (str(r["metric"]), tuple(sorted((r.get("labels") or {}).items())))
            if "inc" in r:
                d = counters.setdefault(key, {})
                d[ms] = d.get(ms, 0) + int(r["inc"])
            elif "observe" in r:
                i = bisect_left(self._floats, float(r["observe"]))
                b = hists.setdefault(key, {}).setdefault(ms, [0] * nb)
                b[i] += int(r.get("count", 1))
            else:
                g = gauges.setdefault(key, {})
                v = float(r["set"])
                g[ms] = v if ms not in g else max(g[ms], v)
        by_family: dict[tuple[str, str], list[str]] = {}
        for (metric, labels), per_ts in sorted(counters.items()):
            name = self.counter_name(metric)
            fam = name[: -len(self.suffix)] if self.suffix and name.endswith(self.suffix) else name
            lines = by_family.setdefault((fam, "counter"), [])
            lab = _labels(labels)
            total = self._counters.get((metric, labels))
            stamps = sorted(per_ts)
            if total is None:
                total = 0
                zero = stamps[0] // MINUTE_MS * MINUTE_MS
                lines.append(f"{name}{lab} 0 {_ts(zero)}")
                if stamps[0] == zero:  # the zero takes the minute's first millisecond
                    per_ts[zero + 1] = per_ts.pop(zero) + per_ts.get(zero + 1, 0)
                    stamps = sorted(per_ts)
            for t in stamps:
                total += per_ts[t]
                lines.append(f"{name}{lab} {total} {_ts(t)}")
            self._counters[(metric, labels)] = total
        for (metric, labels), values in sorted(gauges.items()):
            lines = by_family.setdefault((metric, "gauge"), [])
            lab = _labels(labels)
            for t in sorted(values):
                lines.append(f"{metric}{lab} {_num(values[t])} {_ts(t)}")
        for (metric, labels), buckets in sorted(hists.items()):
            lines = by_family.setdefault((metric + "_bucket", "unknown"), [])
            cum = self._hists.get((metric, labels))
            stamps = sorted(buckets)
            new = cum is None
            if cum is None:
                cum = [0] * nb
                zero = stamps[0] // MINUTE_MS * MINUTE_MS
                if stamps[0] == zero:
                    moved = buckets.pop(zero)
                    buckets[zero + 1] = [a + b for a, b in zip(moved, buckets.get(zero + 1, [0] * nb))]
                    stamps = sorted(buckets)
            running = list(cum)
            rows_by_le: list[list[str]] = [[] for _ in range(nb)]
            for i in range(nb):
                lab = _labels(tuple(sorted(dict(labels, le=self._les[i]).items())))
                if new:
                    rows_by_le[i].append(f"{metric}_bucket{lab} 0 {_ts(stamps[0] // MINUTE_MS * MINUTE_MS)}")
            for t in stamps:
                counts = buckets[t]
                acc = 0
                for i in range(nb):
                    acc += counts[i]
                    running[i] += acc
                for i in range(nb):
                    lab = _labels(tuple(sorted(dict(labels, le=self._les[i]).items())))
                    rows_by_le[i].append(f"{metric}_bucket{lab} {running[i]} {_ts(t)}")
            for i in range(nb):
                lines.extend(rows_by_le[i])
            self._hists[(metric, labels)] = running
        for (fam, kind), lines in by_family.items():
            out.write(f"# TYPE {fam} {kind}\n")
            for line in lines:
                out.write(line + "\n")
            self.samples += len(lines)
        out.write("# EOF\n")


def openmetrics(rows: Iterable[Mapping], **kw) -> str:
    """``rows`` as one OpenMetrics document (see :class:`OpenMetricsWriter`)."""
    import io

    buf = io.StringIO()
    OpenMetricsWriter(**kw).write(rows, buf)
    return buf.getvalue()
