"""Data classification on a real PostgreSQL 15: the registry matches the schema, then a migration
adds columns and a table (drift): the scan fails on the unclassified columns, reports columns whose
names or values look like PII, and names stale entries; the grants plan is run on the database
and enforced by it; the LF-Tags export is valid for Lake Formation's API model."""

from __future__ import annotations

import json

import psycopg
import pytest

from vigil.security.data.recognizers import iban_valid, luhn, name_entities, value_entities
from vigil.security.sarifin import parse_sarif

SCHEMA = """
CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, login text, password_hash text, ref text, created_at timestamptz DEFAULT now());
CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users(id), total numeric(12,2), coupon text);
INSERT INTO users (email, login, password_hash, ref)
SELECT 'user' || g || '@example.com', 'user' || g || '@example.org', 'pbkdf2$' || md5(g::text), '41111111111111' || lpad((g % 10)::text, 2, '0') || 'x'
FROM generate_series(1, 40) g;
INSERT INTO orders (user_id, total, coupon) SELECT g, g * 3.5, 'WINTER-' || g FROM generate_series(1, 40) g;
"""

MIGRATION = """
-- 0042_contact_and_payments.sql: the drift
ALTER TABLE users ADD COLUMN backup_email text;
ALTER TABLE orders ADD COLUMN notes text;
ALTER TABLE orders DROP COLUMN coupon;
CREATE TABLE payments (id serial PRIMARY KEY, order_id int, card text, amount numeric(12,2));
UPDATE orders SET notes = 'call me on +44 20 7946 0' || lpad((id % 1000)::text, 3, '0');
INSERT INTO payments (order_id, card, amount)
SELECT g, (ARRAY['4111 1111 1111 1111', '5555-5555-5555-4444', '378282246310005'])[1 + g % 3], 9.99 FROM generate_series(1, 30) g;
"""

REGISTRY = """\
tables:
  public.users:
    owner: identity-team
    roles: [app]
    columns:
      id: internal
      email: {class: pii, roles: [app, support]}
      login: internal
      password_hash: {class: sensitive, roles: [auth]}
      ref: internal
      created_at: internal
  orders:
    owner: checkout-team
    roles: [app, support]
    columns:
      id: internal
      user_id: internal
      total: internal
      coupon: public
"""


def _exec(url: str, sql: str) -> None:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as c:
        c.execute(sql)


@pytest.fixture
def db(pg_db_url):
    _exec(pg_db_url, SCHEMA)
    return pg_db_url


@pytest.fixture
def registry(tmp_path):
    p = tmp_path / "data-classes.yaml"
    p.write_text(REGISTRY)
    return p


def test_the_registry_matches_then_a_migration_drifts(db, registry, cli, tmp_path):
    r = cli("data", "scan", "--db", db, "--registry", str(registry), "--json")
    assert r.code == 0, r.out + r.err
    out = r.json()
    assert out["passed"] and out["unclassified"] == [] and out["stale"] == [] and out["classified"] == 10
    # users.login is classified internal but holds e-mail addresses: reported, not failed (fail_on: unclassified)
    (s,) = out["pii_suspect"]
    assert (s["table"], s["column"], s["class"], s["suggested"]) == ("public.users", "login", "internal", "pii")
    assert s["evidence"] == [{"by": "values", "entity": "email", "detail": "40 of 40 sampled values are email"}]
    assert "@example" not in r.out  # values are never printed
    # ref holds 16-digit numbers that fail the Luhn check (but one in ten): not card numbers
    assert all(x["column"] != "ref" for x in out["pii_suspect"])

    _exec(db, MIGRATION)
    sarif = tmp_path / "data.sarif"
    r = cli("data", "scan", "--db", db, "--registry", str(registry), "--json", "--sarif", str(sarif))
    assert r.code == 1
    out = r.json()
    assert out["failed_on"] == ["unclassified"]
    assert {(u["table"], u["column"]) for u in out["unclassified"]} == {
        ("public.users", "backup_email"), ("public.orders", "notes"),
        ("public.payments", "id"), ("public.payments", "order_id"), ("public.payments", "card"), ("public.payments", "amount")}
    sus = {(s["table"], s["column"]): s for s in out["pii_suspect"]}
    assert sus[("public.users", "backup_email")]["evidence"][0]["by"] == "name"  # empty column: found by its name
    assert [e["entity"] for e in sus[("public.orders", "notes")]["evidence"]] == ["phone"]
    card = sus[("public.payments", "card")]
    assert card["suggested"] == "sensitive" and card["evidence"] == [{"by": "values", "entity": "credit_card", "detail": "30 of 30 sampled values are credit card"}]
    assert out["stale"] == [{"table": "public.orders", "column": "coupon", "why": "the column is not in the table"}]
    (run,) = parse_sarif(json.loads(sarif.read_text()))
    assert run.tool == "vigil-data"
    rules = sorted(f.rule_id for f in run.findings)
    assert rules.count("data-unclassified") == 6 and rules.count("data-pii-suspect") == 4 and rules.count("data-stale") == 1
    assert "4111" not in sarif.read_text()
    # stricter policy from the command line
    r = cli("data", "scan", "--db", db, "--registry", str(registry), "--fail-on", "stale", "--json")
    assert r.code == 1 and r.json()["failed_on"] == ["stale"]
    # names only: no rows read
    r = cli("data", "scan", "--db", db, "--registry", str(registry), "--sample", "0", "--json")
    assert r.json()["sampled_rows"] == 0 and ("public.payments", "card") not in {(s["table"], s["column"]) for s in r.json()["pii_suspect"]}


def test_registry_from_the_spec_and_sarif_into_the_ledger(db, cli, tmp_path):
    spec = tmp_path / "vigil.yaml"
    spec.write_text("version: 1\nservices: {api: {}}\nsecurity:\n  data:\n    registry: data-classes.yaml\n    fail_on: [unclassified, pii_suspect]\n")
    (tmp_path / "data-classes.yaml").write_text(REGISTRY)
    sarif = tmp_path / "d.sarif"
    r = cli("data", "scan", "--db", db, "--spec", str(spec), "--sarif", str(sarif))
    assert r.code == 1 and "PII? public.users.login" in r.out  # pii_suspect fails by the spec's policy
    r = cli("findings", "import", str(sarif), "--service", "api", "--release", "r9", "--json", "--spec", str(spec),
            "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert r.code == 0, r.err
    r = cli("findings", "list", "--json", "--spec", str(spec), "--db", f"sqlite:///{tmp_path / 's.db'}")
    (f,) = r.json()["findings"]
    assert f["kind"] == "data" and f["severity"] == "high" and f["rule"] == "data-pii-suspect"


def test_the_grants_plan_runs_and_the_database_enforces_it(db, registry, cli, tmp_path):
    for role in ("app", "support", "auth"):
        _exec(db, f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;")
    _exec(db, "GRANT SELECT ON users TO PUBLIC")  # a loose grant the plan must take away
    plan = tmp_path / "grants.sql"
    r = cli("data", "export", "grants", "--registry", str(registry), "--out", str(plan))
    assert r.code == 0
    sql = plan.read_text()
    assert 'GRANT SELECT ("email") ON TABLE "public"."users" TO "support";' in sql
    _exec(db, sql)
    _exec(db, sql)  # idempotent
    with psycopg.connect(db.replace("+psycopg", ""), autocommit=True) as c:
        c.execute("SET ROLE support")
        assert c.execute("SELECT count(email) FROM users").fetchone()[0] == 40
        assert c.execute("SELECT count(total) FROM orders").fetchone()[0] == 40
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT password_hash FROM users")
        c.execute("RESET ROLE")
        c.execute("SET ROLE auth")
        assert c.execute("SELECT count(password_hash) FROM users").fetchone()[0] == 40
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT email FROM users")
    for role in ("app", "support", "auth"):
        _exec(db, f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_lf_tags_are_valid_lake_formation_calls(registry, cli, tmp_path):
    import botocore.session
    from botocore.validate import validate_parameters

    r = cli("data", "export", "lf-tags", "--registry", str(registry), "--database", "platform_lake")
    assert r.code == 0
    doc = json.loads(r.out)
    model = botocore.session.get_session().get_service_model("lakeformation")
    for op, calls in doc.items():
        shape = model.operation_model(op).input_shape
        for params in calls:
            validate_parameters(params, shape)  # raises ParamValidationError when not the API's shape
    assert doc["CreateLFTag"][0] == {"TagKey": "classification", "TagValues": ["public", "internal", "pii", "sensitive"]}
    pii = [c for c in doc["AddLFTagsToResource"] if c["LFTags"] == [{"TagKey": "classification", "TagValues": ["pii"]}]]
    assert pii == [{"Resource": {"TableWithColumns": {"DatabaseName": "platform_lake", "Name": "users", "ColumnNames": ["email"]}},
                    "LFTags": [{"TagKey": "classification", "TagValues": ["pii"]}]}]


def test_errors(cli, tmp_path, registry):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  users:\n    owner: x\n    columns: {email: secret}\n")
    r = cli("data", "export", "grants", "--registry", str(bad))
    assert r.code == 2 and "bad.yaml" in r.err and "email" in r.err
    r = cli("data", "export", "grants", "--registry", str(tmp_path / "none.yaml"))
    assert r.code == 2 and "no such registry" in r.err
    r = cli("data", "scan", "--db", "postgresql://scanner:hunter2secret@127.0.0.1:1/app", "--registry", str(registry))
    assert r.code == 3 and "hunter2secret" not in r.err and "cannot connect" in r.err
    r = cli("data", "scan", "--db", "postgresql://127.0.0.1:1/app", "--registry", str(registry), "--schema", "bad name")
    assert r.code == 2


def test_recognizers():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    found = value_entities(["078-05-1120", "219-09-9999", "123-45-6789", "123-45-6780"])
    assert found["us_ssn"] == (2, 4)  # the advertising numbers are not people
    assert "us_ssn" not in value_entities(["000-12-3456", "666-12-3456", "900-12-3456"])
    assert value_entities(["GB82WEST12345698765432", "DE89370400440532013000"])["iban"] == (2, 2)
    assert value_entities(["10.0.0.1", "::1", "fe80::1%eth0"])["ip_address"] == (3, 3)
    assert value_entities(["a", "b", "c", "x@example.com"]) == {}  # one in four is not a column of e-mail addresses
    assert {r.entity for r in name_entities("customer_email")} == {"email"}
    assert {r.entity for r in name_entities("date_of_birth")} == {"birth_date"}
    assert {r.entity for r in name_entities("card_number")} == {"payment"}
    assert name_entities("emailed_at") == [] and name_entities("shipping_method") == []
