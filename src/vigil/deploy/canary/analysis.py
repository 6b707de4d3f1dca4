"""Reads what the judge needs from a telemetry source and the SLO engine (the adapter around the
pure :mod:`vigil.deploy.canary.judge`).

**Selecting baseline and canary.** ``--baseline 'version="v1"'`` and ``--canary 'version="v2"'``
are label matchers (PromQL syntax, braces optional) added to every selector of every canary
metric, so ``http_request_duration_seconds{service="api"}`` becomes
``http_request_duration_seconds{service="api",version="v2"}`` for the canary.

**The window.** Telemetry is per minute: ``[from, to)`` reads every minute that overlaps it, i.e.
minutes ``floor(from) .. ceil(to)``, the same "minutes that started before ``to`` count" rule as
SLO evaluation. The SLOs are evaluated at ``to``.

**Which SLOs the canary is checked against** (``canary.metrics[].slos``, or automatically):

- a ratio metric: the ratio SLOs whose ``total`` counts the same metric name as the canary's
  ``total``, with every label matcher of the SLO's ``total`` also in the canary's ``total`` (the
  canary measures part of that SLO's traffic);
- a distribution metric: the latency SLOs on the same metric name, under the same matcher rule;
- when ``canary.service`` is set, only SLOs of that service.

The canary's counts for an SLO come from the SLO's own SLI (``good``/``total``/``exclude``, or the
latency threshold) with the canary's matchers added, so "what the canary would do to the budget" is
counted exactly as the budget itself is.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Mapping

from vigil.clock import isoformat
from vigil.deploy.canary.judge import CanaryVerdict, DistributionSamples, RatioSamples, SloInput, judge
from vigil.deploy.canary.records import Records
from vigil.deploy.canary.references import reference_issues
from vigil.deploy.canary.spec import CanaryMetric, CanarySpec
from vigil.deploy.gate import rule_name
from vigil.errors import SpecError, SpecIssue, UsageError
from vigil.slo.evaluate import evaluate_slos
from vigil.slo.spec import SLO
from vigil.slo.windows import now_minute
from vigil.store import Store
from vigil.telemetry.ingest import INF_NS, seconds_to_ns
from vigil.telemetry.selector import Matcher, Selector, SelectorError, parse_selector
from vigil.telemetry.source import CounterQuery, ObservationQuery, Source
from vigil.telemetry.sources import open_source, source_for

MATCHER_HINT = "give label matchers like 'version=\"v2\"' or '{version=\"v2\",region=\"eu\"}'"

if TYPE_CHECKING:
    from vigil.spec import LoadedSpec, Spec


def parse_matchers(text: str, what: str) -> tuple[Matcher, ...]:
    """``version="v2"`` or ``{version="v2",zone=~"eu-.*"}`` -> matchers. Raises UsageError."""
    t = (text or "").strip()
    if not t.startswith("{"):
        t = "{" + t + "}"
    try:
        sel = parse_selector("m" + t)
    except SelectorError as e:
        raise UsageError(f"--{what}: {e}", hint=MATCHER_HINT) from None
    if not sel.matchers:
        raise UsageError(f"--{what} needs at least one label matcher", hint=MATCHER_HINT)
    return sel.matchers


def matchers_text(ms: tuple[Matcher, ...]) -> str:
    return ",".join(str(m) for m in ms)


def window_minutes(start: datetime, end: datetime) -> tuple[int, int]:
    """The minutes overlapping ``[start, end)``."""
    if end <= start:
        raise UsageError(f"the window is empty: --to {isoformat(end)} is not after --from {isoformat(start)}")
    return math.floor(start.timestamp() / 60), now_minute(end)


def canary_spec(spec: Spec) -> CanarySpec:
    if spec.canary is None:
        raise UsageError(
            "the spec has no `canary:` section",
            hint="add canary: {metrics: [...]} to vigil.yaml (see the README's canary section)",
        )
    return spec.canary


def check_references(spec: Spec, path: str = "<spec>") -> None:
    """Raise a SpecError naming every bad reference of the canary section (see :func:`reference_issues`)."""
    from vigil.spec import format_path

    canary_spec(spec)
    issues = [SpecIssue(format_path(loc), msg, file=path) for loc, msg in reference_issues(spec)]
    if issues:
        raise SpecError(issues)


def _subset(slo_sel: Selector, canary_sel: Selector) -> bool:
    return slo_sel.metric == canary_sel.metric and {str(m) for m in slo_sel.matchers} <= {str(m) for m in canary_sel.matchers}


def linked_slos(spec: Spec) -> list[tuple[SLO, tuple[str, ...]]]:
    """The SLOs the canary is checked against, each with the canary metrics linking it."""
    c = canary_spec(spec)
    links: dict[str, list[str]] = {}
    for m in c.metrics:
        for s in _slos_of(spec, c, m):
            links.setdefault(s.name, []).append(m.name)
    return [(s, tuple(links[s.name])) for s in spec.slos if s.name in links]


def _slos_of(spec: Spec, c: CanarySpec, m: CanaryMetric) -> list[SLO]:
    if m.slos is not None:
        return [s for s in spec.slos if s.name in m.slos and s.sli.freshness is None]
    out = []
    for s in spec.slos:
        if c.service is not None and s.service != c.service:
            continue
        if m.ratio is not None and s.sli.ratio is not None and _subset(s.sli.ratio.total, m.ratio.total):
            out.append(s)
        elif m.metric is not None and s.sli.latency is not None and _subset(s.sli.latency.metric, m.metric):
            out.append(s)
    return out


def _value(le_ns: int) -> Fraction | float:
    return math.inf if le_ns >= INF_NS else Fraction(le_ns, 1_000_000_000)


def window_layout(bounds: Mapping[int, int], start_minute: int) -> tuple[Fraction, ...]:
    """The bucket bounds (seconds) every observation of minutes ``start_minute`` on was counted in:
    the store's bounds exact since then (``{le_ns: since_minute}``, :meth:`vigil.store.Store.bounds`).
    A bound registered later only splits a bucket of this layout, so a value counted at it is known
    to lie in the coarser bucket: the judge's resolution stays honest across the change."""
    return tuple(sorted(Fraction(le, 1_000_000_000) for le, since in bounds.items() if le < INF_NS and since <= start_minute))


def source_bounds(source: Source) -> dict[int, int]:
    """The bucket bounds of a source as ``{le_ns: since_minute}``: the embedded store's, or a
    source's own ``bounds_ns`` (exact for all history). A source that says neither has no known
    layout: every bucket then reaches down to 0, and the judge says the data is coarse."""
    return source.bucket_bounds()


def collect(
    c: CanarySpec,
    source: Source,
    baseline: tuple[Matcher, ...],
    canary: tuple[Matcher, ...],
    start: int,
    end: int,
    *,
    baseline_start: int | None = None,
    bounds: Mapping[int, int] | None = None,
) -> tuple[dict, list[str]]:
    """Per metric: the baseline's and the canary's samples over minutes ``[start, end)``
    (the baseline's from ``baseline_start`` when given), with the bucket layout of each window from
    ``bounds`` (the store's ``{le_ns: since_minute}``; None reads them from the source's store).
    Returns (samples, warnings)."""
    bstart = start if baseline_start is None else baseline_start
    samples: dict = {}
    warnings: list[str] = []
    if bounds is None and any(m.metric is not None for m in c.metrics):
        bounds = source_bounds(source)
    for m in c.metrics:
        if m.metric is not None:
            assert bounds is not None
            b = source.observation_buckets(m.metric.with_matchers(baseline), bstart, end)
            k = source.observation_buckets(m.metric.with_matchers(canary), start, end)
            samples[m.name] = DistributionSamples.of(
                [(_value(le), n) for le, n in b], [(_value(le), n) for le, n in k],
                window_layout(bounds, start), baseline_bounds=window_layout(bounds, bstart),
            )
            same, other = source.matched(m.metric, "observation")
            if other and not same:
                warnings.append(f"metric {m.name}: {m.metric} matches no observation series, only series of another kind")
        else:
            r = m.ratio
            assert r is not None

            def total(sel: Selector, ms: tuple[Matcher, ...], st: int) -> int:
                return source.counter_sums(CounterQuery(sel.with_matchers(ms)), [st], end)[0]

            samples[m.name] = RatioSamples(total(r.bad, baseline, bstart), total(r.total, baseline, bstart),
                                           total(r.bad, canary, start), total(r.total, canary, start))
            for sel, what in ((r.bad, "bad"), (r.total, "total")):
                same, other = source.matched(sel, "counter")
                if other and not same:
                    warnings.append(f"metric {m.name}: {what} selector {sel} matches no counter, only series of another kind")
    return samples, warnings


def slo_inputs(spec: Spec, source: Source, canary: tuple[Matcher, ...], start: int, end: int, at: datetime) -> list[SloInput]:
    """The budget of every linked SLO at ``at`` and the canary's counts under its SLI."""
    linked = linked_slos(spec)
    if not linked:
        return []
    statuses = evaluate_slos([s for s, _ in linked], source, at)
    out = []
    for (slo, metrics), st in zip(linked, statuses):
        src = source_for(source, slo)  # where the SLO's own source: says its SLI lives
        if slo.sli.ratio is not None:
            r = slo.sli.ratio
            valid = src.counter_sums(CounterQuery(r.total.with_matchers(canary), r.exclude), [start], end)[0]
            good = src.counter_sums(CounterQuery(r.good.with_matchers(canary), r.exclude), [start], end)[0]
            kind = "ratio"
        else:
            lat = slo.sli.latency
            assert lat is not None
            good, valid = src.observation_counts(ObservationQuery(lat.metric.with_matchers(canary), seconds_to_ns(lat.threshold)), [start], end)[0]
            kind = "latency"
        rules = tuple(
            (rule_name(i, rule), rule.when)
            for i, rule in enumerate(spec.policy.freeze)
            if rule.services is None or slo.service in rule.services
        )
        out.append(
            SloInput(
                slo.name, slo.service, kind, slo.objective, st.window_seconds, st.span.rolling,
                None if st.no_data else st.consumed, st.span.elapsed_fraction,
                max(0, valid - min(good, valid)), valid, rules, metrics,
            )
        )
    return out


@dataclass
class Judgement:
    verdict: CanaryVerdict
    service: str | None
    baseline: str
    canary: str
    start: datetime
    end: datetime
    id: int | None = None
    run_id: int | None = None

    def to_dict(self) -> dict:
        d = self.verdict.to_dict()
        return {
            "verdict": d.pop("verdict"),
            "score": d.pop("score"),
            "service": self.service,
            "baseline": self.baseline,
            "canary": self.canary,
            "from": isoformat(self.start),
            "to": isoformat(self.end),
            **d,
            "run_id": self.run_id,
            "verdict_id": self.id,
        }


def judge_window(
    loaded: LoadedSpec,
    store: Store,
    baseline: tuple[Matcher, ...],
    canary: tuple[Matcher, ...],
    start: datetime,
    end: datetime,
    *,
    judged_at: datetime,
    baseline_start: datetime | None = None,
    run_id: int | None = None,
    record: bool = True,
) -> Judgement:
    """Read, judge and (by default) record the verdict of ``[start, end)``."""
    spec = loaded.spec
    c = canary_spec(spec)
    check_references(spec, str(loaded.path) if loaded.path else "<spec>")
    if set(map(str, baseline)) == set(map(str, canary)):
        raise UsageError("--baseline and --canary select the same series", hint="they must differ, e.g. version=\"v1\" and version=\"v2\"")
    if end > judged_at:  # a verdict covers only time that has been observed
        raise UsageError(f"the window ends at {isoformat(end)}, after now ({isoformat(judged_at)}): a verdict cannot cover "
                         "time not yet observed", hint="end the window at now or earlier (--to now)")
    a, b = window_minutes(start, end)
    bstart = None if baseline_start is None else window_minutes(baseline_start, end)[0]
    source = open_source(spec.telemetry, store)  # the spec's source: embedded, Prometheus or CloudWatch
    layout = source_bounds(source) if any(m.metric is not None for m in c.metrics) else {}
    samples, warnings = collect(c, source, baseline, canary, a, b, baseline_start=bstart, bounds=layout)
    slos = slo_inputs(spec, source, canary, a, b, end)
    v = judge(c, samples, slos, warnings=warnings)
    j = Judgement(v, c.service, matchers_text(baseline), matchers_text(canary), start, end, run_id=run_id)
    if record:
        j.id = Records(store).record_verdict(
            {
                "judged_at": isoformat(judged_at),
                "service": c.service,
                "run_id": run_id,
                "baseline": j.baseline,
                "canary": j.canary,
                "window_from": isoformat(start),
                "window_to": isoformat(end),
                "verdict": v.verdict,
                "score": None if v.score is None else str(Decimal(v.score.numerator) / Decimal(v.score.denominator)),
                "spec_sha256": loaded.sha256,
                "detail": json.dumps(j.to_dict(), sort_keys=True, default=str),
            }
        )
    return j
