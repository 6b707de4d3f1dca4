"""vigil cost import (issue 13): FOCUS and CUR 2.0 files (CSV, gzip, Parquet) and Cost Explorer into
the store, exact sums, bad rows named by line, re-imports that replace and never add.

Files are generated from the FOCUS columns and AWS's CUR 2.0 columns (vigil.simulate.costs, and the
hand-written files under tests/data/cost/). Cost Explorer runs on moto: moto does not compute costs,
it answers GetCostAndUsage from a queue of results the test configures (its documented API), so the
test checks the requests vigil makes and how it reads the answers, not AWS's arithmetic.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from helpers import t
from vigil.finops.importer import CostInputError, import_files
from vigil.finops.rows import transfer_class
from vigil.finops.spec import CostsSpec
from vigil.finops.tables import cost_daily
from vigil.simulate.costs import Spike, items, write_csv
from vigil.store import open_store

DATA = Path(__file__).parent / "data" / "cost"
SPEC = """\
version: 1
services: {api: {}, checkout: {}, search: {}, pages: {}}
costs: {}
"""
NOW = t("2026-11-05T12:00:00Z")


def month(path: Path, kind: str = "focus", *, start: date = date(2026, 10, 1), days: int = 31, seed: int = 1, spikes=()) -> Decimal:
    """Write a synthetic month and return its BilledCost total, summed here independently."""
    with open(path, "w", newline="") as f:
        write_csv(f, kind, items(start, days, seed=seed, spikes=spikes))
    return sum((it.billed for it in items(start, days, seed=seed, spikes=spikes)), Decimal(0))


def stored_total(store, col: str = "billed_nano", **where) -> Decimal:
    q = sa.select(sa.func.coalesce(sa.func.sum(cost_daily.c[col]), 0))
    for k, v in where.items():
        q = q.where(cost_daily.c[k] == v)
    with store.engine.connect() as c:
        return Decimal(int(c.execute(q).scalar())).scaleb(-9)


def count_rows(store) -> int:
    with store.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(cost_daily)).scalar())


COSTS = CostsSpec()


def test_focus_month_is_stored_exactly_and_a_reimport_replaces(store, tmp_path):
    p = tmp_path / "oct.csv"
    total = month(p)
    out = import_files(store, [p], COSTS, at=NOW)
    assert out.stored and out.rows_rejected == 0
    assert stored_total(store) == total.quantize(Decimal("1e-9"))
    n = count_rows(store)
    again = import_files(store, [p], COSTS, at=NOW)
    assert stored_total(store) == total.quantize(Decimal("1e-9")), "a re-import added instead of replacing"
    assert count_rows(store) == n
    assert again.rows_replaced == n and again.scopes[0]["replaced_import"] == out.import_id


def test_a_corrected_month_replaces_the_first_and_other_months_stay(store, tmp_path):
    sep, oct1, oct2 = tmp_path / "sep.csv", tmp_path / "oct1.csv", tmp_path / "oct2.csv"
    t_sep = month(sep, start=date(2026, 9, 1), days=30, seed=3)
    month(oct1, seed=1)
    t_oct2 = month(oct2, seed=2)  # the provider restated October
    for p in (sep, oct1, oct2):
        import_files(store, [p], COSTS, at=NOW)
    assert stored_total(store) == (t_sep + t_oct2).quantize(Decimal("1e-9"))


def test_cur2_and_focus_of_the_same_usage_store_the_same_costs(tmp_path):
    a = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    b = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    total = month(tmp_path / "f.csv", "focus")
    month(tmp_path / "c.csv", "cur2")
    import_files(a, [tmp_path / "f.csv"], COSTS, at=NOW)
    out = import_files(b, [tmp_path / "c.csv"], COSTS, at=NOW)
    assert out.kind == "cur2"
    for col in ("billed_nano", "effective_nano"):
        assert stored_total(a, col) == stored_total(b, col)
    assert stored_total(b) == total.quantize(Decimal("1e-9"))
    # tags: CUR's user_ keys are the env and service tags
    assert stored_total(b, env="prod", service="api") == stored_total(a, env="prod", service="api") > 0
    a.close()
    b.close()


def test_gzip_and_parquet_read_as_the_csv(store, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pqm

    p = tmp_path / "oct.csv"
    total = month(p)
    gz = tmp_path / "oct.csv.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    with open(p, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    cols = {h: [r[i] for r in body] for i, h in enumerate(header)}
    # Parquet as a FOCUS export writes it: numbers as doubles, times as timestamps, Tags as a map
    table = pa.table({
        **{h: v for h, v in cols.items() if h not in ("BilledCost", "EffectiveCost", "ListCost", "ChargePeriodStart", "Tags")},
        "BilledCost": pa.array([float(x) for x in cols["BilledCost"]]),
        "EffectiveCost": pa.array([float(x) for x in cols["EffectiveCost"]]),
        "ListCost": pa.array([float(x) for x in cols["ListCost"]]),
        "ChargePeriodStart": pa.array([__import__("datetime").datetime.fromisoformat(x.replace("Z", "+00:00")) for x in cols["ChargePeriodStart"]],
                                      type=pa.timestamp("us", tz="UTC")),
        "Tags": pa.array([list(json.loads(x).items()) for x in cols["Tags"]], type=pa.map_(pa.string(), pa.string())),
    })
    pqm.write_table(table, tmp_path / "oct.parquet")
    import_files(store, [gz], COSTS, at=NOW)
    assert stored_total(store) == total.quantize(Decimal("1e-9"))
    by_tag = stored_total(store, env="prod", service="api")
    import_files(store, [tmp_path / "oct.parquet"], COSTS, at=NOW)  # the same scope: replaces
    # doubles carry 10 decimals of each cost here; the sum agrees to the cent
    assert abs(stored_total(store) - total) < Decimal("0.01")
    assert abs(stored_total(store, env="prod", service="api") - by_tag) < Decimal("0.01")


def test_bad_rows_are_named_by_line_and_nothing_is_stored(store):
    with pytest.raises(CostInputError) as ei:
        import_files(store, [DATA / "focus-bad-rows.csv"], COSTS, at=NOW)
    err = ei.value
    assert err.rejected == 5
    lines = {r.line: r.error for r in err.rejections}
    assert sorted(lines) == [3, 4, 6, 7, 8]
    assert "BilledCost" in lines[3] and "not a number" in lines[3]
    assert "ChargePeriodStart" in lines[4]
    assert "Tags" in lines[6]
    assert "EUR" in lines[7] and "USD" in lines[7]
    assert "ChargeCategory" in lines[8]
    assert count_rows(store) == 0, "a file with bad rows stored something"


def test_skip_bad_stores_the_valid_rows_credits_included_and_maps_tag_spellings(store):
    out = import_files(store, [DATA / "focus-bad-rows.csv"], COSTS, at=NOW, skip_bad=True)
    assert out.rows_rejected == 5 and out.rows_read == 8
    assert stored_total(store) == Decimal("14.75")  # 12.50 - 5.00 (a credit) + 7.25
    assert stored_total(store, env="prod", service="api") == Decimal("7.50")
    # {"Environment": "Production", "App": "pages"}: key case ignored, the value mapped to prod
    assert stored_total(store, env="prod", service="pages") == Decimal("7.25")


def test_cur2_billed_is_net_unblended_and_effective_is_amortized(store):
    out = import_files(store, [DATA / "cur2-commitments.csv"], COSTS, at=NOW)
    assert out.rows_rejected == 0
    assert stored_total(store) == Decimal("498.58")
    assert stored_total(store, "effective_nano") == Decimal("-0.05")
    # the RI's upfront fee is billed but not effective (amortized by the usage lines): no spike on its day
    assert stored_total(store, "effective_nano", day="2026-10-01") == 0
    assert stored_total(store, day="2026-10-01") == Decimal(500)
    assert stored_total(store, charge_category="Credit") == Decimal("-3.00")  # a refund


def test_missing_tags_are_counted_as_untagged(store, tmp_path):
    p = tmp_path / "oct.csv"
    month(p)
    out = import_files(store, [p], COSTS, at=NOW)
    untagged = stored_total(store, env="") + stored_total(store, env="prod", service="")  # no tag at all, or no service
    assert out.untagged_rows > 0
    assert out.untagged_billed == untagged
    assert any("lack an env or service tag" in w for w in out.warnings)


@pytest.mark.parametrize(
    "text, message",
    [
        (b"", "empty"),
        (b"a,b,c\n1,2,3\n", "neither FOCUS nor CUR"),
        (b"BilledCost,ChargePeriodStart\n1,2026-10-01\n", "lacks the columns"),
        (b"BilledCost,EffectiveCost,ChargePeriodStart,ChargeCategory,BillingCurrency,BillingPeriodStart,ServiceName\n"
         b'1,1,2026-10-01,Usage,USD,2026-10-01,"S3\n', "malformed CSV"),
        (b"\xff\xfe\x00garbage", "UTF-8"),
    ],
)
def test_unreadable_files_are_clear_errors(store, tmp_path, text, message):
    p = tmp_path / "x.csv"
    p.write_bytes(text)
    with pytest.raises(CostInputError) as ei:
        import_files(store, [p], COSTS, at=NOW)
    assert message in ei.value.message + (ei.value.hint or "")
    assert count_rows(store) == 0


def test_a_truncated_parquet_file_is_an_error_and_stores_nothing(store, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pqm

    p = tmp_path / "x.parquet"
    pqm.write_table(pa.table({"BilledCost": [1.0], "ChargePeriodStart": ["2026-10-01"]}), p)
    p.write_bytes(p.read_bytes()[:-20] + b"PAR1")
    with pytest.raises(CostInputError):
        import_files(store, [p], COSTS, at=NOW)
    assert count_rows(store) == 0


def test_cli_import_reports_lines_and_exits_2(cli, tmp_path):
    (tmp_path / "vigil.yaml").write_text(SPEC)
    spec = str(tmp_path / "vigil.yaml")
    r = cli("cost", "import", str(DATA / "focus-bad-rows.csv"), "--spec", spec)
    assert r.code == 2
    assert "line 3: BilledCost" in r.err and "nothing was stored" in r.err
    r = cli("cost", "import", str(DATA / "focus-bad-rows.csv"), "--spec", spec, "--skip-bad", "--json")
    assert r.code == 2
    d = r.json()
    assert d["stored"] and d["rows_rejected"] == 5 and d["errors"][0] == {"line": 3, "error": d["errors"][0]["error"]}
    r = cli("cost", "imports", "--spec", spec, "--json")
    assert r.code == 0 and r.json()["imports"][0]["rows_rejected"] == 5
    r = cli("cost", "import", str(tmp_path / "nope.csv"), "--spec", spec)
    assert r.code == 2 and "no such file" in r.err


def test_cli_import_without_a_costs_section_is_a_usage_error(cli, tmp_path):
    (tmp_path / "vigil.yaml").write_text("version: 1\nservices: {api: {}}\n")
    r = cli("cost", "import", str(DATA / "focus-bad-rows.csv"), "--spec", str(tmp_path / "vigil.yaml"))
    assert r.code == 2 and "costs:" in r.err
    assert not (tmp_path / ".vigil" / "vigil.db").exists(), "a refused import created the store"


def test_simulate_writes_importable_months(cli, tmp_path):
    (tmp_path / "vigil.yaml").write_text(SPEC)
    out = tmp_path / "sep.csv"
    r = cli("simulate", "--costs", "cur2", "--from", "2026-09-01", "--to", "2026-10-01", "--out", str(out), "--cost-spike", "2026-09-14:prod:api:5")
    assert r.code == 0, r.err
    r = cli("cost", "import", str(out), "--spec", str(tmp_path / "vigil.yaml"), "--json")
    assert r.code == 0 and r.json()["rows_rejected"] == 0
    r = cli("simulate", "--costs", "focus", "--from", "2026-09-01")
    assert r.code == 2 and "--to" in r.err
    r = cli("simulate", "--costs", "focus", "--from", "2026-09-01", "--to", "2026-09-02", "--cost-spike", "bad")
    assert r.code == 2 and "DAY:ENV:SERVICE:FACTOR" in r.err


def test_concurrent_imports_of_one_period_on_postgresql_leave_one_copy(pg_db_url, tmp_path):
    s = open_store(pg_db_url)
    p1, p2 = tmp_path / "a.csv", tmp_path / "b.csv"
    month(p1, seed=1)
    t2 = month(p2, seed=2)
    month(p1, seed=1)
    errors: list[BaseException] = []

    def run(p: Path) -> None:
        st = open_store(pg_db_url)
        try:
            for _ in range(3):
                import_files(st, [p], COSTS, at=NOW)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
        finally:
            st.close()

    threads = [threading.Thread(target=run, args=(p,)) for p in (p1, p2, p1, p2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(240)
    assert not any(th.is_alive() for th in threads), "an import did not finish"
    assert not errors, errors
    # whichever import committed last, the period holds exactly one file's rows
    total = stored_total(s)
    t1 = sum((it.billed for it in items(date(2026, 10, 1), 31, seed=1)), Decimal(0))
    assert total in (t1.quantize(Decimal("1e-9")), t2.quantize(Decimal("1e-9")))
    import_files(s, [p2], COSTS, at=NOW)
    assert stored_total(s) == t2.quantize(Decimal("1e-9"))
    s.close()


def test_transfer_classes():
    assert transfer_class("Amazon CloudFront", "EU-DataTransfer-Out-Bytes") == "edge"
    assert transfer_class("AWS Data Transfer", "EUW1-EUC1-AWS-Out-Bytes") == "inter-region"
    assert transfer_class("AWS Data Transfer", "EUW1-DataTransfer-Out-Bytes") == "internet"
    assert transfer_class("Amazon EC2", "EUW1-DataTransfer-Regional-Bytes") == "intra-region"
    assert transfer_class("AWS Lambda", "EUW1-Request") is None


# -- Cost Explorer (moto) -------------------------------------------------------------------------


def _ce_result(day: str, groups: list[tuple[str, str, str]], estimated: bool = False) -> dict:
    return {
        "ResultsByTime": [{
            "TimePeriod": {"Start": day, "End": day},
            "Total": {},
            "Groups": [
                {"Keys": [f"service${svc}", sname], "Metrics": {
                    "UnblendedCost": {"Amount": amt, "Unit": "USD"}, "NetUnblendedCost": {"Amount": amt, "Unit": "USD"},
                    "AmortizedCost": {"Amount": amt, "Unit": "USD"}, "UsageQuantity": {"Amount": "1", "Unit": "N/A"}}}
                for svc, sname, amt in groups
            ],
            "Estimated": estimated,
        }],
        "DimensionValueAttributes": [],
    }


def test_cost_explorer_import_through_moto(monkeypatch, store):
    import boto3
    import requests

    from aws_helpers import inject, moto_account
    from vigil.dr.aws.client import Aws
    from vigil.finops.costexplorer import fetch
    from vigil.finops.importer import ReadResult, store_rollup

    with moto_account(monkeypatch, "us-east-1"):
        results = [
            _ce_result("2026-10-01", [("api", "AWS Lambda", "10.5"), ("", "Amazon S3", "2.25")]),  # prod
            _ce_result("2026-10-01", [("api", "AWS Lambda", "1.5")]),  # stage
            _ce_result("2026-10-01", []),  # dev
            _ce_result("2026-10-01", [("", "Tax", "3.00")], estimated=True),  # no env tag
        ]
        r = requests.post("http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results", json={"results": results})
        assert r.status_code == 201
        client = boto3.client("ce", region_name="us-east-1")
        seen = inject(client, "GetCostAndUsage", ["ThrottlingException"])
        ce = Aws(client, sleep=lambda s: None)
        res = fetch(ce, "111122223333", date(2026, 10, 1), date(2026, 10, 2), COSTS)
        assert seen == ["ThrottlingException"]  # retried, not failed
        assert res.queries == 4 and res.estimated_days == ["2026-10-01"]
        out = store_rollup(store, ReadResult(res.rollup, [], "cost-explorer"), at=NOW, actor=None)
        assert out.stored
        assert stored_total(store) == Decimal("17.25")
        assert stored_total(store, env="prod", service="api") == Decimal("10.5")
        assert stored_total(store, env="stage") == Decimal("1.5")
        assert stored_total(store, env="") == Decimal("3.00")
        # the same day again replaces it
        store_rollup(store, ReadResult(res.rollup, [], "cost-explorer"), at=NOW, actor=None)
        assert stored_total(store) == Decimal("17.25")


def test_cost_explorer_access_denied_is_an_external_error(monkeypatch):
    import boto3

    from aws_helpers import inject, moto_account
    from vigil.dr.aws.client import Aws, AwsError
    from vigil.finops.costexplorer import fetch

    with moto_account(monkeypatch, "us-east-1"):
        client = boto3.client("ce", region_name="us-east-1")
        inject(client, "GetCostAndUsage", ["AccessDeniedException"], status=403)
        with pytest.raises(AwsError) as ei:
            fetch(Aws(client, sleep=lambda s: None), "1", date(2026, 10, 1), date(2026, 10, 2), COSTS)
        assert ei.value.exit_code == 3


def test_generated_rows_follow_the_spike():
    base = {(it.day, it.usage.usage_type): it.quantity for it in items(date(2026, 10, 1), 3, seed=5) if it.usage.env == "prod" and it.usage.service == "api"}
    spiked = {(it.day, it.usage.usage_type): it.quantity for it in items(date(2026, 10, 1), 3, seed=5, spikes=[Spike(date(2026, 10, 2), "prod", "api", 4)])
              if it.usage.env == "prod" and it.usage.service == "api"}
    for k, q in base.items():
        if k[0] == date(2026, 10, 2):
            assert float(spiked[k]) == pytest.approx(float(q) * 4, rel=1e-5)
        else:
            assert spiked[k] == q


_ = io


def test_a_sql_export_with_null_literals_reads_as_nulls(store):
    """The FOCUS sample data is a SQL export: unquoted NULL for an empty value (ListCost, RegionId, Tags)."""
    costs = CostsSpec(tags={"service": ["application"]})
    out = import_files(store, [DATA / "focus-sql-export.csv"], costs, at=NOW)
    assert out.rows_rejected == 0 and out.rows_read == 3
    assert stored_total(store) == Decimal("1.2500008")
    assert stored_total(store, env="prod", service="Shop") == Decimal("1.5")
    assert stored_total(store, env="dev", charge_category="Adjustment") == Decimal("-0.25")
    assert stored_total(store, "list_nano") == Decimal("1.6")
    assert out.untagged_rows == 2
