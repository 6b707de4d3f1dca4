"""The Prometheus source: SLOs evaluated on a Prometheus-compatible server over its HTTP API.

**Counters are counted exactly, not with ``increase()``.** ``increase(x[5m])`` takes the samples
inside the range, adds their differences (with resets), then *extrapolates* that sum from the span
the samples cover to the whole range (and, at most, half a sample interval further when the series
starts or ends inside the range). The increase between the last sample before the range and the
first one inside it is left out, and the extrapolation scales the rest up. With one sample a
minute, ``increase(x[5m])`` is 1.25 x the sum of the last four per-minute increments: a burst in the
window's first minute is lost and the rest counted 25% high; with a series that starts or stops
inside the window (or with jittered scrapes) the factor goes up to 1 + 2 x 1.1 / (n - 1) for n
samples. vigil's windows are sums of whole minutes, so this source reads the **raw samples**
(a range selector, ``x_total{...}[1d]``, day by day) and computes differences itself:

- a sample's increase over the previous sample of its series (its value when the counter reset,
  i.e. went down) counts in the minute the sample falls in, as vigil's own store counts a pushed
  increment in its minute;
- the previous sample of the first one in a window is the series' last sample before the window
  (``last_over_time(x[horizon])`` just before it), however old;
- a series' first sample ever is its baseline: what the counter held before it counts nowhere
  (as in Prometheus). An exporter that starts its counters at zero loses nothing.

A window's sum is then exact: the same minutes and the same increments as the embedded store.

**Latency thresholds** read the histogram's cumulative buckets, ``x_bucket{le="0.3"}`` (good) and
``x_bucket{le="+Inf"}`` (all), with the same arithmetic. A threshold that is not a bucket bound
counts the largest bound under it as good (never more good events than there were) and the SLO
warns, as for a threshold the embedded store tracks only since later.

**Freshness slices** read the gauge's raw samples and take each minute's highest.

The URL passes :mod:`vigil.netguard` (no link-local or metadata address unless allowed), redirects
are not followed, and an answer with ``warnings`` (a partial answer, e.g. Thanos with a store down)
is an error: a decision is made on complete data or not at all.
"""

from __future__ import annotations

import json
import socket
import time
from bisect import bisect_left
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from vigil.errors import ExternalError, UsageError
from vigil.selector import Matcher, Selector
from vigil.telemetry.sources.protocol import CounterQuery, ObservationQuery, ReadPlan

if TYPE_CHECKING:
    import httpx
    import numpy as np

INF_NS = 2**62
DAY_MS = 86_400_000
MINUTE_MS = 60_000
RETRY_STATUSES = (429, 502, 503, 504)
MAX_RETRY_AFTER = 10.0


class SourceError(ExternalError):
    """A telemetry source failed or answered something vigil cannot count on."""

    code = "source"


LabelKey = tuple[tuple[str, str], ...]


def _key(labels: Mapping[str, str]) -> LabelKey:
    return tuple(sorted(labels.items()))


def promql_string(value: str) -> str:
    """A PromQL double-quoted string: backslash, quote and control characters escaped."""
    out = []
    for c in value:
        if c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def promql_selector(names: Sequence[str], matchers: Iterable[Matcher]) -> str:
    """``{__name__="a",l="v"}`` or ``{__name__=~"a|b",...}`` for the metric names and matchers."""
    import re

    if len(names) == 1:
        head = "__name__=" + promql_string(names[0])
    else:
        head = "__name__=~" + promql_string("|".join(re.escape(n) for n in names))
    parts = [head] + [f"{m.name}{m.op}{promql_string(m.value)}" for m in matchers]
    return "{" + ",".join(parts) + "}"


def parse_le(text: str) -> int:
    """A bucket's ``le`` label as nanoseconds (``+Inf``: INF_NS). Raises ValueError."""
    if text in ("+Inf", "Inf", "+inf", "inf"):
        return INF_NS
    d = Decimal(text)
    if not d.is_finite():
        raise ValueError(text)
    return int((d * 1_000_000_000).to_integral_value())


def _count(text: str, what: str) -> int:
    """A counter's value as a whole number (Prometheus sends floats as text)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise SourceError(f"{what}: the value {text!r} is not a number") from None
    if not d.is_finite() or d != d.to_integral_value():
        raise SourceError(
            f"{what}: the counter holds {text}, not a whole number of events",
            hint="a ratio or latency SLI counts events; point the selector at a counter of events",
        )
    return int(d)


@dataclass
class _Increments:
    """One series' increments per minute, as sorted minutes and running sums."""

    minutes: list[int] = field(default_factory=list)
    cum: list[int] = field(default_factory=lambda: [0])

    def add(self, minute: int, inc: int) -> None:
        if self.minutes and self.minutes[-1] == minute:
            self.cum[-1] += inc
        else:
            self.minutes.append(minute)
            self.cum.append(self.cum[-1] + inc)

    def window(self, start: int, end: int) -> int:
        return self.cum[bisect_left(self.minutes, end)] - self.cum[bisect_left(self.minutes, start)]

    def first(self) -> int | None:
        return self.minutes[0] if self.minutes else None


def increments(samples: Sequence[tuple[int, int]], baseline: int | None, what: str = "") -> _Increments:
    """Per-minute increments of one counter series from its samples ``(ts_ms, value)`` in time
    order, ``baseline`` being its last value before them (None: the first sample is the baseline).
    A value lower than the one before is a reset: the counter restarted from zero."""
    out = _Increments()
    prev = baseline
    for ts, v in samples:
        if prev is not None:
            inc = v - prev if v >= prev else v
            if inc:
                out.add(ts // MINUTE_MS, inc)
        prev = v
    return out


@dataclass
class _Fetched:
    """A selector's series over minutes ``[lo, hi)``: per series (labels without ``__name__``) its
    increments (counters, buckets) or per-minute maxima (gauges)."""

    lo: int
    hi: int
    series: dict[tuple[str, LabelKey], Any]


class PrometheusSource:
    """Reads a Prometheus-compatible HTTP API. Build one per evaluation (it caches what it read).

    ``transport`` (an httpx transport), ``environ``, ``resolver``, ``sleep`` and ``now_ms`` are for
    tests; by default the real network, ``os.environ``, DNS, ``time.sleep`` and the wall clock.
    """

    def __init__(
        self,
        spec: Any,
        *,
        transport: Any = None,
        environ: Mapping[str, str] | None = None,
        resolver: Callable[..., Any] = socket.getaddrinfo,
        sleep: Callable[[float], None] = time.sleep,
        now_ms: Callable[[], int] | None = None,
        workers: int = 4,
        chunk_ms: int = DAY_MS,
        retries: int = 2,
    ) -> None:
        self.spec = spec
        self.url = spec.url.rstrip("/")
        self.suffix = spec.counter_suffix
        self.horizon_ms = int(spec.horizon) * 1000
        self.timeout = float(spec.timeout)
        self._transport = transport
        self._environ = environ
        self._resolver = resolver
        self._sleep = sleep
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.workers = max(1, workers)
        self.chunk_ms = chunk_ms
        self.retries = retries
        self._client: httpx.Client | None = None
        self._checked = False
        self._end_hint: int | None = None  # the plan's end minute: where "first sample ever" looks back from
        self._counters: dict[str, tuple[Selector, _Fetched]] = {}
        self._buckets: dict[tuple[str, frozenset[str] | None], tuple[Selector, _Fetched]] = {}
        self._le_of: dict[str, list[tuple[int, str]]] = {}
        self._gauges: dict[str, _Fetched] = {}
        self._firsts: dict[tuple[str, str], int | None] = {}
        self._series: dict[str, list[tuple[str, LabelKey]]] = {}
        self._le: set[int] | None = None
        self.requests = 0

    # -- HTTP --------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        from vigil.secrets import read_secret

        out = {"Accept": "application/json", "User-Agent": "vigil"}
        for name, hv in self.spec.headers.items():
            if hv.value is not None:
                out[name] = hv.value
            else:
                try:
                    out[name] = read_secret(env=hv.env, file=hv.file, what=f"Prometheus header {name}",
                                            environ=dict(self._environ) if self._environ is not None else None)
                except UsageError as e:
                    raise UsageError(f"telemetry source {self.url}: {e.message}", hint=e.hint) from None
        return out

    def _http(self) -> httpx.Client:
        import httpx

        if self._client is None:
            if not self._checked and not self.spec.allow_link_local:
                self._check_host()
            self._checked = True
            self._client = httpx.Client(
                timeout=self.timeout, headers=self._headers(), transport=self._transport, follow_redirects=False,
            )
        return self._client

    def _check_host(self) -> None:
        from urllib.parse import urlsplit

        from vigil.netguard import resolve_problem

        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            why = resolve_problem(parts.hostname or "", port, resolver=self._resolver)
        except (OSError, UnicodeError) as e:
            raise SourceError(f"cannot resolve the Prometheus host {parts.hostname!r}: {e}",
                              hint="check telemetry.source.url") from None
        if why:
            raise SourceError(f"refusing to contact Prometheus at {self.url}: {why}",
                              hint="set allow_link_local: true on the source if this is intended")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    def _get(self, path: str, params: list[tuple[str, str]]) -> Any:
        """GET ``path`` and return ``data`` of a successful answer. Retries a refused connection, a
        timeout, 429 and 5xx (reads are idempotent); every other failure is a :class:`SourceError`."""
        import httpx

        client = self._http()
        url = self.url + path
        last = ""
        for attempt in range(self.retries + 1):
            wait = min(MAX_RETRY_AFTER, 0.2 * 2**attempt)
            self.requests += 1
            try:
                r = client.get(url, params=tuple(params))
            except httpx.TimeoutException:
                last = f"Prometheus at {self.url} did not answer within {self.timeout:g}s"
            except httpx.TransportError as e:
                last = f"cannot reach Prometheus at {self.url}: {type(e).__name__}: {e}"
            else:
                if r.status_code in RETRY_STATUSES:
                    last = f"Prometheus at {self.url} answered HTTP {r.status_code}{_error_text(r)}"
                    ra = r.headers.get("retry-after", "")
                    if ra.strip().isdigit():
                        wait = min(MAX_RETRY_AFTER, float(ra))
                else:
                    return self._data(r, path)
            if attempt < self.retries:
                self._sleep(wait)
        raise SourceError(last + f" (tried {self.retries + 1} times)",
                          hint="check that the server is up and telemetry.source.url is right; nothing was decided on partial data")

    def _data(self, r: Any, path: str) -> Any:
        if 300 <= r.status_code < 400:
            raise SourceError(f"Prometheus at {self.url} redirected {path} to {r.headers.get('location', '?')}; redirects are not followed",
                              hint="put the final URL in telemetry.source.url")
        if r.status_code in (401, 403):
            raise SourceError(f"Prometheus at {self.url} refused the request: HTTP {r.status_code}{_error_text(r)}",
                              hint="check the source's headers (e.g. Authorization from env or a private file)")
        try:
            body = r.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise SourceError(f"Prometheus at {self.url} answered HTTP {r.status_code} with a body that is not JSON",
                              hint="is telemetry.source.url the server's base URL (the one that serves /api/v1/query)?") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error") if isinstance(body, dict) else None
            kind = body.get("errorType") if isinstance(body, dict) else None
            raise SourceError(f"Prometheus at {self.url} answered HTTP {r.status_code}: {kind or 'error'}: {err if err else repr(body)}"[:2000],
                              hint="a query vigil built was refused; run with --debug and report it if the selector is valid")
        warnings = body.get("warnings") or []
        if warnings:
            raise SourceError(f"Prometheus at {self.url} answered with warnings (a partial answer?): {'; '.join(map(str, warnings))}"[:2000],
                              hint="vigil decides on complete data only; fix the store that is down, or query a server that has all of it")
        return body.get("data")

    def _query(self, expr: str, at_ms: int) -> dict:
        return self._get("/api/v1/query", [("query", expr), ("time", _secs(at_ms)), ("partial_response", "false")])

    def _matrix(self, data: Any) -> list[dict]:
        if not isinstance(data, dict) or data.get("resultType") not in ("matrix", "vector"):
            raise SourceError(f"Prometheus at {self.url} answered an unexpected result type {data.get('resultType') if isinstance(data, dict) else data!r}")
        res = data.get("result")
        if not isinstance(res, list):
            raise SourceError(f"Prometheus at {self.url} answered a result that is not a list")
        return res

    # -- names ---------------------------------------------------------------------------------------

    def counter_name(self, metric: str) -> str:
        return metric if not self.suffix or metric.endswith(self.suffix) else metric + self.suffix

    def names(self, metric: str, kind: str) -> list[str]:
        if kind == "counter":
            return [self.counter_name(metric)]
        if kind == "observation":
            return [metric + "_bucket"]
        return [metric]

    def kind_of(self, metric: str, name: str) -> set[str]:
        return {k for k in ("counter", "observation", "gauge") if name in self.names(metric, k)}

    # -- raw samples -----------------------------------------------------------------------------------

    def _raw(self, sel: str, lo_ms: int, hi_ms: int) -> dict[tuple[str, LabelKey], list[tuple[int, str]]]:
        """Every sample of ``sel`` with ``lo_ms <= ts < hi_ms``, per series, in time order. Read day
        by day with a range selector (closed in Prometheus 2, left-open in 3: each piece overlaps
        the next by a millisecond and duplicates are dropped)."""
        pieces = []
        a = lo_ms - 1
        while a < hi_ms - 1:
            b = min(hi_ms - 1, a + self.chunk_ms)
            pieces.append((a, b))
            a = b - 1 if b < hi_ms - 1 else b
        out: dict[tuple[str, LabelKey], list[tuple[int, str]]] = {}

        def one(piece: tuple[int, int]) -> list[dict]:
            a, b = piece
            return self._matrix(self._query(f"{sel}[{b - a}ms]", b))

        if len(pieces) > 1 and self.workers > 1:
            self._http()  # one client for every thread
            with ThreadPoolExecutor(self.workers) as pool:
                results = list(pool.map(one, pieces))
        else:
            results = [one(p) for p in pieces]
        for res in results:  # the pieces in time order, each series' samples in time order
            for ser in res:
                m = dict(ser.get("metric") or {})
                name = m.pop("__name__", "")
                vals = out.setdefault((name, _key(m)), [])
                last = vals[-1][0] if vals else lo_ms - 1
                for ts, v in ser.get("values") or ():
                    t = round(ts * 1000)
                    if last < t < hi_ms:
                        vals.append((t, v))
                        last = t
        return out

    def _last_before(self, sel: str, at_ms: int) -> dict[tuple[str, LabelKey], str]:
        """Each series' last value before ``at_ms`` within the horizon (``last_over_time`` keeps
        the metric name when the selector names one metric)."""
        data = self._query(f"last_over_time({sel}[{self.horizon_ms}ms])", at_ms - 1)
        out = {}
        for s in self._matrix(data):
            m = dict(s.get("metric") or {})
            m.pop("__name__", None)
            name = str((s.get("metric") or {}).get("__name__", ""))
            v = s.get("value")
            if v:
                out[(name, _key(m))] = v[1]
        return out

    def _fetch_counts(self, names: list[str], metric: Selector, lo: int, hi: int, what: str) -> _Fetched:
        sel = promql_selector(names, metric.matchers)
        raw = self._raw(sel, lo * MINUTE_MS, hi * MINUTE_MS)
        base = self._last_before(sel, lo * MINUTE_MS)
        series: dict[tuple[str, LabelKey], _Increments] = {}
        for (name, labels), samples in raw.items():
            b = base.get((name, labels), base.get(("", labels)))
            label = f"{what} {name}{dict(labels)}"
            vals = [(t, _count(v, label)) for t, v in samples]
            series[(name, labels)] = increments(vals, None if b is None else _count(b, label), label)
        return _Fetched(lo, hi, series)

    def _counter_data(self, metric: Selector, lo: int, hi: int) -> _Fetched:
        """A counter selector's series over ``[lo, hi)``: from a wider selector already read (its
        matchers a subset of these) when there is one, else read."""
        key = str(metric)
        for sel, got in list(self._counters.values()):
            if got.lo <= lo and got.hi >= hi and _covers(sel, metric):
                if str(sel) != key:
                    self._counters[key] = (metric, got := _view(got, metric))
                return got
        old = self._counters.get(key)
        if old is not None:
            lo, hi = min(lo, old[1].lo), max(hi, old[1].hi)
        got = self._fetch_counts(self.names(metric.metric, "counter"), metric, lo, hi, "counter")
        self._counters[key] = (metric, got)
        return got

    def _le_strings(self, metric: Selector) -> list[tuple[int, str]]:
        """The histogram's bucket bounds as (ns, the ``le`` text), sorted: one label-values request."""
        key = str(metric)
        got = self._le_of.get(key)
        if got is None:
            sel = promql_selector(self.names(metric.metric, "observation"), metric.matchers)
            end = self._end_ms()
            data = self._get("/api/v1/label/le/values", [("match[]", sel), ("start", _secs(end - self.horizon_ms)), ("end", _secs(end))])
            got = []
            for v in data if isinstance(data, list) else ():
                try:
                    got.append((parse_le(str(v)), str(v)))
                except (ValueError, ArithmeticError):
                    raise SourceError(f"histogram {metric.metric}_bucket has a bucket le={v!r} that is not a number") from None
            got.sort()
            self._le_of[key] = got
        return got

    def _needed(self, metric: Selector, thresholds: Iterable[int]) -> frozenset[str]:
        """The buckets a threshold reads: the largest bound at or under it, and the largest of all
        (``+Inf``: every observation). One bucket layout per histogram, as client libraries make them."""
        les = self._le_strings(metric)
        if not les:
            return frozenset()
        need = {s for v, s in les if v == les[-1][0]}
        for t in thresholds:
            under = [v for v, _ in les if v <= t]
            if under:
                need |= {s for v, s in les if v == under[-1]}
        return frozenset(need)

    def _bucket_data(self, metric: Selector, lo: int, hi: int, les: frozenset[str] | None = None) -> _Fetched:
        """Bucket series over ``[lo, hi)``: those with ``le`` in ``les`` (None: every bucket); from
        a wider read already made when there is one."""
        key = str(metric)
        if les is not None and not les:
            return _Fetched(lo, hi, {})  # no such histogram
        for (k, have), (sel, got) in list(self._buckets.items()):
            if (have is None or (les is not None and les <= have)) and got.lo <= lo and got.hi >= hi and _covers(sel, metric):
                return got if k == key else _view(got, metric)
        old = self._buckets.get((key, les))
        if old is not None:
            lo, hi = min(lo, old[1].lo), max(hi, old[1].hi)
        matchers = tuple(metric.matchers)
        if les is not None:
            import re

            matchers += (Matcher.make("le", "=~", "|".join(re.escape(x) for x in sorted(les))),)
        got = self._fetch_counts(self.names(metric.metric, "observation"), Selector(metric.metric, matchers), lo, hi, "histogram")
        self._buckets[(key, les)] = (metric, got)
        return got

    def _gauge_data(self, metric: Selector, lo: int, hi: int) -> _Fetched:
        key = str(metric)
        got = self._gauges.get(key)
        if got is None or got.lo > lo or got.hi < hi:
            if got is not None:
                lo, hi = min(lo, got.lo), max(hi, got.hi)
            sel = promql_selector(self.names(metric.metric, "gauge"), metric.matchers)
            per_minute: dict[tuple[str, LabelKey], dict[int, float]] = {}
            for k, samples in self._raw(sel, lo * MINUTE_MS, hi * MINUTE_MS).items():
                d = per_minute.setdefault(k, {})
                for t, v in samples:
                    x = float(v)
                    if x != x:
                        continue  # NaN is no value
                    m = t // MINUTE_MS
                    if m not in d or x > d[m]:
                        d[m] = x
            got = self._gauges[key] = _Fetched(lo, hi, per_minute)
        return got

    # -- the Source protocol -------------------------------------------------------------------------

    def prefetch(self, plan: ReadPlan) -> None:
        """Every read of the plan, several at once (``workers``): counters per selector, the
        buckets each histogram's thresholds need, gauges, and first samples. A selector whose
        series a wider one of the plan holds (``x{a="1",b!="2"}`` within ``x{a="1"}``) is not read
        again: its series are picked from the wider one's."""
        self._end_hint = plan.end if self._end_hint is None else max(self._end_hint, plan.end)
        jobs: list[Callable[[], Any]] = []
        later: list[Callable[[], Any]] = []
        if plan.starts:
            lo = min(plan.starts)
            sels = list(dict.fromkeys(q.include for q in plan.counters))
            for sel in sels:
                wide = not any(o is not sel and _covers(o, sel) and not _covers(sel, o) for o in sels)
                (jobs if wide else later).append(partial(self._counter_data, sel, lo, plan.end))
            by_metric: dict[Selector, list[int]] = {}
            for oq in plan.observations:
                by_metric.setdefault(oq.metric, []).append(oq.le_ns)
            for metric in by_metric:
                covered = [m for m in by_metric if _covers(metric, m)]
                if any(o != metric and _covers(o, metric) and not _covers(metric, o) for o in by_metric):
                    later.append(partial(self._read_buckets, metric, lo, plan.end, by_metric[metric]))
                else:
                    thresholds = [t for m in covered for t in by_metric[m]]
                    jobs.append(partial(self._read_buckets, metric, lo, plan.end, thresholds))
        spans: dict[Selector, tuple[int, int]] = {}
        for g in plan.gauges:
            a, b = spans.get(g.metric, (g.start, g.end))
            spans[g.metric] = (min(a, g.start), max(b, g.end))
        for metric, (a, b) in spans.items():
            jobs.append(partial(self._gauge_data, metric, a, b))
        for sel, kind in dict.fromkeys(plan.firsts):
            jobs.append(partial(self.first_minute, sel, kind))
        if len(jobs) > 1 and self.workers > 1:
            self._http()
            with ThreadPoolExecutor(self.workers) as pool:
                for f in [pool.submit(j) for j in jobs]:
                    f.result()
        else:
            for j in jobs:
                j()
        for j in later:
            j()

    def _read_buckets(self, metric: Selector, lo: int, hi: int, thresholds: list[int]) -> _Fetched:
        return self._bucket_data(metric, lo, hi, self._needed(metric, thresholds))

    def counter_sums(self, q: CounterQuery, starts: Sequence[int], end: int) -> list[int]:
        if not starts:
            return []
        data = self._counter_data(q.include, min(starts), end)
        chosen = [inc for (_, labels), inc in data.series.items() if not _excluded(q, labels)]
        return [sum(inc.window(st, end) for inc in chosen) for st in starts]

    def _groups(self, metric: Selector, start: int, end: int, les: frozenset[str] | None = None) -> dict[LabelKey, dict[int, _Increments]]:
        """Histogram series by their labels without ``le``: bound (ns) -> increments."""
        data = self._bucket_data(metric, start, end, les)
        groups: dict[LabelKey, dict[int, _Increments]] = {}
        for (_, labels), inc in data.series.items():
            d = dict(labels)
            le_text = d.pop("le", None)
            if le_text is None:
                continue
            try:
                le = parse_le(le_text)
            except (ValueError, ArithmeticError):
                raise SourceError(f"histogram {metric.metric}_bucket has a bucket le={le_text!r} that is not a number") from None
            groups.setdefault(_key(d), {})[le] = inc
        return groups

    def observation_counts(self, q: ObservationQuery, starts: Sequence[int], end: int) -> list[tuple[int, int]]:
        if not starts:
            return []
        groups = self._groups(q.metric, min(starts), end, self._needed(q.metric, [q.le_ns]))
        out = []
        for st in starts:
            good = total = 0
            for buckets in groups.values():
                les = sorted(buckets)
                under = [le for le in les if le <= q.le_ns]
                if under:
                    good += buckets[under[-1]].window(st, end)
                total += buckets[les[-1]].window(st, end)
            out.append((good, total))
        return out

    def gauge_max(self, metric: Selector, start: int, end: int) -> np.ndarray:
        import numpy as np

        arr = np.full(max(0, end - start), np.nan)
        if end <= start:
            return arr
        data = self._gauge_data(metric, start, end)
        for per_minute in data.series.values():
            for m, v in per_minute.items():
                if start <= m < end:
                    arr[m - start] = np.fmax(arr[m - start], v)
        return arr

    def _series_of(self, metric: str, matchers: tuple[Matcher, ...]) -> list[tuple[str, LabelKey]]:
        names = sorted({n for k in ("counter", "observation", "gauge") for n in self.names(metric, k)})
        sel = promql_selector(names, matchers)
        got = self._series.get(sel)
        if got is None:
            end = self._end_ms()
            data = self._get("/api/v1/series", [("match[]", sel), ("start", _secs(end - self.horizon_ms)), ("end", _secs(end))])
            if not isinstance(data, list):
                raise SourceError(f"Prometheus at {self.url} answered /api/v1/series with something that is not a list")
            seen = set()
            for m in data:
                m = dict(m)
                name = m.pop("__name__", "")
                if name.endswith("_bucket"):
                    m.pop("le", None)
                seen.add((name, _key(m)))
            got = self._series[sel] = sorted(seen)
        return got

    def matched(self, selector: Selector, kind: str) -> tuple[int, int]:
        same = other = 0
        for name, _ in self._series_of(selector.metric, selector.matchers):
            kinds = self.kind_of(selector.metric, name)
            if kind in kinds:
                same += 1
            elif kinds:
                other += 1
        return same, other

    def _end_ms(self) -> int:
        return self._end_hint * MINUTE_MS if self._end_hint is not None else self._now_ms()

    def first_minute(self, selector: Selector, kind: str) -> int | None:
        """The minute of the first sample within the horizon: a count per day over the horizon
        (one range query), then the raw samples of the first day that has any."""
        key = (str(selector), kind)
        if key in self._firsts:
            return self._firsts[key]
        sel = promql_selector(self.names(selector.metric, kind), selector.matchers)
        end = self._end_ms() - 1
        n = max(1, -(-self.horizon_ms // DAY_MS))
        start = end - (n - 1) * DAY_MS
        data = self._get("/api/v1/query_range", [
            ("query", f"sum(count_over_time({sel}[{DAY_MS}ms]))"), ("start", _secs(start)), ("end", _secs(end)),
            ("step", f"{DAY_MS // 1000}s"), ("partial_response", "false"),
        ])
        first: int | None = None
        for s in self._matrix(data):
            days = sorted(int(round(float(t) * 1000)) for t, v in s.get("values") or () if float(v) > 0)
            if days:
                t = days[0]
                raw = self._raw(sel, t - DAY_MS, t + 1)
                ts = [samples[0][0] for samples in raw.values() if samples]
                if ts:
                    first = min(ts) // MINUTE_MS
        self._firsts[key] = first
        return first

    def _le_values(self) -> set[int]:
        if self._le is None:
            data = self._get("/api/v1/label/le/values", [])
            les = set()
            for v in data if isinstance(data, list) else ():
                try:
                    les.add(parse_le(str(v)))
                except (ValueError, ArithmeticError):
                    continue
            self._le = les
        return self._le

    def bound_since(self, le_ns: int) -> int | None:
        """0 (all history) when some histogram has a bucket at exactly this bound, else None. A
        bucket a histogram gained later has no samples before: those observations then count as
        not good, never as good."""
        return 0 if le_ns in self._le_values() else None

    @property
    def bounds_ns(self) -> list[int]:
        """The bucket bounds the server's histograms have (for the canary judge's layout)."""
        return sorted(le for le in self._le_values() if le < INF_NS)

    def bucket_bounds(self) -> dict[int, int]:
        return dict.fromkeys(self.bounds_ns, 0)

    def observation_buckets(self, metric: Selector, start: int, end: int) -> list[tuple[int, int]]:
        acc: dict[int, int] = {}
        for buckets in self._groups(metric, start, end).values():
            below = 0
            for le in sorted(buckets):
                c = buckets[le].window(start, end)
                n = c - below
                if n > 0:
                    acc[le] = acc.get(le, 0) + n
                below = max(below, c)
        return sorted(acc.items())


def _covers(wide: Selector, narrow: Selector) -> bool:
    """Every series ``narrow`` selects, ``wide`` selects too: same metric, ``wide``'s matchers
    among ``narrow``'s."""
    return wide.metric == narrow.metric and {str(m) for m in wide.matchers} <= {str(m) for m in narrow.matchers}


def _view(got: _Fetched, sel: Selector) -> _Fetched:
    """The series of ``got`` that ``sel`` selects."""
    return _Fetched(got.lo, got.hi, {k: v for k, v in got.series.items() if sel.matches(dict(k[1]))})


def _excluded(q: CounterQuery, labels: LabelKey) -> bool:
    ex = q.exclude
    return ex is not None and ex.metric == q.include.metric and ex.matches(dict(labels))


def _secs(ms: int) -> str:
    sign = "-" if ms < 0 else ""
    ms = abs(ms)
    return f"{sign}{ms // 1000}.{ms % 1000:03d}"


def _error_text(r: Any) -> str:
    try:
        body = r.json()
        if isinstance(body, dict) and body.get("error"):
            return f": {body['error']}"[:500]
    except Exception:
        pass
    text = (r.text or "").strip()
    return f": {text[:200]}" if text else ""
