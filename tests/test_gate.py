"""The deploy gate: freeze rules, scopes, overrides, the record, the CLI and exit codes."""

import json

import pytest
from helpers import per_minute, push, spec_with, t

from vigil.deploy.gate import decide, gate_deploy
from vigil.errors import NotFoundError, UsageError
from vigil.slo.evaluate import evaluate_slos
from vigil.spec import LoadedSpec
from vigil.telemetry.source import EmbeddedSource

SLOS = """\
  - name: api-availability
    service: api
    objective: 99.9
    window: {calendar: month, timezone: UTC}
    sli:
      ratio: {good: 'http_requests{service="api",code!~"5.."}', total: 'http_requests{service="api"}'}
  - name: checkout-success
    service: checkout
    objective: 99.5
    window: {rolling: 30d}
    sli:
      ratio: {good: 'checkout_attempts{outcome="success"}', total: checkout_attempts}
"""

POLICY = """\
policy:
  freeze:
    - name: half-budget-by-mid-window
      when: {budget_consumed_over: 50%, window_elapsed_at_least: 50%}
    - name: budget-exhausted
      when: {budget_exhausted: true}
  overrides: {labels: [security, p0]}
"""


def api_traffic(error_every: int, burst: int = 1):
    """100 API requests a minute; ``burst`` of them fail every ``error_every`` minutes."""

    def rows(ts, i):
        bad = burst if i % error_every == 0 else 0
        return [
            {"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "200"}, "inc": 100 - bad},
            {"ts": ts, "metric": "http_requests", "labels": {"service": "api", "code": "503"}, "inc": bad},
            {"ts": ts, "metric": "checkout_attempts", "labels": {"outcome": "success"}, "inc": 10},
        ]

    return rows


def statuses(store, spec, at):
    return evaluate_slos(spec.slos, EmbeddedSource(store), t(at))


def test_half_budget_by_mid_window_freezes_only_after_mid_window(store):
    spec = spec_with(SLOS, POLICY)
    # one bad request every 10 minutes out of 100/min: error ratio 0.1% -> burn rate 1
    # so consumed = elapsed fraction; at 60% elapsed consumed = 60% > 50% -> frozen
    push(store, spec, per_minute("2026-11-01T00:00:00Z", 18 * 1440, api_traffic(10)), "2026-11-19T00:00:00Z")
    early = decide(spec.policy, statuses(store, spec, "2026-11-10T00:00:00Z"), "api", t("2026-11-10T00:00:00Z"))
    assert early.allowed and not early.freezes  # 30% consumed at 30% elapsed
    late = decide(spec.policy, statuses(store, spec, "2026-11-19T00:00:00Z"), "api", t("2026-11-19T00:00:00Z"))
    assert not late.allowed
    (f,) = late.freezes
    assert (f.rule_name, f.slo, f.service) == ("half-budget-by-mid-window", "api-availability", "api")
    assert "consumed 60% of its budget with 60% of the window elapsed" in f.message
    # checkout is not affected by the api SLO (scope: service)
    other = decide(spec.policy, statuses(store, spec, "2026-11-19T00:00:00Z"), "checkout", t("2026-11-19T00:00:00Z"))
    assert other.allowed


def test_budget_exhausted_and_global_scope(store):
    policy = POLICY.replace("when: {budget_exhausted: true}", "when: {budget_exhausted: true}\n      scope: global")
    spec = spec_with(SLOS, policy)
    push(store, spec, per_minute("2026-11-01T00:00:00Z", 600, api_traffic(1, 50)), "2026-11-01T10:00:00Z")
    st = statuses(store, spec, "2026-11-01T10:00:00Z")
    d = decide(spec.policy, st, "checkout", t("2026-11-01T10:00:00Z"))
    assert not d.allowed
    assert [(f.rule_name, f.scope, f.slo) for f in d.freezes] == [("budget-exhausted", "global", "api-availability")]


def test_rule_restricted_to_services(store):
    policy = POLICY.replace("name: budget-exhausted", "name: budget-exhausted\n      services: [checkout]")
    spec = spec_with(SLOS, policy)
    push(store, spec, per_minute("2026-11-01T00:00:00Z", 600, api_traffic(1, 50)), "2026-11-01T10:00:00Z")
    d = decide(spec.policy, statuses(store, spec, "2026-11-01T10:00:00Z"), "api", t("2026-11-01T10:00:00Z"))
    assert d.allowed  # only checkout SLOs can trip it, and the mid-window rule needs 50% elapsed


def test_override_needs_an_allowed_label_and_a_reason(store):
    spec = spec_with(SLOS, POLICY)
    push(store, spec, per_minute("2026-11-01T00:00:00Z", 600, api_traffic(1, 50)), "2026-11-01T10:00:00Z")
    st = statuses(store, spec, "2026-11-01T10:00:00Z")
    at = t("2026-11-01T10:00:00Z")
    with pytest.raises(UsageError, match="needs a reason"):
        decide(spec.policy, st, "api", at, labels=["security"])
    d = decide(spec.policy, st, "api", at, labels=["feature"], reason="please")
    assert not d.allowed and any("not override labels" in r for r in d.reasons)
    d = decide(spec.policy, st, "api", at, labels=["feature", "p0"], reason="CVE-2026-1234 hotfix")
    assert d.allowed and d.overridden and d.override_label == "p0"
    assert d.freezes  # the freeze is still named


def test_no_data_never_freezes(store):
    spec = spec_with(SLOS, POLICY)
    d = decide(spec.policy, statuses(store, spec, "2026-11-20T00:00:00Z"), "api", t("2026-11-20T00:00:00Z"))
    assert d.allowed and d.warnings == ["SLO api-availability has no data; it cannot freeze a deploy"]


def test_every_decision_is_recorded_with_its_inputs(store):
    spec = spec_with(SLOS, POLICY)
    loaded = LoadedSpec(spec, None, "0" * 64)
    push(store, spec, per_minute("2026-11-01T00:00:00Z", 600, api_traffic(1, 50)), "2026-11-01T10:00:00Z")
    at = t("2026-11-01T10:00:00Z")
    d1 = gate_deploy(loaded, store, "api", at, decided_at=at)
    d2 = gate_deploy(loaded, store, "api", at, decided_at=at, labels=["security"], reason="patch", actor="alice")
    with pytest.raises(NotFoundError):
        gate_deploy(loaded, store, "nope", at, decided_at=at)
    rows = store.gate_decisions(service="api")
    assert [r["id"] for r in rows] == [d2.id, d1.id]
    assert rows[0]["overridden"] and rows[0]["reason"] == "patch" and rows[0]["actor"] == "alice"
    rec = json.loads(rows[1]["decision"])
    assert rec["allowed"] is False
    assert rec["slos"][0]["slo"] == "api-availability" and rec["slos"][0]["budget_consumed"] > 1


def test_release_verdicts_block_the_deploy_and_no_label_passes_a_block(store):
    from vigil.deploy.verdicts import latest_verdicts, record_verdict

    policy = POLICY.replace("overrides: {labels: [security, p0]}", "overrides: {labels: [security, p0]}\n  require_verdicts: [migration]")
    spec = spec_with(SLOS, policy)
    loaded = LoadedSpec(spec, None, "0" * 64)
    at = t("2026-11-20T00:00:00Z")
    from vigil.telemetry.push import Ingestor

    # a store holding telemetry (of another metric): its SLOs without data are new SLOs, not an empty store
    Ingestor(spec, store).push_body(b'{"ts": "2026-11-19T23:59:00Z", "metric": "queue_depth", "set": 1}\n', at)
    d = gate_deploy(loaded, store, "api", at, decided_at=at)
    assert not d.allowed and "pass --release" in d.blocks[0]
    d = gate_deploy(loaded, store, "api", at, decided_at=at, release="v2")
    assert not d.allowed and d.blocks == ["no migration verdict recorded for release 'v2' (the policy requires one)"]
    record_verdict(store, "migration", "api", "v2", "fail", "backward compatibility: SELECT name FROM users failed", {}, at)
    d = gate_deploy(loaded, store, "api", at, decided_at=at, release="v2", labels=["security"], reason="hotfix")
    assert not d.allowed
    assert "migration verdict for release 'v2' is fail" in d.blocks[0] and "SELECT name FROM users" in d.blocks[0]
    record_verdict(store, "migration", "api", "v2", "pass", "all checks passed", {}, at)
    record_verdict(store, "canary", "api", "v2", "marginal", "score 80", {}, at)
    d = gate_deploy(loaded, store, "api", at, decided_at=at, release="v2")
    assert not d.allowed and d.blocks == [d.blocks[0]] and "canary verdict for release 'v2' is marginal" in d.blocks[0]
    record_verdict(store, "canary", "api", "v2", "pass", "score 100", {}, at)
    d = gate_deploy(loaded, store, "api", at, decided_at=at, release="v2")
    assert d.allowed and d.blocks == [] and [v.kind for v in d.verdicts] == ["canary", "migration"]
    assert set(latest_verdicts(store, "api", "v2")) == {"canary", "migration"}
    assert latest_verdicts(store, "checkout", "v2") == {}
    dd = d.to_dict()
    assert dd["release"] == "v2" and dd["verdicts"][1]["verdict"] == "pass"
