"""A schema snapshot of a PostgreSQL database, and the difference between two snapshots.

``verify`` snapshots the cloned Stage schema before the pending migrations, applies them, applies
their down migrations in reverse, snapshots again and compares: a down migration that does not
restore the schema is a failed check naming each object that differs. The runner uses the same
snapshots to say what a failed migration that ran outside a transaction left behind (an INVALID
index, a table). :func:`snapshot` is the only function here that talks to a database;
:func:`diff` and the :class:`SchemaSnapshot` methods are pure.

A snapshot maps an object key (``"column public.users.email"``) to a canonical definition string
(``"text NOT NULL DEFAULT ''::text"``), read from the catalogs with PostgreSQL's own deparsers
(``pg_get_indexdef``, ``pg_get_constraintdef``, ``pg_get_viewdef``, ...), so two snapshots compare by
plain string equality. What it covers: schemas, extensions, tables (kind, persistence, partition
key and bound, row security, storage options), columns (type, NOT NULL, default, identity,
generated, collation), constraints (with whether validated), indexes (with whether valid), views
and materialized views (definition), sequences (parameters, owner), functions and procedures
(definition), triggers, enum, domain and composite types, row-security policies, comments
(``COMMENT ON`` any object, named by ``pg_describe_object``) and privileges (``GRANT`` /
``REVOKE`` on tables, views, sequences, columns, schemas, functions and types: each grantee's
privileges, the object's owner written ``<owner>`` so that two databases owned by different roles
compare). Column ORDER is kept apart (:attr:`SchemaSnapshot.column_order`): it matters to ``SELECT *``
and ``INSERT`` without a column list, but a down migration that re-adds a dropped column cannot
restore it, so a changed order is reported as a note, not a difference. Not covered: ownership,
default privileges (``ALTER DEFAULT PRIVILEGES``), statistics targets, rules other than views'
``_RETURN``, and objects that belong to an extension (the extension and its version are compared
instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

SYSTEM_SCHEMAS_SQL = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND n.nspname NOT LIKE 'pg\\_temp\\_%%' AND n.nspname NOT LIKE 'pg\\_toast\\_temp\\_%%'"
)


@dataclass(frozen=True)
class SchemaSnapshot:
    """Object key -> canonical definition; plus the column order of each table and view."""

    objects: dict[str, str]
    column_order: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"objects": dict(sorted(self.objects.items())), "column_order": {k: list(v) for k, v in sorted(self.column_order.items())}}

    def summary(self) -> dict[str, int]:
        """How many objects of each kind (``{"table": 3, "column": 12, ...}``)."""
        out: dict[str, int] = {}
        for k in self.objects:
            kind = k.split(" ", 1)[0]
            out[kind] = out.get(kind, 0) + 1
        return dict(sorted(out.items()))


@dataclass(frozen=True)
class Difference:
    """One object that differs between two snapshots."""

    key: str
    change: str  # "missing" (in before, not after) | "extra" (in after, not before) | "changed"
    before: str | None
    after: str | None

    @property
    def message(self) -> str:
        if self.change == "missing":
            return f"{self.key} is gone (was: {_clip(self.before)})"
        if self.change == "extra":
            return f"{self.key} was not there before (now: {_clip(self.after)})"
        return f"{self.key} changed: {_clip(self.before)} -> {_clip(self.after)}"

    def to_dict(self) -> dict:
        return {"object": self.key, "change": self.change, "before": self.before, "after": self.after, "message": self.message}


def _clip(s: str | None, n: int = 160) -> str:
    if s is None:
        return "-"
    s = " ".join(s.split())
    if not s:
        return "(plain)"
    return s if len(s) <= n else s[: n - 3] + "..."


def diff(before: SchemaSnapshot, after: SchemaSnapshot) -> list[Difference]:
    """Every object missing, extra or changed in ``after`` compared with ``before``, sorted by key."""
    out: list[Difference] = []
    for k in sorted(before.objects.keys() | after.objects.keys()):
        b, a = before.objects.get(k), after.objects.get(k)
        if b == a:
            continue
        change = "missing" if a is None else "extra" if b is None else "changed"
        out.append(Difference(k, change, b, a))
    return out


def order_notes(before: SchemaSnapshot, after: SchemaSnapshot) -> list[str]:
    """Relations present in both whose column order changed (a note: see the module docstring)."""
    notes = []
    for rel in sorted(before.column_order.keys() & after.column_order.keys()):
        b, a = before.column_order[rel], after.column_order[rel]
        if b != a and set(b) == set(a):
            notes.append(f"column order of {rel} changed: ({', '.join(b)}) -> ({', '.join(a)})")
    return notes


# -- reading the catalogs ---------------------------------------------------------------------------

# Each query returns (key, definition) rows. ``%(ex)s`` is the array of excluded relations
# ('schema.table', e.g. the migration ledger), whose columns, indexes, constraints, triggers,
# policies and owned sequences are left out too. Extension members are left out everywhere.
_NOT_EXT = "NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = {cat}::regclass AND dx.objid = {oid} AND dx.deptype = 'e')"

_QUERIES: dict[str, str] = {
    "schema": f"""
        SELECT 'schema ' || n.nspname, '' FROM pg_namespace n
        WHERE {SYSTEM_SCHEMAS_SQL} AND {_NOT_EXT.format(cat="'pg_namespace'", oid="n.oid")}""",
    "extension": """
        SELECT 'extension ' || e.extname, 'version ' || e.extversion || ' in schema ' || n.nspname
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace""",
    "relation": f"""
        SELECT CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'v' THEN 'view '
                              WHEN 'm' THEN 'materialized-view ' WHEN 'f' THEN 'foreign-table ' END
               || n.nspname || '.' || c.relname,
               concat_ws(' ',
                 CASE c.relkind WHEN 'p' THEN 'partitioned' END,
                 CASE c.relpersistence WHEN 'u' THEN 'unlogged' END,
                 CASE WHEN c.relkind = 'p' THEN 'PARTITION BY ' || pg_get_partkeydef(c.oid) END,
                 CASE WHEN c.relispartition THEN 'PARTITION OF ' || pn.nspname || '.' || pc.relname || ' '
                      || pg_get_expr(c.relpartbound, c.oid) END,
                 CASE WHEN c.relrowsecurity THEN 'ROW LEVEL SECURITY' END,
                 CASE WHEN c.relforcerowsecurity THEN 'FORCE ROW LEVEL SECURITY' END,
                 CASE WHEN c.reloptions IS NOT NULL THEN 'WITH (' || array_to_string(c.reloptions, ', ') || ')' END,
                 CASE WHEN c.relkind IN ('v', 'm') THEN 'AS ' || pg_get_viewdef(c.oid) END)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_inherits i ON c.relispartition AND i.inhrelid = c.oid
        LEFT JOIN pg_class pc ON pc.oid = i.inhparent
        LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {SYSTEM_SCHEMAS_SQL}
          AND NOT (n.nspname || '.' || c.relname = ANY(%(ex)s))
          AND {_NOT_EXT.format(cat="'pg_class'", oid="c.oid")}""",
    "column": f"""
        SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname,
               concat_ws(' ',
                 format_type(a.atttypid, a.atttypmod),
                 CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
                      THEN 'COLLATE ' || quote_ident(co.collname) END,
                 CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                 CASE WHEN a.attgenerated = 's' THEN 'GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                      WHEN d.adbin IS NOT NULL THEN 'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) END,
                 CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS AS IDENTITY'
                                    WHEN 'd' THEN 'GENERATED BY DEFAULT AS IDENTITY' END)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_collation co ON co.oid = a.attcollation
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'c')
          AND {SYSTEM_SCHEMAS_SQL} AND NOT (n.nspname || '.' || c.relname = ANY(%(ex)s))
          AND {_NOT_EXT.format(cat="'pg_class'", oid="c.oid")}
          AND (c.relkind <> 'c' OR {_NOT_EXT.format(cat="'pg_type'", oid="c.reltype")})""",
    "constraint": f"""
        SELECT 'constraint ' || n.nspname || '.' || COALESCE(c.relname, t.typname) || '.' || k.conname,
               pg_get_constraintdef(k.oid) || CASE WHEN NOT k.convalidated THEN ' (NOT VALIDATED)' ELSE '' END
        FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
        LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type t ON t.oid = k.contypid
        WHERE {SYSTEM_SCHEMAS_SQL} AND (k.conrelid <> 0 OR k.contypid <> 0)
          AND NOT (c.relname IS NOT NULL AND n.nspname || '.' || c.relname = ANY(%(ex)s))
          AND (c.oid IS NULL OR {_NOT_EXT.format(cat="'pg_class'", oid="c.oid")})
          AND (t.oid IS NULL OR {_NOT_EXT.format(cat="'pg_type'", oid="t.oid")})""",
    "index": f"""
        SELECT 'index ' || n.nspname || '.' || ic.relname,
               pg_get_indexdef(i.indexrelid) || CASE WHEN NOT i.indisvalid THEN ' (INVALID)' ELSE '' END
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class tc ON tc.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = ic.relnamespace JOIN pg_namespace tn ON tn.oid = tc.relnamespace
        WHERE {SYSTEM_SCHEMAS_SQL} AND NOT (tn.nspname || '.' || tc.relname = ANY(%(ex)s))
          AND {_NOT_EXT.format(cat="'pg_class'", oid="tc.oid")}""",
    "sequence": f"""
        SELECT 'sequence ' || n.nspname || '.' || c.relname,
               concat_ws(' ', 'AS ' || format_type(s.seqtypid, NULL), 'START ' || s.seqstart,
                         'INCREMENT ' || s.seqincrement, 'MIN ' || s.seqmin, 'MAX ' || s.seqmax,
                         'CACHE ' || s.seqcache, CASE WHEN s.seqcycle THEN 'CYCLE' END,
                         CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED' END,
                         (SELECT CASE d.deptype WHEN 'i' THEN 'IDENTITY OF ' ELSE 'OWNED BY ' END
                                 || on_.nspname || '.' || oc.relname || '.' || oa.attname
                            FROM pg_depend d JOIN pg_class oc ON oc.oid = d.refobjid
                            JOIN pg_namespace on_ ON on_.oid = oc.relnamespace
                            JOIN pg_attribute oa ON oa.attrelid = d.refobjid AND oa.attnum = d.refobjsubid
                           WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1))
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {SYSTEM_SCHEMAS_SQL} AND {_NOT_EXT.format(cat="'pg_class'", oid="c.oid")}
          AND NOT EXISTS (SELECT 1 FROM pg_depend d JOIN pg_class oc ON oc.oid = d.refobjid
                           JOIN pg_namespace on_ ON on_.oid = oc.relnamespace
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
                            AND d.refclassid = 'pg_class'::regclass AND on_.nspname || '.' || oc.relname = ANY(%(ex)s))""",
    "function": f"""
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END
               || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               CASE WHEN p.prokind = 'a' THEN 'RETURNS ' || format_type(p.prorettype, NULL)
                    ELSE pg_get_functiondef(p.oid) END
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE {SYSTEM_SCHEMAS_SQL} AND {_NOT_EXT.format(cat="'pg_proc'", oid="p.oid")}""",
    "trigger": f"""
        SELECT 'trigger ' || n.nspname || '.' || c.relname || '.' || tg.tgname,
               pg_get_triggerdef(tg.oid) || CASE tg.tgenabled WHEN 'D' THEN ' (DISABLED)' WHEN 'R' THEN ' (REPLICA)'
                                                              WHEN 'A' THEN ' (ALWAYS)' ELSE '' END
        FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT tg.tgisinternal AND {SYSTEM_SCHEMAS_SQL} AND NOT (n.nspname || '.' || c.relname = ANY(%(ex)s))
          AND {_NOT_EXT.format(cat="'pg_class'", oid="c.oid")}""",
    "type": f"""
        SELECT 'type ' || n.nspname || '.' || t.typname,
               CASE t.typtype
                 WHEN 'e' THEN 'ENUM (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                             FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
                 WHEN 'd' THEN concat_ws(' ', 'DOMAIN OF ' || format_type(t.typbasetype, t.typtypmod),
                                         CASE WHEN t.typnotnull THEN 'NOT NULL' END,
                                         CASE WHEN t.typdefault IS NOT NULL THEN 'DEFAULT ' || t.typdefault END)
                 WHEN 'c' THEN 'COMPOSITE'
                 WHEN 'r' THEN 'RANGE OF ' || (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid)
                 WHEN 'm' THEN 'MULTIRANGE'
                 ELSE 'BASE' END
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_class c ON c.oid = t.typrelid
        WHERE {SYSTEM_SCHEMAS_SQL} AND (t.typrelid = 0 OR c.relkind = 'c')
          AND NOT (t.typcategory = 'A' AND t.typelem <> 0) AND t.typtype <> 'm'
          AND {_NOT_EXT.format(cat="'pg_type'", oid="t.oid")}""",
    "policy": f"""
        SELECT 'policy ' || n.nspname || '.' || c.relname || '.' || p.polname,
               concat_ws(' ', CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                         'FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                                 WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                         'TO ' || (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', '
                                                         ORDER BY CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END)
                                     FROM unnest(p.polroles) r),
                         'USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                         'WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')
        FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {SYSTEM_SCHEMAS_SQL} AND NOT (n.nspname || '.' || c.relname = ANY(%(ex)s))""",
}

_QUERIES["comment"] = f"""
        SELECT 'comment on ' || pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description
        FROM pg_description d CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) i
        WHERE (i.schema IS NULL OR {SYSTEM_SCHEMAS_SQL.replace('n.nspname', 'i.schema')})
          AND NOT EXISTS (SELECT 1 FROM pg_depend dx WHERE dx.classid = d.classoid AND dx.objid = d.objoid AND dx.deptype = 'e')
          AND NOT (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT r FROM unnest(%(ex)s::text[]) x, to_regclass(x) r WHERE r IS NOT NULL))
          AND NOT (d.classoid = 'pg_constraint'::regclass AND EXISTS (
                SELECT 1 FROM pg_constraint k WHERE k.oid = d.objoid
                   AND k.conrelid IN (SELECT r FROM unnest(%(ex)s::text[]) x, to_regclass(x) r WHERE r IS NOT NULL)))
          AND NOT (d.classoid = 'pg_class'::regclass AND EXISTS (
                SELECT 1 FROM pg_index ix WHERE ix.indexrelid = d.objoid
                   AND ix.indrelid IN (SELECT r FROM unnest(%(ex)s::text[]) x, to_regclass(x) r WHERE r IS NOT NULL)))"""

ACL_OBJECTS = f"""
    WITH o AS (
        SELECT CASE WHEN c.relkind = 'S' THEN 'sequence ' ELSE 'table ' END || n.nspname || '.' || c.relname AS key,
               CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS obj,
               NULL::text AS col,
               coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl,
               c.relowner AS owner
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {SYSTEM_SCHEMAS_SQL}
           AND NOT (n.nspname || '.' || c.relname = ANY(%(ex)s)) AND {_NOT_EXT.format(cat="'pg_class'", oid="c.oid")}
        UNION ALL
        SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname,
               'TABLE ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname, a.attacl, c.relowner
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND {SYSTEM_SCHEMAS_SQL}
           AND NOT (n.nspname || '.' || c.relname = ANY(%(ex)s)) AND {_NOT_EXT.format(cat="'pg_class'", oid="c.oid")}
        UNION ALL
        SELECT 'schema ' || n.nspname, 'SCHEMA ' || quote_ident(n.nspname), NULL, coalesce(n.nspacl, acldefault('n', n.nspowner)),
               n.nspowner
          FROM pg_namespace n WHERE {SYSTEM_SCHEMAS_SQL} AND {_NOT_EXT.format(cat="'pg_namespace'", oid="n.oid")}
        UNION ALL
        SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END
               || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               'ROUTINE ' || quote_ident(n.nspname) || '.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               NULL, coalesce(p.proacl, acldefault('f', p.proowner)), p.proowner
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE {SYSTEM_SCHEMAS_SQL} AND {_NOT_EXT.format(cat="'pg_proc'", oid="p.oid")}
        UNION ALL
        SELECT 'type ' || n.nspname || '.' || t.typname, 'TYPE ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname), NULL,
               coalesce(t.typacl, acldefault('T', t.typowner)), t.typowner
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_class c ON c.oid = t.typrelid
         WHERE {SYSTEM_SCHEMAS_SQL} AND t.typtype IN ('e', 'd', 'r', 'c') AND (t.typrelid = 0 OR c.relkind = 'c')
           AND {_NOT_EXT.format(cat="'pg_type'", oid="t.oid")}
    )
    SELECT 'privileges on ' || o.key, o.obj, o.col,
           ARRAY(SELECT CASE WHEN e.grantee = 0 THEN 'PUBLIC' WHEN e.grantee = o.owner THEN '<owner>' ELSE e.grantee::regrole::text END
                        || '=' || e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END
                   FROM aclexplode(o.acl) e ORDER BY 1)
      FROM o"""
"""(snapshot key, GRANT object (``TABLE s.t``), column or NULL, the grantees' privileges as sorted
``grantee=PRIVILEGE`` strings, ``*`` for WITH GRANT OPTION) of every object with privileges. Run with an
empty search_path; ``%(ex)s`` as for the snapshot queries."""


def read_privileges(cur: Any, ex: list[str]) -> dict[str, tuple[str, str | None, tuple[str, ...]]]:
    """Snapshot key -> (GRANT object, column, entries) over a cursor whose search_path is empty."""
    cur.execute(ACL_OBJECTS, {"ex": ex})
    return {key: (obj, col, tuple(entries)) for key, obj, col, entries in cur.fetchall() if entries}


_COLUMN_ORDER = f"""
    SELECT n.nspname || '.' || c.relname, array_agg(a.attname::text ORDER BY a.attnum)
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND {SYSTEM_SCHEMAS_SQL} AND NOT (n.nspname || '.' || c.relname = ANY(%(ex)s))
      AND {_NOT_EXT.format(cat="'pg_class'", oid="c.oid")}
    GROUP BY 1"""


def qualified(table: str) -> str:
    """``schema.table`` for a ledger table name given with or without its schema (default public)."""
    return table if "." in table else f"public.{table}"


def snapshot(conn: Any, *, exclude: Iterable[str] = ()) -> SchemaSnapshot:
    """Read a snapshot over a psycopg connection (one read-only pass over the catalogs).

    ``exclude`` names relations (``table`` or ``schema.table``) left out with everything that
    belongs to them (the migration ledger). Runs inside the connection's current transaction state.
    """
    ex = [qualified(t) for t in exclude]
    objects: dict[str, str] = {}
    with conn.cursor() as cur:
        # the deparsers leave out schemas on the search_path: an empty one makes every name qualified
        saved = cur.execute("SELECT current_setting('search_path')").fetchone()[0]
        cur.execute("SELECT set_config('search_path', '', false)")
        try:
            for sql in _QUERIES.values():
                cur.execute(sql, {"ex": ex})
                for key, definition in cur.fetchall():
                    if key is not None:
                        objects[key] = definition or ""
            for key, (_, _, entries) in read_privileges(cur, ex).items():
                objects[key] = ", ".join(entries)
            cur.execute(_COLUMN_ORDER, {"ex": ex})
            order = {rel: tuple(cols) for rel, cols in cur.fetchall()}
        finally:
            cur.execute("SELECT set_config('search_path', %s, false)", (saved,))
    return SchemaSnapshot(objects, order)
