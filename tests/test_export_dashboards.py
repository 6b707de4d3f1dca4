"""``vigil export grafana`` and ``vigil export cloudwatch-dashboard``: the shapes checked against the
documented schemas (Grafana's classic dashboard JSON model; CloudWatch's "Dashboard Body Structure
and Syntax"), every PromQL expression parsed by the real promtool, and the CloudWatch body accepted
by PutDashboard (boto3 against moto)."""

from __future__ import annotations

import json
import shutil
import subprocess

import jsonschema

from conftest import EXAMPLE_SPEC

GRAFANA_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "panels", "schemaVersion", "time", "templating", "tags", "timezone", "editable", "version"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "timezone": {"enum": ["browser", "utc", ""]},
        "editable": {"type": "boolean"},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "version": {"type": "integer"},
        "refresh": {"type": "string"},
        "time": {"type": "object", "required": ["from", "to"], "properties": {"from": {"type": "string"}, "to": {"type": "string"}}},
        "templating": {"type": "object", "required": ["list"], "properties": {"list": {"type": "array", "items": {
            "type": "object", "required": ["name", "type"], "properties": {"type": {"enum": ["datasource", "query", "custom", "constant", "interval", "textbox"]}}}}}},
        "annotations": {"type": "object", "required": ["list"]},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["id", "type", "title", "gridPos", "datasource", "targets", "fieldConfig"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "type": {"enum": ["timeseries", "stat", "gauge", "table", "text"]},
                "gridPos": {"type": "object", "required": ["h", "w", "x", "y"], "properties": {
                    "h": {"type": "integer", "minimum": 1}, "w": {"type": "integer", "minimum": 1, "maximum": 24},
                    "x": {"type": "integer", "minimum": 0, "maximum": 23}, "y": {"type": "integer", "minimum": 0}}},
                "datasource": {"type": "object", "required": ["type", "uid"], "properties": {"type": {"const": "prometheus"}}},
                "targets": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["refId", "expr"], "properties": {
                    "refId": {"type": "string", "pattern": "^[A-Z]$"}, "expr": {"type": "string", "minLength": 1}}}},
                "fieldConfig": {"type": "object", "required": ["defaults", "overrides"], "properties": {"defaults": {"type": "object", "required": ["unit"]}}},
            },
        }},
    },
}

_METRIC_ROW = {
    "type": "array", "minItems": 1,
    "oneOf": [
        {"prefixItems": [{"type": "object", "required": ["expression", "id"], "properties": {
            "expression": {"type": "string"}, "id": {"type": "string", "pattern": "^[a-z][a-zA-Z0-9_]*$"}, "label": {"type": "string"}}}],
         "maxItems": 1},
        {"prefixItems": [{"type": "string", "minLength": 1}, {"type": "string", "minLength": 1}], "minItems": 2,
         "items": {"anyOf": [{"type": "string"}, {"type": "object"}]}},
    ],
}
CLOUDWATCH_SCHEMA = {
    "type": "object",
    "required": ["widgets"],
    "properties": {"widgets": {"type": "array", "maxItems": 500, "items": {
        "type": "object",
        "required": ["type", "properties"],
        "properties": {
            "type": {"enum": ["metric", "text", "log", "alarm", "explorer"]},
            "x": {"type": "integer", "minimum": 0, "maximum": 23}, "y": {"type": "integer", "minimum": 0},
            "width": {"type": "integer", "minimum": 1, "maximum": 24}, "height": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        "allOf": [{"if": {"properties": {"type": {"const": "metric"}}}, "then": {"properties": {"properties": {
            "type": "object", "required": ["metrics", "region", "view", "period"],
            "properties": {
                "metrics": {"type": "array", "minItems": 1, "items": _METRIC_ROW},
                "region": {"type": "string"}, "view": {"enum": ["timeSeries", "singleValue", "gauge", "bar", "pie"]},
                "period": {"type": "integer", "multipleOf": 60}, "stat": {"type": "string"},
                "annotations": {"type": "object", "properties": {"horizontal": {"type": "array", "items": {
                    "type": "object", "required": ["value"], "properties": {"value": {"type": "number"}, "label": {"type": "string"}}}}}},
            }}}}},
            {"if": {"properties": {"type": {"const": "text"}}}, "then": {"properties": {"properties": {"type": "object", "required": ["markdown"]}}}}],
    }}},
}


def test_grafana_export_matches_the_dashboard_json_model(cli, tmp_path):
    r = cli("export", "grafana", "--spec", EXAMPLE_SPEC)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    boards = doc["dashboards"]
    assert [b["uid"] for b in boards] == ["vigil-api", "vigil-jobs", "vigil-search", "vigil-slos"]
    for b in boards:
        jsonschema.validate(b, GRAFANA_SCHEMA)
        ids = [p["id"] for p in b["panels"]]
        assert len(ids) == len(set(ids))
        for p in b["panels"]:
            assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs))
    api = boards[0]["panels"]
    assert api[0]["targets"][1]["expr"] == (
        'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{service="api"}[$__rate_interval])))')
    assert api[1]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    assert "freshness" in " ".join(json.loads(cli("export", "grafana", "--json", "--spec", EXAMPLE_SPEC).out)["notes"])
    # one dashboard alone is its JSON model, ready for Grafana's import
    one = json.loads(cli("export", "grafana", "--dashboard", "jobs", "--counter-suffix", "_total", "--spec", EXAMPLE_SPEC).out)
    jsonschema.validate(one, GRAFANA_SCHEMA)
    assert 'rate(email_failures_total{reason="bounce"}[$__rate_interval])' in one["panels"][2]["targets"][0]["expr"]


def test_every_grafana_expression_is_promql_promtool_accepts(cli, tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/system-deps.sh (Debian's prometheus)"
    boards = json.loads(cli("export", "grafana", "--spec", EXAMPLE_SPEC).out)["dashboards"]
    rules = []
    for b in boards:
        for p in b["panels"]:
            for t in p["targets"]:
                expr = t["expr"].replace("$__rate_interval", "5m").replace("$__interval", "1m")
                rules.append({"record": f"vigil:check:{len(rules)}", "expr": expr})
    assert len(rules) > 20
    f = tmp_path / "rules.yml"
    f.write_text(json.dumps({"groups": [{"name": "grafana-export", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    # the check is real: a broken expression is refused
    f.write_text(json.dumps({"groups": [{"name": "x", "rules": [{"record": "a:b", "expr": "sum(rate(x[5m])"}]}]}))
    assert subprocess.run([promtool, "check", "rules", str(f)], capture_output=True, timeout=60).returncode != 0


def test_cloudwatch_dashboard_body_matches_the_documented_structure(cli, tmp_path):
    out = tmp_path / "body.json"
    r = cli("export", "cloudwatch-dashboard", "--spec", EXAMPLE_SPEC, "--namespace", "platform", "-o", out)
    assert r.code == 0, r.err
    body = json.loads(out.read_text())
    jsonschema.validate(body, CLOUDWATCH_SCHEMA)
    metric_widgets = [w for w in body["widgets"] if w["type"] == "metric"]
    assert len(metric_widgets) == 10  # 11 panels; the 5xx share needs a regex matcher CloudWatch cannot express
    assert "code=~" in r.err and "left out" in r.err
    for w in metric_widgets:
        assert w["x"] + w["width"] <= 24
        rows = w["properties"]["metrics"]
        ids = [x.get("id") for row in rows for x in row if isinstance(x, dict) and x.get("id")]
        assert len(ids) == len(set(ids))
        for row in rows:
            if isinstance(row[0], dict):  # an expression names only ids defined in the widget
                for ref in __import__("re").findall(r"\bm\d+[ab]?\b", row[0]["expression"]):
                    assert ref in ids, (row, ids)
            else:
                assert row[0] == "platform" and len([x for x in row if isinstance(x, str)]) % 2 == 0
    throttles = next(w for w in metric_widgets if w["properties"]["title"] == "Lambda throttles")["properties"]["metrics"]
    assert throttles == [["platform", "lambda_throttles", "service", "api", {"id": "m0", "stat": "Sum", "visible": False}],
                         [{"expression": "m0/PERIOD(m0)", "label": "throttles/s", "id": "e0"}]]
    j = json.loads(cli("export", "cloudwatch-dashboard", "--json", "--spec", EXAMPLE_SPEC).out)
    assert j["kind"] == "cloudwatch-dashboard" and j["document"]["widgets"] and j["notes"]


def test_cloudwatch_accepts_the_body(cli, tmp_path):
    import boto3
    from moto import mock_aws

    body = cli("export", "cloudwatch-dashboard", "--spec", EXAMPLE_SPEC).out
    with mock_aws():
        cw = boto3.client("cloudwatch", region_name="eu-west-1")
        res = cw.put_dashboard(DashboardName="vigil-platform", DashboardBody=body)
        assert res["DashboardValidationMessages"] == []
        assert json.loads(cw.get_dashboard(DashboardName="vigil-platform")["DashboardBody"]) == json.loads(body)


def test_export_errors_are_usage_errors(cli, tmp_path):
    r = cli("export", "grafana", "--dashboard", "nope", "--spec", EXAMPLE_SPEC)
    assert r.code == 2 and "no dashboard 'nope'" in r.err
    r = cli("export", "grafana", "--counter-suffix", "a b", "--spec", EXAMPLE_SPEC)
    assert r.code == 2
    r = cli("export", "cloudwatch-dashboard", "--region", "mars", "--spec", EXAMPLE_SPEC)
    assert r.code == 2 and "region" in r.err
    r = cli("export", "grafana", "--spec", EXAMPLE_SPEC, "-o", tmp_path / "missing" / "x.json")
    assert r.code == 2 and "cannot write" in r.err and not (tmp_path / "missing").exists()
