"""``vigil data scan``: the classification registry against the live PostgreSQL schema.

:func:`compare` (pure) takes the registry, the live columns and sampled values, and reports:

* ``unclassified``: a live column the registry does not classify (a new column: fails CI);
* ``pii_suspect``: a column whose name or sampled values look like personal data but whose class
  is not ``pii`` or ``sensitive`` (or that is unclassified), with the entity and the evidence
  (a count of matching values, never the values);
* ``stale``: a registry entry whose table or column no longer exists.

:func:`read_live` (adapter) reads ``information_schema.columns`` and samples text-like columns
(``LIMIT n`` rows per table) in a read-only transaction with a statement timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.security.data.recognizers import SENSITIVE_ENTITIES, name_entities, value_entities
from vigil.security.data.spec import Registry

TEXT_TYPES = {"text", "character varying", "character", "json", "jsonb", "inet", "cidr", "citext", "USER-DEFINED"}


@dataclass
class Live:
    columns: dict[str, list[tuple[str, str]]]  # schema.table -> [(column, data_type)]
    samples: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # schema.table -> column -> values
    sampled_rows: dict[str, int] = field(default_factory=dict)


def compare(registry: Registry, live: Live, *, ignore: list[str] | None = None) -> dict:
    reg = registry.qualified()
    ign = {(x if "." in x else f"public.{x}") for x in (ignore or [])}
    unclassified: list[dict] = []
    suspects: list[dict] = []
    stale: list[dict] = []
    classified = 0
    for table, cols in sorted(live.columns.items()):
        if table in ign:
            continue
        t = reg.get(table)
        for col, dtype in cols:
            c = t.columns.get(col) if t is not None else None
            cls = c.class_ if c is not None else None
            if c is None:
                unclassified.append({"table": table, "column": col, "type": dtype,
                                     "why": "the table is not in the registry" if t is None else "the column is not in the registry"})
            else:
                classified += 1
            if cls in ("pii", "sensitive"):
                continue
            ev = []
            suggest = "pii"
            for rule in name_entities(col):
                ev.append({"by": "name", "entity": rule.entity, "detail": f"the name {col!r} reads as {rule.entity}"})
                if rule.suggests == "sensitive":
                    suggest = "sensitive"
            found = value_entities(live.samples.get(table, {}).get(col, []))
            for ent, (hits, n) in sorted(found.items()):
                ev.append({"by": "values", "entity": ent, "detail": f"{hits} of {n} sampled values are {ent.replace('_', ' ')}"})
                if ent in SENSITIVE_ENTITIES:
                    suggest = "sensitive"
            if ev:
                suspects.append({"table": table, "column": col, "class": cls, "suggested": suggest, "evidence": ev})
    for table, t in sorted(reg.items()):
        if table in ign:
            continue
        if table not in live.columns:
            stale.append({"table": table, "column": None, "why": "the table is not in the database"})
            continue
        have = {c for c, _ in live.columns[table]}
        for col in sorted(t.columns):
            if col not in have:
                stale.append({"table": table, "column": col, "why": "the column is not in the table"})
    return {"tables": len([t for t in live.columns if t not in ign]), "columns": sum(len(v) for k, v in live.columns.items() if k not in ign),
            "classified": classified, "unclassified": unclassified, "pii_suspect": suspects, "stale": stale}


def failed(result: dict, fail_on: list[str]) -> list[str]:
    return [k for k in fail_on if result.get(k)]


def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def read_live(dsn: str, schemas: list[str], sample_rows: int, *, statement_timeout_ms: int = 30_000) -> Live:
    """The columns of the schemas' tables and up to ``sample_rows`` sampled values of each text-like
    column, read in one read-only transaction."""
    import psycopg

    from vigil.errors import ExternalError
    from vigil.pgconn import connect, first_line, scrub

    conn = connect(dsn, what="the database to scan", autocommit=False, application_name="vigil data scan")
    try:
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
            rows = conn.execute(
                """SELECT c.table_schema, c.table_name, c.column_name, c.data_type
                   FROM information_schema.columns c
                   JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                   WHERE c.table_schema = ANY(%s) AND t.table_type = 'BASE TABLE'
                   ORDER BY c.table_schema, c.table_name, c.ordinal_position""",
                (schemas,),
            ).fetchall()
            live = Live({})
            for s, t, c, dt in rows:
                live.columns.setdefault(f"{s}.{t}", []).append((c, dt))
            if sample_rows > 0:
                for table, cols in live.columns.items():
                    text_cols = [c for c, dt in cols if dt in TEXT_TYPES]
                    if not text_cols:
                        continue
                    s, t = table.split(".", 1)
                    sel = ", ".join(f"{_q(c)}::text" for c in text_cols)
                    got = conn.execute(f"SELECT {sel} FROM {_q(s)}.{_q(t)} LIMIT {int(sample_rows)}").fetchall()
                    live.sampled_rows[table] = len(got)
                    live.samples[table] = {c: [r[i] for r in got if r[i] is not None] for i, c in enumerate(text_cols)}
        return live
    except psycopg.Error as e:
        raise ExternalError(f"reading the schema failed: {scrub(first_line(e), dsn)}",
                            hint="the scanning role needs USAGE on the schemas and SELECT on the tables (sampling)") from None
    finally:
        conn.close()


def to_sarif(result: dict, target: str, at: str) -> dict:
    from vigil.security.probes import sarif

    rules = [
        sarif.rule("data-unclassified", "A column has no data class", "A live column is not in the classification registry: nobody decided who may read it.",
               "Add the column to the registry with a class (public, internal, pii, sensitive), an owner and the roles that may read it.", "high", ["data"]),
        sarif.rule("data-pii-suspect", "A column looks like personal data but is not classified as such",
               "The column's name or sampled values look like personal data (e-mail, card numbers, ...), and its class is not pii or sensitive.",
               "Classify it pii or sensitive and restrict its roles, or record in the registry why it is not personal data.", "high", ["data", "pii"]),
        sarif.rule("data-stale", "A registry entry names nothing", "The registry names a table or column the database no longer has.",
               "Remove the entry from the registry.", "low", ["data"]),
    ]
    idx = {r["id"]: i for i, r in enumerate(rules)}
    res = []
    for u in result["unclassified"]:
        res.append(sarif.result("data-unclassified", idx["data-unclassified"], "high", f"{u['table']}.{u['column']} ({u['type']}) has no class: {u['why']}",
                            f"{target}#{u['table']}", "vigilData/v1", sarif.fingerprint("unclassified", u["table"], u["column"]), logical=f"{u['table']}.{u['column']}"))
    for s in result["pii_suspect"]:
        ev = "; ".join(e["detail"] for e in s["evidence"])
        res.append(sarif.result("data-pii-suspect", idx["data-pii-suspect"], "high",
                            f"{s['table']}.{s['column']} (class {s['class'] or 'none'}) looks like {s['suggested']} data: {ev}",
                            f"{target}#{s['table']}", "vigilData/v1", sarif.fingerprint("suspect", s["table"], s["column"]), logical=f"{s['table']}.{s['column']}"))
    for s in result["stale"]:
        name = s["table"] + (f".{s['column']}" if s["column"] else "")
        res.append(sarif.result("data-stale", idx["data-stale"], "low", f"the registry names {name}: {s['why']}", f"{target}#{s['table']}",
                            "vigilData/v1", sarif.fingerprint("stale", s["table"], s["column"] or "")))
    return sarif.log("vigil-data", "vigil data scan", rules, res, complete=True, problems=[], properties={"database": target, "at": at})
