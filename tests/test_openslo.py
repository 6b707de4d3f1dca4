"""OpenSLO v1 export and import: the mapping, round trips, errors, hostile input and the CLI."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from conftest import EXAMPLE_SPEC
from vigil.errors import SpecError
from vigil.secretscan import looks_like_secret
from vigil.slo.openslo import (
    A_DESCRIPTION,
    A_EXCLUDE,
    A_MISSING,
    MAX_ALIASES,
    MAX_BYTES,
    OpenSLOError,
    dump_documents,
    dump_spec,
    export_spec,
    import_openslo,
    read_query,
    shorthand,
    to_json,
)
from vigil.slo.spec import SLO, Window
from vigil.spec import Service, Spec, load_spec, parse_spec
from vigil.telemetry.selector import Matcher, Selector, SelectorError


def load_all(text: str) -> list:
    return [d for d in YAML(typ="safe", pure=True).load_all(io.StringIO(text)) if d is not None]


def norm(slo: SLO) -> SLO:
    """The same SLO with a calendar window's default zone spelled out (UTC), as import gives it."""
    w = slo.window
    if w.calendar is not None and w.timezone is None:
        return slo.model_copy(update={"window": Window(calendar=w.calendar, timezone="UTC")})
    return slo


def roundtrip(spec: Spec, *, via_json: bool = False) -> Spec:
    docs = export_spec(spec).documents
    text = json.dumps(to_json(docs)) if via_json else dump_documents(docs)
    return import_openslo(text, filename="rt.yaml").spec


# --- export ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Spec:
    return load_spec(EXAMPLE_SPEC).spec


def test_export_example_documents(example):
    res = export_spec(example)
    kinds = [d["kind"] for d in res.documents]
    assert kinds == ["Service"] * 4 + ["SLO"] * 7
    assert all(d["apiVersion"] == "openslo/v1" for d in res.documents)
    docs = {d["metadata"]["name"]: d for d in res.documents if d["kind"] == "SLO"}
    svc = res.documents[0]
    assert svc == {
        "apiVersion": "openslo/v1",
        "kind": "Service",
        "metadata": {"name": "api", "annotations": {"vigil.dev/owner": "platform", "vigil.dev/tier": "1"}},
        "spec": {"description": "GraphQL API on serverless functions"},
    }

    avail = docs["api-availability"]["spec"]
    assert avail["service"] == "api"
    assert avail["budgetingMethod"] == "Occurrences"
    assert avail["timeWindow"] == [
        {"duration": "1M", "isRolling": False, "calendar": {"startTime": "2024-01-01 00:00:00", "timeZone": "UTC"}}
    ]
    assert avail["objectives"] == [{"target": Decimal("0.999")}]
    rm = avail["indicator"]["spec"]["ratioMetric"]
    assert rm["counter"] is True
    assert rm["good"] == {"metricSource": {"type": "Prometheus", "spec": {"query": 'http_requests{service="api",code!~"5.."}'}}}
    assert rm["total"]["metricSource"]["spec"]["query"] == 'http_requests{service="api"}'

    lat = docs["api-latency"]["spec"]
    assert lat["timeWindow"] == [{"duration": "30d", "isRolling": True}]
    assert lat["budgetingMethod"] == "Occurrences"
    assert lat["objectives"] == [{"op": "lte", "value": Decimal("0.3"), "target": Decimal("0.95")}]
    assert lat["indicator"]["spec"]["thresholdMetric"]["metricSource"]["spec"]["query"] == 'http_request_duration_seconds{service="api"}'

    fr = docs["search-freshness"]["spec"]
    assert fr["budgetingMethod"] == "Timeslices"
    assert fr["objectives"] == [
        {"op": "lte", "value": Decimal(300), "target": Decimal("0.99"), "timeSliceTarget": 1, "timeSliceWindow": "1m"}
    ]
    assert fr["indicator"]["metadata"]["annotations"] == {A_MISSING: "bad"}

    co = docs["checkout-success"]["spec"]
    assert co["indicator"]["metadata"]["annotations"] == {A_EXCLUDE: 'checkout_attempts{outcome="issuer_declined"}'}

    assert any("exclude has no OpenSLO field" in w and "checkout-success" in w for w in res.warnings)
    assert any("policy" in w and "no OpenSLO equivalent" in w for w in res.warnings)


def test_export_yaml_is_a_stream_of_openslo_documents(example):
    text = dump_documents(export_spec(example).documents)
    assert text.startswith("---\n")
    docs = load_all(text)
    assert len(docs) == 11
    slo = docs[4]
    assert slo["spec"]["objectives"][0]["target"] == 0.999  # a YAML number, not a string
    assert slo["spec"]["timeWindow"][0]["calendar"]["startTime"] == "2024-01-01 00:00:00"  # a string, as OpenSLO shows it
    assert export_spec(example, services=False).documents[0]["kind"] == "SLO"


def test_export_calendar_windows_and_shorthand():
    spec = parse_spec(
        """
version: 1
services: {a: {}}
slos:
  - {name: w, service: a, objective: 99, window: {calendar: week, timezone: Europe/Berlin}, sli: {ratio: {good: g, total: t}}}
  - {name: q, service: a, objective: 99, window: {calendar: quarter}, sli: {ratio: {good: g, total: t}}}
  - {name: r, service: a, objective: 99, window: {rolling: 36h}, sli: {ratio: {good: g, total: t}}}
  - {name: s, service: a, objective: 99, window: {rolling: 90m}, sli: {freshness: {metric: m, threshold: 1s, slice: 1h}}}
"""
    )
    docs = export_spec(spec, services=False).documents
    assert docs[0]["spec"]["timeWindow"][0]["duration"] == "1w"
    assert docs[0]["spec"]["timeWindow"][0]["calendar"]["timeZone"] == "Europe/Berlin"
    assert docs[1]["spec"]["timeWindow"][0] == {
        "duration": "1Q",
        "isRolling": False,
        "calendar": {"startTime": "2024-01-01 00:00:00", "timeZone": "UTC"},
    }
    assert docs[2]["spec"]["timeWindow"][0]["duration"] == "36h"
    assert docs[3]["spec"]["timeWindow"][0]["duration"] == "90m"
    assert docs[3]["spec"]["objectives"][0]["timeSliceWindow"] == "1h"
    assert [shorthand(Decimal(x)) for x in (60, 3600, 86400, 28 * 86400, 5400)] == ["1m", "1h", "1d", "28d", "90m"]


def test_export_warns_about_names_strict_tools_refuse():
    spec = parse_spec(
        "version: 1\nservices: {my_svc: {}}\nslos: [{name: a_b, service: my_svc, objective: 99, window: {rolling: 1d}, "
        "sli: {ratio: {good: g, total: t}}}]\n"
    )
    w = export_spec(spec).warnings
    assert any("service 'my_svc'" in x and "RFC 1123" in x for x in w)
    assert any("SLO 'a_b'" in x and "RFC 1123" in x for x in w)


def test_long_description_is_cut_for_openslo_and_kept_whole_in_an_annotation():
    text = "x" * 2000
    spec = Spec(
        version=1,
        services={"a": Service(description="d" * 1100)},
        slos=[SLO.model_validate({"name": "s", "service": "a", "objective": 99, "window": {"rolling": "1d"}, "description": text, "sli": {"ratio": {"good": "g", "total": "t"}}})],
    )
    docs = export_spec(spec).documents
    assert len(docs[1]["spec"]["description"]) == 1050
    assert docs[1]["metadata"]["annotations"][A_DESCRIPTION] == text
    assert len(docs[0]["spec"]["description"]) == 1050
    back = roundtrip(spec)
    assert back.slos[0].description == text
    assert back.services["a"].description == "d" * 1100


# --- round trips ----------------------------------------------------------------------------------


def test_example_round_trip_keeps_every_slo(example):
    back = roundtrip(example)
    assert back.slos == [norm(s) for s in example.slos]
    assert back.slos == example.slos  # the example spells out timezone: UTC
    assert back.services == example.services
    assert back.policy.freeze == []  # the policy has no OpenSLO form


def test_example_round_trip_through_json(example):
    assert roundtrip(example, via_json=True).slos == example.slos


def test_round_trip_without_warnings(example):
    docs = export_spec(example).documents
    res = import_openslo(dump_documents(docs), filename="rt.yaml")
    assert res.warnings == []


def test_imported_yaml_is_a_spec_vigil_check_accepts(example, tmp_path, cli):
    res = import_openslo(dump_documents(export_spec(example).documents), filename="rt.yaml")
    p = tmp_path / "vigil.yaml"
    p.write_text(res.yaml)
    assert cli("check", p).code == 0
    assert load_spec(p).spec.slos == example.slos


_label_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
_regexes = st.sampled_from(["5..", ".*", "a|b", "foo\\.bar", "[0-9]+", "", "(x|y)z?"])


@st.composite
def selectors(draw) -> Selector:
    metric = draw(st.from_regex(r"[a-zA-Z_:][a-zA-Z0-9_:]{0,15}", fullmatch=True))
    matchers = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True))
        op = draw(st.sampled_from(["=", "!=", "=~", "!~"]))
        value = draw(_regexes if op in ("=~", "!~") else _label_text)
        matchers.append(Matcher.make(name, op, value))
    return Selector(metric, tuple(matchers))


_zones = st.sampled_from([None, "UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])


@st.composite
def windows(draw) -> dict:
    if draw(st.booleans()):
        return {"rolling": Decimal(draw(st.integers(60, 400 * 1440)) * 60)}
    w: dict = {"calendar": draw(st.sampled_from(["week", "month", "quarter"]))}
    tz = draw(_zones)
    if tz is not None:
        w["timezone"] = tz
    return w


@st.composite
def slis(draw) -> dict:
    kind = draw(st.sampled_from(["ratio", "latency", "freshness"]))
    if kind == "ratio":
        body = {"good": draw(selectors()), "total": draw(selectors())}
        if draw(st.booleans()):
            body["exclude"] = draw(selectors())
        return {"ratio": body}
    threshold = Decimal(draw(st.integers(1, 10**12))) / 10**9
    if kind == "latency":
        return {"latency": {"metric": draw(selectors()), "threshold": threshold}}
    return {
        "freshness": {
            "metric": draw(selectors()),
            "threshold": threshold,
            "slice": Decimal(draw(st.sampled_from([1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60])) * 60),
            "missing": draw(st.sampled_from(["bad", "good", "ignore"])),
        }
    }


_names = st.from_regex(r"[a-z0-9]([a-z0-9._-]{0,20}[a-z0-9])?", fullmatch=True)
_services = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
# any text but what the spec refuses everywhere as secret-looking (vigil.secretscan)
_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40).filter(
    lambda s: looks_like_secret(s) is None
)


@st.composite
def specs(draw) -> Spec:
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    service_names = draw(st.lists(_services, min_size=1, max_size=3, unique=True))
    services = {}
    for s in service_names:
        services[s] = Service(
            description=draw(st.none() | _text), owner=draw(st.none() | _text), tier=draw(st.none() | _text)
        )
    slos = []
    for n in names:
        d = {
            "name": n,
            "service": draw(st.sampled_from(service_names)),
            "objective": Decimal(draw(st.integers(1, 99999))) / 100000,
            "window": draw(windows()),
            "sli": draw(slis()),
        }
        desc = draw(st.none() | _text)
        if desc is not None:
            d["description"] = desc
        slos.append(SLO.model_validate(d))
    return Spec(version=1, services=services, slos=slos)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_round_trip_keeps_the_meaning_of_any_slo(spec):
    res = import_openslo(dump_documents(export_spec(spec).documents), filename="rt.yaml")
    assert res.spec.slos == [norm(s) for s in spec.slos]
    assert res.spec.services == spec.services
    assert res.warnings == []
    # and the written spec reads back to the same SLOs, as `vigil check` would read it
    assert parse_spec(res.yaml).slos == res.spec.slos


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_round_trip_through_json_keeps_the_meaning(spec):
    assert roundtrip(spec, via_json=True).slos == [norm(s) for s in spec.slos]


@pytest.mark.parametrize("objective", ["0.5%", "0.005", "99.99999", "0.123456789012345678", "50"])
def test_objectives_of_any_size_read_back_exactly_from_the_written_spec(objective):
    spec = parse_spec(
        f"version: 1\nservices: {{a: {{}}}}\nslos: [{{name: s, service: a, objective: '{objective}', "
        "window: {rolling: 1d}, sli: {ratio: {good: g, total: t}}}]\n"
    )
    assert parse_spec(dump_spec(spec)).slos == spec.slos
    res = export_spec(spec)
    if objective == "0.123456789012345678":
        # an OpenSLO number is a double in every tool: export says what will come back
        assert any("more digits than an OpenSLO number" in w and "0.12345678901234568" in w for w in res.warnings)
        assert roundtrip(spec).slos[0].objective == Decimal("0.12345678901234568")
    else:
        assert not any("more digits" in w for w in res.warnings)
        assert roundtrip(spec).slos == spec.slos


# --- import of documents written by others ---------------------------------------------------------

# From github.com/OpenSLO/OpenSLO, README.md (apiVersion openslo/v1), section "SLI": "An example of
# an SLO where SLI is inlined" (foo-slo), with its Datadog metric sources replaced by the README's own
# "An example of ratioMetric" (type Prometheus), and with the timeWindow and budgetingMethod the
# README's SLO schema asks for (the example leaves them out; the window is the README's "4w" rolling).
README_SLO = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: foo-slo
  displayName: Foo SLO
spec:
  service: foo
  indicator:
    metadata:
      name: foo-error
      displayName: Foo Error
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            metricSourceRef: prometheus-datasource
            spec:
              query: sum(localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"})
        total:
          metricSource:
            type: Prometheus
            metricSourceRef: prometheus-datasource
            spec:
              query: localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}
  timeWindow:
    - duration: 4w
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: Foo Total Errors
      target: 0.98
"""

# The same README example exactly as published (Datadog sources, no timeWindow).
README_SLO_VERBATIM = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: foo-slo
  displayName: Foo SLO
spec:
  service: foo
  indicator:
    metadata:
      name: foo-error
      displayName: Foo Error
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            metricSourceRef: datadog-datasource
            type: Datadog
            spec:
              query: sum:trace.http.request.hits.by_http_status{http.status_code:200}.as_count()
        total:
          metricSource:
            metricSourceRef: datadog-datasource
            type: Datadog
            spec:
              query: sum:trace.http.request.hits.by_http_status{*}.as_count()
  objectives:
    - displayName: Foo Total Errors
      target: 0.98
"""

# From github.com/OpenSLO/OpenSLO, pkg/openslo/v1/examples/services.yaml: a list of documents.
SDK_SERVICES = """\
- apiVersion: openslo/v1
  kind: Service
  metadata:
    labels:
      env:
        - prod
      team:
        - team-a
        - team-b
    name: example-service
  spec:
    description: Example service description
"""


def test_import_readme_example():
    res = import_openslo(README_SLO, filename="readme.yaml")
    (slo,) = res.spec.slos
    assert slo.name == "foo-slo"
    assert slo.service == "foo"
    assert slo.objective == Decimal("0.98")
    assert slo.window == Window(rolling=Decimal(28 * 86400))
    assert str(slo.sli.ratio.good) == 'localhost_server_requests{code=~"2xx|3xx",host="*",instance="127.0.0.1:9090"}'
    assert str(slo.sli.ratio.total) == 'localhost_server_requests{code="total",host="*",instance="127.0.0.1:9090"}'
    assert slo.sli.ratio.exclude is None
    assert list(res.spec.services) == ["foo"]
    text = "\n".join(str(w) for w in res.warnings)
    assert "read 'sum(localhost_server_requests" in text and "vigil sums the increase" in text
    assert "metadata.displayName" in text and "spec.objectives[0].displayName" in text
    assert "metricSourceRef" in text
    assert parse_spec(res.yaml).slos == res.spec.slos


def test_import_readme_example_verbatim_names_every_problem():
    with pytest.raises(OpenSLOError) as ei:
        import_openslo(README_SLO_VERBATIM, filename="readme.yaml")
    issues = ei.value.issues
    by_path = {i.path: i for i in issues}
    assert set(by_path) == {
        "spec.timeWindow",
        "spec.indicator.spec.ratioMetric.good.metricSource.type",
        "spec.indicator.spec.ratioMetric.total.metricSource.type",
    }
    t = by_path["spec.indicator.spec.ratioMetric.good.metricSource.type"]
    assert "'Datadog'" in t.message and t.line == 18 and t.file == "readme.yaml"
    assert "isRolling: true" in by_path["spec.timeWindow"].hint
    assert "readme.yaml:18:19: SLO 'foo-slo' (document 1): spec.indicator.spec.ratioMetric.good.metricSource.type:" in ei.value.message


def test_import_sdk_service_list():
    res = import_openslo(SDK_SERVICES)
    assert res.spec.services == {"example-service": Service(description="Example service description")}
    assert res.spec.slos == []
    assert any("metadata.labels" in str(w) for w in res.warnings)


def test_import_sli_by_reference_service_datasource_and_skipped_kinds():
    text = """\
apiVersion: openslo/v1
kind: DataSource
metadata: {name: prom}
spec: {type: Prometheus, connectionDetails: {url: "http://prom:9090"}}
---
apiVersion: openslo/v1
kind: Service
metadata:
  name: search
  annotations: {vigil.dev/owner: platform}
spec: {description: search}
---
apiVersion: openslo/v1
kind: SLI
metadata:
  name: staleness
  annotations: {vigil.dev/missing: ignore}
spec:
  description: hot index staleness
  thresholdMetric:
    metricSource:
      metricSourceRef: prom
      spec: {query: 'index_staleness_seconds{class="hot"}'}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: search-freshness}
spec:
  service: search
  indicatorRef: staleness
  timeWindow: [{duration: 1Q, isRolling: false, calendar: {startTime: "2025-04-01 00:00:00", timeZone: Europe/Berlin}}]
  budgetingMethod: Timeslices
  objectives: [{op: lte, value: 300, targetPercent: 99.5, timeSliceTarget: 1, timeSliceWindow: 5}]
  alertPolicies: [page-on-burn]
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: page-on-burn}
spec: {conditions: []}
"""
    res = import_openslo(text, filename="in.yaml")
    (slo,) = res.spec.slos
    assert slo.sli.freshness is not None
    assert str(slo.sli.freshness.metric) == 'index_staleness_seconds{class="hot"}'
    assert slo.sli.freshness.threshold == 300
    assert slo.sli.freshness.slice == 300  # a bare number is minutes
    assert slo.sli.freshness.missing == "ignore"
    assert slo.objective == Decimal("0.995")
    assert slo.window == Window(calendar="quarter", timezone="Europe/Berlin")
    assert slo.description == "hot index staleness"
    assert res.spec.services["search"] == Service(description="search", owner="platform")
    w = [str(x) for x in res.warnings]
    assert any("alertPolicies" in x and "ignored" in x for x in w)
    assert any("AlertPolicy" in x and "skipped" in x for x in w)
    assert not any("type is missing" in x for x in w)  # resolved through the DataSource


def test_import_warns_where_it_fills_in_what_the_document_leaves_out():
    text = """\
apiVersion: openslo/v1
kind: SLO
metadata: {name: s}
spec:
  service: a
  indicator:
    metadata: {name: s}
    spec:
      ratioMetric:
        good: {metricSource: {spec: {query: good_total}}}
        total: {metricSource: {type: prometheus, spec: {query: 'sum(rate(all_total{a="b"}[5m]))'}}}
  timeWindow: [{duration: 1M, calendar: {timeZone: UTC}}]
  objectives: [{target: 0.9, op: gt, timeSliceWindow: 1m}]
"""
    res = import_openslo(text)
    (slo,) = res.spec.slos
    assert str(slo.sli.ratio.total) == 'all_total{a="b"}'
    assert slo.window == Window(calendar="month", timezone="UTC")
    w = "\n".join(str(x) for x in res.warnings)
    for expect in (
        "budgetingMethod is missing",
        "counter is missing",
        "type is missing",
        "startTime is missing",
        "spec.objectives[0].op: ignored",
        "spec.objectives[0].timeSliceWindow: ignored",
        "vigil sums the increase",
    ):
        assert expect in w, expect


def test_read_query():
    assert read_query("x{a='b'}", counter=False) == (Selector("x", (Matcher.make("a", "=", "b"),)), False)
    assert read_query("sum(x)", counter=True) == (Selector("x"), True)
    assert read_query("increase(x[1h])", counter=True) == (Selector("x"), True)
    assert read_query(" sum ( rate ( x{a=\"b\"} [5m] ) ) ", counter=True)[0] == Selector("x", (Matcher.make("a", "=", "b"),))
    for bad in ("sum(x)", "histogram_quantile(0.95, x)", "x / y", "sum by (a) (x)", "{{.window}}"):
        with pytest.raises(SelectorError):
            read_query(bad, counter=False if bad == "sum(x)" else True)


# --- import errors --------------------------------------------------------------------------------


def _ms(q: str) -> dict:
    return {"metricSource": {"type": "Prometheus", "spec": {"query": q}}}


def _doc(kind: str) -> dict:
    if kind == "ratio":
        sli = {"ratioMetric": {"counter": True, "good": _ms('checkout_attempts{outcome="success"}'), "total": _ms("checkout_attempts")}}
        obj = {"target": Decimal("0.995")}
        bm = "Occurrences"
    elif kind == "latency":
        sli = {"thresholdMetric": _ms('http_request_duration_seconds{service="api"}')}
        obj = {"op": "lte", "value": Decimal("0.3"), "target": Decimal("0.95")}
        bm = "Occurrences"
    else:
        sli = {"thresholdMetric": _ms("index_staleness_seconds")}
        obj = {"op": "lte", "value": 300, "target": Decimal("0.99"), "timeSliceTarget": 1, "timeSliceWindow": "1m"}
        bm = "Timeslices"
    return {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {"name": "s1"},
        "spec": {
            "service": "svc",
            "indicator": {"metadata": {"name": "s1"}, "spec": sli},
            "timeWindow": [{"duration": "30d", "isRolling": True}],
            "budgetingMethod": bm,
            "objectives": [obj],
        },
    }


def _rm(d):
    return d["spec"]["indicator"]["spec"]["ratioMetric"]


def _obj(d):
    return d["spec"]["objectives"][0]


def _tw(d):
    return d["spec"]["timeWindow"][0]


def _set(f):
    def g(d):
        f(d)
        return d

    return g


RM = "spec.indicator.spec.ratioMetric"
ERRORS = [
    ("bad-not-good", "ratio", _set(lambda d: _rm(d).__setitem__("bad", _rm(d).pop("good"))), f"{RM}.bad", "bad/total cannot be imported", "good"),
    ("raw", "ratio", _set(lambda d: d["spec"]["indicator"]["spec"].__setitem__("ratioMetric", {"rawType": "success", "raw": _ms("r")})), f"{RM}.raw", "precomputed ratio", None),
    ("counter-false", "ratio", _set(lambda d: _rm(d).__setitem__("counter", False)), f"{RM}.counter", "counter: false", None),
    ("ratio-timeslices", "ratio", _set(lambda d: d["spec"].__setitem__("budgetingMethod", "RatioTimeslices")), "spec.budgetingMethod", "RatioTimeslices", "Occurrences"),
    ("timeslices-on-ratio", "ratio", _set(lambda d: d["spec"].__setitem__("budgetingMethod", "Timeslices")), "spec.budgetingMethod", "Timeslices on a ratioMetric", None),
    ("unknown-budgeting", "ratio", _set(lambda d: d["spec"].__setitem__("budgetingMethod", "Sometimes")), "spec.budgetingMethod", "unknown budgetingMethod", None),
    ("two-objectives", "ratio", _set(lambda d: d["spec"]["objectives"].append({"target": 0.9})), "spec.objectives", "2 objectives", "one SLO per objective"),
    ("no-objectives", "ratio", _set(lambda d: d["spec"].__setitem__("objectives", [])), "spec.objectives", "0 objectives", None),
    ("composite", "ratio", _set(lambda d: _obj(d).update(indicatorRef="other", compositeWeight=1)), "spec.objectives[0]", "composite SLO", "its own SLO"),
    ("no-indicator", "ratio", _set(lambda d: d["spec"].pop("indicator")), "spec", "no indicator", "indicatorRef"),
    ("indicator-and-ref", "ratio", _set(lambda d: d["spec"].__setitem__("indicatorRef", "x")), "spec.indicatorRef", "not both", None),
    ("unknown-ref", "ratio", _set(lambda d: (d["spec"].pop("indicator"), d["spec"].__setitem__("indicatorRef", "nope"))), "spec.indicatorRef", "no SLI document named 'nope'", None),
    ("op-lt", "latency", _set(lambda d: _obj(d).__setitem__("op", "lt")), "spec.objectives[0].op", "op 'lt' cannot be imported", "op: lte"),
    ("op-gte", "latency", _set(lambda d: _obj(d).__setitem__("op", "gte")), "spec.objectives[0].op", "op 'gte'", "upper bounds"),
    ("no-op", "latency", _set(lambda d: _obj(d).pop("op")), "spec.objectives[0].op", "required field is missing", "lte"),
    ("no-value", "latency", _set(lambda d: _obj(d).pop("value")), "spec.objectives[0].value", "required field is missing", "seconds"),
    ("negative-value", "latency", _set(lambda d: _obj(d).__setitem__("value", -1)), "spec.objectives[0].value", "above zero", None),
    ("sub-ns-value", "latency", _set(lambda d: _obj(d).__setitem__("value", Decimal("1e-12"))), "spec.objectives[0].value", "nanosecond", None),
    ("quantile-query", "latency", _set(lambda d: d["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"]["spec"].__setitem__("query", "histogram_quantile(0.95, sum by (le) (rate(x_bucket[5m])))")), "spec.indicator.spec.thresholdMetric.metricSource.spec.query", "not a selector", "plain selector"),
    ("datadog", "latency", _set(lambda d: d["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"].__setitem__("type", "Datadog")), "spec.indicator.spec.thresholdMetric.metricSource.type", "'Datadog' cannot be imported", "Prometheus"),
    ("no-query", "latency", _set(lambda d: d["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"].__setitem__("spec", {"metric": "x"})), "spec.indicator.spec.thresholdMetric.metricSource.spec.query", "required field is missing", None),
    ("slice-target", "freshness", _set(lambda d: _obj(d).__setitem__("timeSliceTarget", Decimal("0.95"))), "spec.objectives[0].timeSliceTarget", "timeSliceTarget 0.95", "timeSliceTarget: 1"),
    ("no-slice-target", "freshness", _set(lambda d: _obj(d).pop("timeSliceTarget")), "spec.objectives[0].timeSliceTarget", "required field is missing", None),
    ("slice-7m", "freshness", _set(lambda d: _obj(d).__setitem__("timeSliceWindow", "7m")), "spec.objectives[0].timeSliceWindow", "divide an hour", None),
    ("slice-30s", "freshness", _set(lambda d: _obj(d).__setitem__("timeSliceWindow", "30s")), "spec.objectives[0].timeSliceWindow", "cannot read slice '30s'", None),
    ("bad-missing", "freshness", _set(lambda d: d["spec"]["indicator"]["metadata"].__setitem__("annotations", {A_MISSING: "maybe"})), f"spec.indicator.metadata.annotations['{A_MISSING}']", "not one of bad, good, ignore", None),
    ("exclude-on-latency", "latency", _set(lambda d: d["spec"]["indicator"]["metadata"].__setitem__("annotations", {A_EXCLUDE: "x"})), f"spec.indicator.metadata.annotations['{A_EXCLUDE}']", "ratio SLIs only", None),
    ("exclude-not-selector", "ratio", _set(lambda d: d["spec"]["indicator"]["metadata"].__setitem__("annotations", {A_EXCLUDE: "x{a=>'b'}"})), f"spec.indicator.metadata.annotations['{A_EXCLUDE}']", "not a selector", None),
    ("rolling-month", "ratio", _set(lambda d: _tw(d).__setitem__("duration", "1M")), "spec.timeWindow[0].duration", "no fixed length", "30d"),
    ("rolling-30m", "ratio", _set(lambda d: _tw(d).__setitem__("duration", "30m")), "spec.timeWindow[0]", "at least 1h", None),
    ("bad-shorthand", "ratio", _set(lambda d: _tw(d).__setitem__("duration", "30 days")), "spec.timeWindow[0].duration", "cannot read duration", "28d"),
    ("zero-shorthand", "ratio", _set(lambda d: _tw(d).__setitem__("duration", "0d")), "spec.timeWindow[0].duration", "cannot read duration", None),
    ("calendar-2M", "ratio", _set(lambda d: d["spec"].__setitem__("timeWindow", [{"duration": "2M", "calendar": {"startTime": "2024-01-01 00:00:00", "timeZone": "UTC"}}])), "spec.timeWindow[0].duration", "no vigil equivalent", "1Q"),
    ("calendar-misaligned", "ratio", _set(lambda d: d["spec"].__setitem__("timeWindow", [{"duration": "1M", "isRolling": False, "calendar": {"startTime": "2022-01-01 12:00:00", "timeZone": "America/New_York"}}])), "spec.timeWindow[0].calendar.startTime", "is not such a start", "2024-01-01 00:00:00"),
    ("calendar-week-tuesday", "ratio", _set(lambda d: d["spec"].__setitem__("timeWindow", [{"duration": "1w", "calendar": {"startTime": "2024-01-02", "timeZone": "UTC"}}])), "spec.timeWindow[0].calendar.startTime", "a Monday", None),
    ("calendar-quarter-february", "ratio", _set(lambda d: d["spec"].__setitem__("timeWindow", [{"duration": "1Q", "calendar": {"startTime": "2024-02-01 00:00:00", "timeZone": "UTC"}}])), "spec.timeWindow[0].calendar.startTime", "April", None),
    ("calendar-offset", "ratio", _set(lambda d: d["spec"].__setitem__("timeWindow", [{"duration": "1M", "calendar": {"startTime": "2024-01-01T00:00:00+02:00", "timeZone": "UTC"}}])), "spec.timeWindow[0].calendar.startTime", "UTC offset", None),
    ("calendar-zone", "ratio", _set(lambda d: d["spec"].__setitem__("timeWindow", [{"duration": "1M", "calendar": {"startTime": "2024-01-01 00:00:00", "timeZone": "Mars/Olympus"}}])), "spec.timeWindow[0].calendar.timeZone", "unknown time zone", "IANA"),
    ("rolling-and-calendar", "ratio", _set(lambda d: _tw(d).__setitem__("calendar", {"timeZone": "UTC"})), "spec.timeWindow[0].isRolling", "rolling or calendar", None),
    ("not-rolling-no-calendar", "ratio", _set(lambda d: _tw(d).__setitem__("isRolling", False)), "spec.timeWindow[0]", "without a calendar", None),
    ("two-windows", "ratio", _set(lambda d: d["spec"]["timeWindow"].append({"duration": "7d", "isRolling": True})), "spec.timeWindow", "2 time windows", None),
    ("no-window", "ratio", _set(lambda d: d["spec"].pop("timeWindow")), "spec.timeWindow", "required field is missing", "timeWindow"),
    ("v1alpha", "ratio", _set(lambda d: d.__setitem__("apiVersion", "openslo/v1alpha")), "apiVersion", "'openslo/v1alpha' is not supported", "OpenSLO v1"),
    ("no-kind", "ratio", _set(lambda d: d.pop("kind")), "kind", "required field is missing", None),
    ("metadata-string", "ratio", _set(lambda d: d.__setitem__("metadata", "s1")), "metadata", "expected a mapping, got a string", None),
    ("no-name", "ratio", _set(lambda d: d["metadata"].pop("name")), "metadata.name", "required field is missing", None),
    ("uppercase-name", "ratio", _set(lambda d: d["metadata"].__setitem__("name", "Checkout")), "metadata.name", "not a vigil SLO name", "lowercase"),
    ("no-service", "ratio", _set(lambda d: d["spec"].pop("service")), "spec.service", "required field is missing", None),
    ("bad-service", "ratio", _set(lambda d: d["spec"].__setitem__("service", "a b")), "spec.service", "not a vigil service name", None),
    ("objectives-string", "ratio", _set(lambda d: d["spec"].__setitem__("objectives", "x")), "spec.objectives", "expected a list, got a string", None),
    ("objective-number", "ratio", _set(lambda d: d["spec"].__setitem__("objectives", [5])), "spec.objectives[0]", "expected a mapping, got a number", None),
    ("target-string", "ratio", _set(lambda d: _obj(d).__setitem__("target", "0.99")), "spec.objectives[0].target", "expected a number, got a string", None),
    ("target-bool", "ratio", _set(lambda d: _obj(d).__setitem__("target", True)), "spec.objectives[0].target", "expected a number, got a boolean", None),
    ("target-percent-as-target", "ratio", _set(lambda d: _obj(d).__setitem__("target", Decimal("99.9"))), "spec.objectives[0].target", "out of range", "targetPercent: 99.9"),
    ("target-and-percent", "ratio", _set(lambda d: _obj(d).__setitem__("targetPercent", 99)), "spec.objectives[0].targetPercent", "not both", None),
    ("no-target", "ratio", _set(lambda d: _obj(d).pop("target")), "spec.objectives[0]", "needs target", None),
    ("target-100", "ratio", _set(lambda d: (_obj(d).pop("target"), _obj(d).__setitem__("targetPercent", 100))), "spec.objectives[0].targetPercent", "out of range", None),
    ("counter-string", "ratio", _set(lambda d: _rm(d).__setitem__("counter", "yes")), f"{RM}.counter", "expected true or false", None),
    ("good-list", "ratio", _set(lambda d: _rm(d).__setitem__("good", ["x"])), f"{RM}.good", "expected a mapping, got a list", None),
    ("both-metrics", "ratio", _set(lambda d: d["spec"]["indicator"]["spec"].__setitem__("thresholdMetric", _ms("x"))), "spec.indicator.spec", "exactly one of ratioMetric and thresholdMetric", None),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_import_errors_name_the_document_and_field(case):
    _id, kind, mutate, path, message, hint = case
    doc = mutate(copy.deepcopy(_doc(kind)))
    text = dump_documents([doc])
    with pytest.raises(OpenSLOError) as ei:
        import_openslo(text, filename="in.yaml")
    issues = ei.value.issues
    hit = [i for i in issues if i.path == path]
    assert hit, f"no issue at {path}: {[str(i) for i in issues]}"
    i = hit[0]
    assert message in i.message, str(i)
    if hint is not None:
        assert hint in (i.hint or ""), str(i)
    assert i.file == "in.yaml" and i.line is not None and i.document == 1
    assert str(i).startswith(f"in.yaml:{i.line}")
    assert ei.value.exit_code == 2


@pytest.mark.parametrize("kind", ["ratio", "latency", "freshness"])
def test_the_base_documents_of_the_error_table_import(kind):
    (slo,) = import_openslo(dump_documents([_doc(kind)])).spec.slos
    assert slo.sli.kind == kind


def test_errors_in_several_documents_are_all_reported():
    a = _doc("ratio")
    b = copy.deepcopy(_doc("latency"))
    b["metadata"]["name"] = "s2"
    _obj(b)["op"] = "gt"
    c = copy.deepcopy(_doc("latency"))  # duplicate name s1
    with pytest.raises(OpenSLOError) as ei:
        import_openslo(dump_documents([a, b, c]), filename="in.yaml")
    got = {(i.document, i.path) for i in ei.value.issues}
    assert (2, "spec.objectives[0].op") in got
    assert (3, "metadata.name") in got
    assert any("duplicate SLO name 's1' (first in document 1)" in i.message for i in ei.value.issues)


def test_errors_in_a_referenced_sli_name_the_sli_document():
    text = """\
apiVersion: openslo/v1
kind: SLI
metadata: {name: errors}
spec:
  ratioMetric:
    counter: true
    bad: {metricSource: {type: Prometheus, spec: {query: 'http_requests{code=~"5.."}'}}}
    total: {metricSource: {type: Prometheus, spec: {query: http_requests}}}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: availability}
spec:
  service: api
  indicatorRef: errors
  timeWindow: [{duration: 28d, isRolling: true}]
  budgetingMethod: Occurrences
  objectives: [{target: 0.999}]
"""
    with pytest.raises(OpenSLOError) as ei:
        import_openslo(text, filename="in.yaml")
    (i,) = ei.value.issues
    assert (i.document, i.kind, i.name, i.path, i.line) == (1, "SLI", "errors", "spec.ratioMetric.bad", 7)


def test_many_problems_are_listed_up_to_a_limit():
    docs = []
    for n in range(80):
        d = _doc("ratio")
        d["metadata"]["name"] = f"s{n}"
        d["spec"]["budgetingMethod"] = "RatioTimeslices"
        docs.append(d)
    e = _err(dump_documents(docs))
    assert len(e.issues) == 80
    assert "... and 30 more (--json lists them all)" in e.message
    assert len(e.to_dict()["issues"]) == 80


def test_skipped_and_unknown_kinds_are_warnings():
    text = dump_documents(
        [
            _doc("ratio"),
            {"apiVersion": "openslo/v1", "kind": "AlertCondition", "metadata": {"name": "x"}, "spec": {}},
            {"apiVersion": "openslo/v1", "kind": "slo", "metadata": {"name": "y"}, "spec": {}},
            {"apiVersion": "openslo/v1", "kind": "SLI", "metadata": {"name": "unused"}, "spec": {"thresholdMetric": _ms("x")}},
        ]
    )
    res = import_openslo(text)
    w = [str(x) for x in res.warnings]
    assert any("AlertCondition is skipped" in x for x in w)
    assert any("unknown kind 'slo'" in x and "did you mean kind: SLO" in x for x in w)
    assert any("SLI 'unused'" in x and "no SLO refers" in x for x in w)
    assert len(res.spec.slos) == 1


# --- hostile input --------------------------------------------------------------------------------


def _err(data, **kw) -> OpenSLOError:
    with pytest.raises(OpenSLOError) as ei:
        import_openslo(data, filename="in.yaml", **kw)
    return ei.value


def test_malformed_yaml_names_the_line():
    e = _err("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: [x\n")
    (i,) = e.issues
    assert i.message.startswith("invalid YAML") and i.line is not None and i.line >= 3


def test_duplicate_keys_are_refused():
    e = _err("apiVersion: openslo/v1\nkind: SLO\nkind: SLI\n")
    assert "duplicate" in e.issues[0].message and e.issues[0].line == 3


def test_huge_input_is_refused_before_parsing():
    t = time.monotonic()
    e = _err(b"#" * (MAX_BYTES + 1))
    assert "larger than 1 MiB" in e.issues[0].message
    assert time.monotonic() - t < 1


def test_alias_bomb_is_refused():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, 30):
        lines.append(f"a{n}: &a{n} [" + ",".join([f"*a{n - 1}"] * 9) + "]")
    e = _err("\n".join(lines) + "\n")
    assert "aliases" in e.issues[0].message


def test_small_alias_bomb_stays_small():
    # under the alias limit, but 9**8 strings if expanded: shared, never expanded
    lines = ["apiVersion: openslo/v1", "kind: SLO", "metadata: {name: s}", "x0: &x0 [a, a, a, a, a, a, a, a, a]"]
    for n in range(1, 9):
        lines.append(f"x{n}: &x{n} [" + ",".join([f"*x{n - 1}"] * 9) + "]")
    lines.append("spec: {service: *x8}")
    t = time.monotonic()
    e = _err("\n".join(lines) + "\n")
    assert time.monotonic() - t < 5
    assert any(i.path == "spec.service" and "expected a string, got a list" in i.message for i in e.issues)


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)) + "  " * 200 + "v: 1\n"])
def test_deep_nesting_is_refused(text):
    e = _err(text)
    assert "nests" in e.issues[0].message


def test_json_surrogate_pairs_are_joined_and_lone_surrogates_refused():
    doc = _doc("ratio")
    doc["spec"]["description"] = "\U0001F600 ok"
    text = json.dumps(to_json(doc))  # ensure_ascii: the emoji is written as \\ud83d\\ude00
    assert "\\ud83d\\ude00" in text
    assert import_openslo(text).spec.slos[0].description == "\U0001F600 ok"
    e = _err(text.replace("\\ude00", ""))
    assert "lone UTF-16 surrogate" in e.issues[0].message and "\\ud83d" in e.issues[0].message


def test_not_utf8():
    assert "not UTF-8" in _err(b"apiVersion: \xff\xfe\n").issues[0].message


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no SLO or Service documents"),
        ("---\n---\n", "no SLO or Service documents"),
        ("just a string\n", "must be a mapping"),
        ("=", "got a string ('=')"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: s}\nspec: [1]\n", "spec: expected a mapping, got a list"),
        ("apiVersion: 1\nkind: SLO\n", "apiVersion: expected a string, got a number"),
        ("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: s}\nspec: {objectives: [{target: .nan}]}\n", "finite number"),
        ("!!python/object/apply:os.system ['echo pwned']\n", "YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"),
        ("a: " + "9" * 5000 + "\n", "in.yaml:1:4: invalid YAML value: Exceeds the limit"),
        ("a: !!int abc\n", "invalid YAML"),
        ("a: !!binary xyz\n", "YAML tag 'tag:yaml.org,2002:binary' is not allowed"),
        ("apiVersion: openslo/v1\nkind: SLO\nmetadata: {name: s}\nspec: {objectives: [{target: 1" + "0" * 400 + "}]}\n", "spec.objectives[0].target:"),
    ],
)
def test_wrong_shapes_are_clear_errors(text, message):
    e = _err(text)
    assert any(message in str(i) for i in e.issues), [str(i) for i in e.issues]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_imported_or_a_clear_error(data):
    try:
        import_openslo(data)
    except OpenSLOError as e:
        assert e.issues


_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["ratio", "latency", "freshness"]), st.data(), _junk)
def test_any_value_anywhere_is_imported_or_a_clear_error(kind, data, junk):
    doc = _doc(kind)
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths))
    node = doc
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = junk
    text = json.dumps(to_json(doc), default=str)
    try:
        res = import_openslo(text)
    except OpenSLOError as e:
        assert e.issues and all(isinstance(i.message, str) and i.message for i in e.issues)
        return
    parse_spec(res.yaml)


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_export_yaml(cli):
    r = cli("openslo", "export", "--spec", EXAMPLE_SPEC)
    assert r.code == 0, r.err
    docs = load_all(r.out)
    assert [d["kind"] for d in docs].count("SLO") == 7
    assert "warning: SLO 'checkout-success': exclude has no OpenSLO field" in r.err


def test_cli_export_json(cli):
    r = cli("openslo", "export", "--spec", EXAMPLE_SPEC, "--json")
    assert r.code == 0, r.err
    docs = r.json()
    assert isinstance(docs, list) and len(docs) == 11
    lat = next(d for d in docs if d["metadata"]["name"] == "api-latency")
    assert lat["spec"]["objectives"] == [{"op": "lte", "value": 0.3, "target": 0.95}]


def test_cli_export_to_file_without_services(cli, tmp_path):
    out = tmp_path / "openslo.yaml"
    out.write_text("old")
    r = cli("openslo", "export", "--spec", EXAMPLE_SPEC, "--out", out, "--no-services")
    assert r.code == 0, r.err
    assert "wrote" in r.out and "0 services and 7 SLOs" in r.out
    assert {d["kind"] for d in load_all(out.read_text())} == {"SLO"}
    r = cli("openslo", "export", "--spec", EXAMPLE_SPEC, "--out", out, "--json")
    assert r.json()["slos"] == 7 and r.json()["out"] == str(out)
    assert isinstance(json.loads(out.read_text()), list)


def test_cli_export_of_an_invalid_spec_exits_2(cli, tmp_path):
    p = tmp_path / "vigil.yaml"
    p.write_text("version: 1\nservices: {}\nslos: [{name: x}]\n")
    r = cli("openslo", "export", "--spec", p)
    assert r.code == 2 and "error:" in r.err and "Traceback" not in r.err


def test_cli_round_trip_through_files(cli, tmp_path):
    o = tmp_path / "openslo.yaml"
    v = tmp_path / "imported.yaml"
    assert cli("openslo", "export", "--spec", EXAMPLE_SPEC, "--out", o).code == 0
    r = cli("openslo", "import", o, "--out", v)
    assert r.code == 0, r.err
    assert f"wrote {v}: 4 services, 7 SLOs" in r.out
    assert cli("check", v).code == 0
    assert load_spec(v).spec.slos == load_spec(EXAMPLE_SPEC).spec.slos
    # an existing file is not overwritten without --force
    r = cli("openslo", "import", o, "--out", v)
    assert r.code == 2 and "exists" in r.err and "--force" in r.err
    assert cli("openslo", "import", o, "--out", v, "--force").code == 0


def test_cli_import_prints_yaml_and_warnings(cli, tmp_path):
    p = tmp_path / "readme.yaml"
    p.write_text(README_SLO)
    r = cli("openslo", "import", p)
    assert r.code == 0, r.err
    assert "name: foo-slo" in r.out
    assert parse_spec(r.out).slos[0].name == "foo-slo"
    assert "warning:" in r.err and "displayName" in r.err


def test_cli_import_json(cli, tmp_path):
    p = tmp_path / "readme.yaml"
    p.write_text(README_SLO)
    r = cli("openslo", "import", p, "--json")
    assert r.code == 0, r.err
    d = r.json()
    assert d["slos"] == ["foo-slo"] and d["services"] == ["foo"]
    assert d["spec"]["slos"][0]["objective"] == 98
    assert any(w["path"] == "metadata" or "displayName" in w["message"] for w in d["warnings"])
    assert r.err == ""


def test_cli_import_errors_exit_2_without_traceback(cli, tmp_path):
    p = tmp_path / "readme.yaml"
    p.write_text(README_SLO_VERBATIM)
    r = cli("openslo", "import", p, "--out", tmp_path / "v.yaml")
    assert r.code == 2
    assert "Traceback" not in r.err
    assert "error: cannot import the OpenSLO documents: 3 problems" in r.err
    assert f"{p}:18:19: SLO 'foo-slo' (document 1)" in r.err
    assert "hint:" in r.err
    assert not (tmp_path / "v.yaml").exists()
    r = cli("openslo", "import", p, "--json")
    assert r.code == 2
    err = r.json()["error"]
    assert err["code"] == "openslo-invalid"
    assert {i["path"] for i in err["issues"]} >= {"spec.timeWindow"}


def test_cli_import_missing_file_and_directory(cli, tmp_path):
    r = cli("openslo", "import", tmp_path / "nope.yaml")
    assert r.code == 2 and "file not found" in r.err
    r = cli("openslo", "import", tmp_path)
    assert r.code == 2 and "directory" in r.err
    p = tmp_path / "readme.yaml"
    p.write_text(README_SLO)
    r = cli("openslo", "import", p, "--out", tmp_path / "missing-dir" / "v.yaml")
    assert r.code == 2 and "does not exist" in r.err


def test_cli_import_from_stdin(cli, monkeypatch):
    class Stdin:
        buffer = io.BytesIO(README_SLO.encode())

    monkeypatch.setattr(sys, "stdin", Stdin())
    r = cli("openslo", "import", "-")
    assert r.code == 0, r.err
    assert "# imported from <stdin>" in r.out


def test_cli_group_is_documented(cli):
    r = cli("openslo", "--help")
    assert r.code == 0 and "export" in r.out and "import" in r.out
    for sub in ("export", "import"):
        r = cli("openslo", sub, "--help")
        assert r.code == 0 and "--out" in r.out and "--json" in r.out


def test_written_spec_keeps_the_file_mode(cli, tmp_path):
    o = tmp_path / "o.yaml"
    cli("openslo", "export", "--spec", EXAMPLE_SPEC, "--out", o)
    v = tmp_path / "v.yaml"
    v.write_text("")
    v.chmod(0o640)
    assert cli("openslo", "import", o, "--out", v, "--force").code == 0
    assert v.stat().st_mode & 0o777 == 0o640
    assert Path(v).read_text().startswith("# imported from")


# --- one YAML reader (vigil.yamlio), typed documents (issue 7) -----------------------------------


def _svc(value: str) -> str:
    """The ratio document of the error table with ``spec.service`` written as ``value`` (raw YAML)."""
    return dump_documents([_doc("ratio")]).replace("service: svc", f"service: {value}")


@pytest.mark.parametrize(
    "tag",
    [
        "!custom api",
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!binary YXBp",
        "!!timestamp 2026-01-01",
        "!!str api",  # a plain tag: fine
    ],
)
def test_import_refuses_tags_as_the_spec_does(tag, tmp_path):
    # before: the tag was dropped and `service: !custom api` imported as the service 'api'
    marker = tmp_path / "pwned"
    text = _svc(tag.format(marker=marker))
    line = next(n for n, s in enumerate(text.splitlines(), 1) if "service:" in s)
    if tag.startswith("!!str"):
        assert import_openslo(text).spec.slos[0].service == "api"
        return
    e = _err(text)
    (i,) = e.issues
    assert i.message.startswith("YAML tag ") and i.message.endswith("is not allowed in an OpenSLO document")
    assert (i.file, i.line, i.column) == ("in.yaml", line, 12)
    assert str(i).startswith(f"in.yaml:{line}:12: YAML tag")
    assert "remove the tag" in e.hint
    assert not marker.exists()
    # the spec loader refuses the same tag with the same words, line and column
    spec_text = f"version: 1\nservices: {{}}\nx: {tag.format(marker=marker)}\n"
    with pytest.raises(SpecError) as ei:
        parse_spec(spec_text)
    (s,) = ei.value.issues
    assert s.message.replace("in a spec", "in an OpenSLO document") == i.message and (s.line, s.column) == (3, 4)


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: openslo/v1\nkind: SLO\nmetadata: !!set name\n",  # ruamel raised AttributeError: a traceback
        ": #\u2028e\n\n",  # ruamel raised NotImplementedError: a traceback
    ],
)
def test_input_that_crashed_the_old_reader_is_a_clear_error(text):
    e = _err(text)
    assert e.issues and all(i.file == "in.yaml" for i in e.issues)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1]\n" + "".join(f"y{i}: *x\n" for i in range(MAX_ALIASES + 5)),
        "a: " + "[" * 70 + "]" * 70 + "\n",
        "a: 1\nb: 2\na: 3\n",
        "? [a]\n: b\n",
        "a: 2026-02-30\n",
        "a: x\x07y\n",
        "a: {\n",
    ],
    ids=["aliases", "depth", "duplicate-key", "list-as-key", "bad-date", "control-character", "syntax"],
)
def test_yaml_problems_are_reported_as_the_spec_loader_reports_them(text):
    (i,) = _err(text).issues
    with pytest.raises(SpecError) as ei:
        parse_spec("version: 1\n" + text)  # one line lower in the spec
    s = ei.value.issues[0]
    assert (s.message, s.line, s.column) == (i.message, i.line + 1, i.column)


def test_too_many_documents_stop_at_the_first_one_over_the_limit():
    from vigil.slo.openslo import MAX_DOCUMENTS

    e = _err("--- {}\n" * (MAX_DOCUMENTS + 1))
    (i,) = e.issues
    assert i.message == f"more than {MAX_DOCUMENTS} documents" and i.line == MAX_DOCUMENTS + 1
    assert e.hint == "split the file"
    e = _err("[" + ", ".join(["{a: 1}"] * (MAX_DOCUMENTS + 1)) + "]\n")  # one document holding a list of them
    assert e.issues[0].message == f"more than {MAX_DOCUMENTS} documents"


def test_a_null_budgeting_method_is_read_as_occurrences():
    # before: the SLO vanished from the import without a word (the Service alone was imported)
    service = {"apiVersion": "openslo/v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {}}
    doc = _doc("latency")
    doc["spec"]["budgetingMethod"] = None
    res = import_openslo(dump_documents([service, doc]))
    assert [s.name for s in res.spec.slos] == ["s1"] and res.spec.slos[0].sli.kind == "latency"
    assert any("budgetingMethod is missing" in str(w) for w in res.warnings)


def test_an_anchored_boolean_is_a_boolean():
    # before: ruamel's anchored `true` came out as 1: "expected true or false, got a number (1)"
    text = dump_documents([_doc("ratio")]).replace("counter: true", "counter: &yes true")
    assert import_openslo(text).spec.slos[0].sli.ratio is not None


def test_a_wrong_type_in_a_field_vigil_ignores_does_not_stop_the_import():
    doc = _doc("ratio")
    _obj(doc)["value"] = "not a number"  # a ratio SLO ignores op/value
    _obj(doc)["displayName"] = ["x"]
    res = import_openslo(dump_documents([doc]))
    assert any("spec.objectives[0].value: ignored" in str(w) for w in res.warnings)


def test_every_wrong_type_in_a_document_is_reported():
    doc = _doc("latency")
    doc["spec"]["service"] = 5
    doc["spec"]["timeWindow"] = [1, "x"]
    _obj(doc)["target"] = "high"
    doc["spec"]["indicator"]["spec"]["thresholdMetric"]["metricSource"]["type"] = ["Prometheus"]
    got = {(i.path, i.message) for i in _err(dump_documents([doc])).issues}
    assert got >= {
        ("spec.service", "expected a string, got a number (5)"),
        ("spec.timeWindow[0]", "expected a mapping, got a number (1)"),
        ("spec.timeWindow[1]", "expected a mapping, got a string ('x')"),
        ("spec.objectives[0].target", "expected a number, got a string ('high')"),
        ("spec.indicator.spec.thresholdMetric.metricSource.type", "expected a string, got a list"),
    }


def _model_problems(model, loc=()):
    """Fields of the wrong type and keys the models do not know, anywhere in a document model."""
    from vigil.slo.openslo import models

    out = [f"{loc}: {bad}" for loc, bad in models.invalid_fields(model, loc)]
    if isinstance(model, models.OpenSLOModel):
        dropped, unknown = model.keys_read()
        out += [f"{loc}.{k}: ignored by vigil" for k in dropped + unknown]
        for name in type(model).model_fields:
            out += _model_problems(getattr(model, name), loc + (name,))
    elif isinstance(model, list):
        for n, v in enumerate(model):
            out += _model_problems(v, loc + (n,))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs())
def test_exported_documents_are_what_the_models_read_key_for_key(spec):
    from vigil.slo.openslo import models

    for doc in export_spec(spec).documents:
        model = models.read_document(doc)
        assert type(model) is models.DOCUMENTS[doc["kind"]]
        assert _model_problems(model) == []
        assert models.dump(model) == doc


def test_the_models_keep_unknown_keys_and_mark_wrong_types():
    from vigil.slo.openslo import models

    m = models.read_document({"apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": "s", "displayName": "S"},
                              "spec": {"objectives": [{"target": "x", "zz": 1}], "extra": True}})  # fmt: skip
    assert m.metadata.keys_read() == (["displayName"], [])
    assert m.spec.keys_read() == ([], ["extra"])
    (obj,) = m.spec.objectives
    assert isinstance(obj.target, models.Invalid) and obj.keys_read() == ([], ["zz"])
    assert models.error_message(obj.target.errors[0]) == "expected a number, got a string ('x')"
    with pytest.raises(AssertionError, match="wrong type"):
        models.dump(m)


def test_the_import_result_has_a_name_of_its_own():
    import vigil.slo.openslo as openslo

    assert isinstance(import_openslo(dump_documents([_doc("ratio")])), openslo.OpenSloImport)
    assert not hasattr(openslo, "ImportResult")  # issue 7: one ImportResult in the code base is enough


def test_loading_openslo_loads_neither_the_root_spec_nor_a_yaml_library():
    code = (
        "import sys, vigil.slo.openslo; "
        "print(sorted(m for m in sys.modules if m == 'vigil.spec' or m.startswith(('ruamel', 'sqlalchemy', 'scipy'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_import_of_a_tag_exits_2_naming_the_line(cli, tmp_path):
    p = tmp_path / "in.yaml"
    p.write_text(_svc("!custom api"))
    r = cli("openslo", "import", p, "--out", tmp_path / "v.yaml")
    assert r.code == 2 and "Traceback" not in r.err
    assert f"{p}:7:12: YAML tag '!custom' is not allowed in an OpenSLO document" in r.err
    assert not (tmp_path / "v.yaml").exists()


@pytest.mark.parametrize("window", ["10000000000000000000000000000", "1e28", "100000000000000000000000000000m"])
def test_a_huge_time_slice_window_is_a_clear_error_not_a_crash(window):
    """A slice of 6e29 s: Decimal's modulo gave up (InvalidOperation: an internal error); now it is
    the import's clear error."""
    text = f"""\
apiVersion: openslo/v1
kind: SLO
metadata: {{name: s}}
spec:
  service: search
  indicator:
    metadata: {{name: staleness}}
    spec: {{thresholdMetric: {{metricSource: {{spec: {{query: 'index_staleness_seconds'}}}}}}}}
  timeWindow: [{{duration: 1d, isRolling: true}}]
  budgetingMethod: Timeslices
  objectives: [{{op: lte, value: 300, target: 0.99, timeSliceTarget: 1, timeSliceWindow: {window}}}]
"""
    with pytest.raises(OpenSLOError) as e:
        import_openslo(text)
    assert "timeSliceWindow" in str(e.value) or "slice" in str(e.value)
