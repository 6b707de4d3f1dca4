from conftest import ndjson


def test_push_then_status_then_gate(cli, contract_spec, tmp_path):
    rows = []
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
    r = cli("gate", "deploy", "--service", "checkout", "--spec", contract_spec, "--json", "--at", "2026-11-20T12:00:00Z")
    assert r.code == 1, r.out
    assert r.json()["allowed"] is False
