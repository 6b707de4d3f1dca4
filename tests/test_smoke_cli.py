from conftest import ndjson


def test_push_then_status_then_gate(cli, contract_spec, tmp_path):
    # the exporter has reported since the month began (a zero at 00:00), so the month counts from
    # its start: 65% elapsed, and an hour at 10% errors against 99.5% exhausts the budget
    rows = [{"ts": "2026-11-01T00:00:00Z", "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 0}]
    for m in range(60):
        ts = f"2026-11-20T11:{m:02d}:00Z"
        rows.append({"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 90})
        rows.append({"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "error"}, "inc": 10})
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson(rows))
    r = cli("push", f, "--spec", contract_spec, now="2026-11-20T12:00:00Z")
    assert r.code == 0, r.err
    r = cli("slo", "status", "--spec", contract_spec, "--json", "--at", "2026-11-20T12:00:00Z")
    assert r.code == 0, r.err
    d = {s["name"]: s for s in r.json()["slos"]}
    assert d["checkout-success"]["good"] == 5400
    assert d["checkout-success"]["valid"] == 6000
    assert d["checkout-success"]["coverage"]["from"] == "window"
    r = cli("gate", "deploy", "--service", "checkout", "--spec", contract_spec, "--json", "--what-if", "--at", "2026-11-20T12:00:00Z")
    assert r.code == 1, r.out
    assert r.json()["allowed"] is False


def test_status_table_is_readable(cli, contract_spec, tmp_path):
    rows = [
        {"ts": f"2026-11-20T11:{m:02d}:00Z", "metric": "checkout_attempts", "labels": {"outcome": o}, "inc": n}
        for m in range(60)
        for o, n in (("success", 999), ("error", 1))
    ]
    f = tmp_path / "t.ndjson"
    f.write_bytes(ndjson(rows))
    assert cli("push", f, "--spec", contract_spec, now="2026-11-20T12:00:00Z").code == 0
    r = cli("slo", "status", "--spec", contract_spec, "--at", "2026-11-20T12:00:00Z")
    assert r.code == 0
    assert "SLO status at 2026-11-20T12:00:00Z" in r.out
    line = next(x for x in r.out.splitlines() if "checkout-success" in x)
    # 0.1% errors against 99.5%: burn 0.2. The month counts from the first sample (11:00), so
    # 60 of 43,200 minutes are elapsed (0.1%*, footnoted) and 0.2 * 60/43200 = 0.03% is used;
    # 99.97% left at burn 0.2 lasts 0.99972 * 30d / 0.2 = 149d 23h
    assert "99.900%" in line and " 0.0% " in line and "100.0%" in line and "0.1%*" in line and "149d 23h" in line and "ok" in line
    assert "* checkout-success: counted from its first sample, 2026-11-20T11:00:00Z" in r.out
    assert "no_data" in next(x for x in r.out.splitlines() if "api-latency" in x)
    r = cli("slo", "status", "--spec", contract_spec, "--service", "nope")
    assert r.code == 2 and "unknown service 'nope'" in r.err
    r = cli("slo", "status", "--spec", contract_spec, "--slo", "api-latency", "--json", "--at", "2026-11-20T12:00:00Z")
    assert [s["name"] for s in r.json()["slos"]] == ["api-latency"]


def test_check_reports_every_problem_with_lines(cli, tmp_path):
    bad = tmp_path / "vigil.yaml"
    bad.write_text("version: 1\nservices: {api: {}}\nslos:\n  - name: x\n    service: api\n    objective: 100\n    window: {rolling: 30d}\n    sli: {ratio: {good: 'a{b=>\"c\"}', total: a}}\n")
    r = cli("check", bad)
    assert r.code == 2
    assert f"{bad}:6:16: slos[0].objective:" in r.err and "no error budget" in r.err
    assert f"{bad}:8:" in r.err and "slos[0].sli.ratio.good: unknown label matcher '=>'" in r.err
    r = cli("check", bad, "--json")
    assert r.code == 2 and r.json()["valid"] is False and len(r.json()["issues"]) == 2
    r = cli("check", tmp_path / "missing.yaml")
    assert r.code == 2
