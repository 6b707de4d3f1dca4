"""The plan's end-to-end tracing test, as a test (issue 10): a web request through a GraphQL API
process through a function process to a real PostgreSQL query arrives in vigil as ONE connected
trace -- one trace id, every parent present -- with three real processes on loopback exporting over
OTLP/HTTP to a live ``vigil serve``; and ``vigil trace check --service-path web,api,fn,db`` says so,
or exits 1 naming the hop that is missing when a hop does not propagate the context."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from ingest_helpers import TOKEN, Serve, wait_for
from pgcluster import free_port

HERE = Path(__file__).resolve().parent
SPEC = """\
version: 1
services: {web: {}, api: {}, fn: {}}
slos:
  - name: api-availability
    service: api
    objective: 99.9
    window: {rolling: 30d}
    sli:
      ratio:
        good: 'span_requests{service="api",error="false"}'
        total: 'span_requests{service="api"}'
"""


class App:
    def __init__(self, role: str, vigil_url: str, **kw: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, str(HERE / "tracing_app.py"), role, "--port", str(self.port), "--vigil", vigil_url]
        for k, v in kw.items():
            args += [f"--{k}", v]
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(VIGIL_TOKEN=TOKEN, OTEL_BSP_SCHEDULE_DELAY="100", PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), str(HERE)]))
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"{role} exited: {self.proc.stderr.read().decode()[-3000:]}")  # type: ignore[union-attr]
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, f"the {role} process to answer", timeout=60, every=0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


def check(cli, db: str, *extra: str):
    return cli("trace", "check", "--service-path", "web,api,fn,db", "--db", db, "--since", "15m", "--json", *extra)


@pytest.mark.postgres
def test_web_graphql_function_postgres_is_one_connected_trace(tmp_path, pg_db_url, cli):
    with psycopg.connect(pg_db_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        c.execute("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        c.execute("INSERT INTO items VALUES (1, 'espresso machine'), (2, 'grinder')")
    spec = tmp_path / "vigil.yaml"
    spec.write_text(SPEC)
    db = f"sqlite:///{tmp_path / 'state.db'}"
    apps: list[App] = []
    with Serve(spec, db) as vigil:
        try:
            fn = App("fn", vigil.url, pg=pg_db_url.replace("postgresql+psycopg://", "postgresql://"))
            apps.append(fn)
            api = App("api", vigil.url, next=fn.url)
            apps.append(api)
            web = App("web", vigil.url, next=api.url)
            apps.append(web)

            r = httpx.get(web.url + "/items/2", timeout=30)
            assert r.status_code == 200 and r.json() == {"data": {"item": {"id": 2, "name": "grinder"}}}

            def arrived() -> bool:
                return check(cli, db).code == 0

            wait_for(arrived, "the trace of web -> api -> fn -> db to arrive in vigil", timeout=60, every=0.2)
            res = check(cli, db)
            d = json.loads(res.out)
            assert d["ok"] and d["traces_checked"] == 1 and d["traces_passed"] == 1, json.dumps(d, indent=1)[:3000]
            t = d["traces"][0]
            assert t["connected"] and t["missing_parents"] == []
            assert [c["service"] for c in t["chain"]] == ["web", "api", "fn", "fn"]
            assert t["chain"][3]["kind"] == "client" and t["chain"][3]["name"].startswith("SELECT")

            # the whole trace: one trace id, every parent present, the hops in order
            tree = httpx.get(vigil.url + f"/api/v1/traces/{t['trace_id']}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30).json()
            assert tree["connected"] and tree["services"] == ["api", "fn", "web"] and len(tree["roots"]) == 1
            by_id = {s["span_id"]: s for s in tree["spans"]}
            for s in tree["spans"][1:]:
                assert s["parent_span_id"] in by_id
            names = [(s["service"], s["kind"], s["name"]) for s in tree["spans"]]
            assert names[0] == ("web", "server", "GET /items/{item_id}")
            assert ("api", "server", "POST /graphql") in names and ("fn", "server", "fn-items") in names
            db_span = next(s for s in tree["spans"] if s["kind"] == "client" and s["service"] == "fn")
            assert db_span["attributes"]["db.system"] == "postgresql"
            assert db_span["attributes"]["db.query.text"] == "SELECT id, name FROM items WHERE id = %s"
            fn_span = by_id[db_span["parent_span_id"]]
            assert fn_span["attributes"]["graphql.field.name"] == "item" and fn_span["attributes"]["faas.trigger"] == "other"
            # the spans are request telemetry too: the API's availability SLI from spans alone
            r = httpx.get(vigil.url + "/api/v1/slos", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            slo = r.json()["slos"][0]
            assert (slo["good"], slo["valid"]) == (1, 1)

            # a hop that drops the context: web calls the API without traceparent
            r = httpx.get(web.url + "/items/1?propagate=0", timeout=30)
            assert r.status_code == 200 and r.json()["data"]["item"]["name"] == "espresso machine"

            def second() -> bool:
                res = check(cli, db)
                return json.loads(res.out)["traces_checked"] == 2

            wait_for(second, "the second web trace to arrive", timeout=60, every=0.2)
            res = check(cli, db)
            assert res.code == 0  # one trace still has the whole path (--min-traces 1)
            res = check(cli, db, "--all")
            assert res.code == 1
            d = json.loads(res.out)
            assert not d["ok"] and d["traces_passed"] == 1
            broken = next(x for x in d["traces"] if not x["ok"])
            assert broken["matched"] == ["web"] and broken["missing"] == "api"
            res = cli("trace", "check", "--service-path", "web,api,fn,db", "--db", db, "--since", "15m", "--all")
            assert res.code == 1 and "FAIL 1 of 2" in res.out and "no 'api' hop after web" in res.out
            # and nothing recent at all is a failure, not a pass
            res = cli("trace", "check", "--service-path", "checkout,api", "--db", db)
            assert res.code == 1 and "no trace with a span of service 'checkout'" in res.out
        finally:
            for a in reversed(apps):
                a.stop()
