"""Query suites: the application's statements, run on the schema before and after the migrations.

A suite is the statements of a release (a ``.sql`` file or directory, or what
``pg_stat_statements`` recorded on Stage). Each statement is EXECUTED in a transaction that is
always rolled back, never only parsed: a statement with ``$n`` parameters (every statement
``pg_stat_statements`` records has them) runs with values sampled from the clone's data, chosen
from what each parameter is compared with or assigned to (:func:`parameter_uses`): ``WHERE
u.id = $1`` gets an id that exists, ``INSERT INTO orders (user_id, ...) VALUES ($1, ...)`` gets a
user id that exists (the parent of the foreign key), a column under a unique index gets a fresh
value, ``LIMIT $1`` gets 10; a parameter nothing tells about gets a plain value of its type. Up to
:data:`CANDIDATE_SETS` value sets are tried on the reference schema and the first that works is
the one used on the schema under test, so both run the very same statement.

A statement that fails on the reference schema cannot say anything about the schema under test:
the comparison counts it as ``unverified`` (the verify check is then inconclusive), never as
silently fine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from vigil.deploy.migrations import schema_dump
from vigil.deploy.migrations.files import MigrationFileError, read_sql_file, split_statements
from vigil.errors import UsageError

DEFAULT_QUERY_TIMEOUT_MS = 30_000
DEFAULT_STAT_STATEMENTS_LIMIT = 500
CANDIDATE_SETS = 3
"""How many sampled parameter sets are tried on the reference schema before a statement counts as failing there."""


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


@dataclass(frozen=True)
class SuiteQuery:
    """One statement of a release's query suite and where it came from (``file:line`` or a queryid)."""

    source: str
    text: str


def load_suite(path: str | Path) -> list[SuiteQuery]:
    """The statements of a ``.sql`` file, or of every ``*.sql`` file under a directory (sorted).

    Raises :class:`MigrationFileError` (exit 2) for a missing path or SQL the parser rejects."""
    import pglast

    p = Path(path)
    if p.is_dir():
        files = sorted(x for x in p.rglob("*.sql") if x.is_file())
        if not files:
            raise MigrationFileError([f"{p}: no .sql files in this query suite directory"],
                                     hint="a query suite is a .sql file (or a directory of them) of the app's statements, separated by ';'")
    elif p.is_file():
        files = [p]
    else:
        raise MigrationFileError([f"{p}: query suite not found"],
                                 hint="set migrations.queries.previous / next (relative to the spec) or pass --previous-queries / --next-queries")
    out: list[SuiteQuery] = []
    problems: list[str] = []
    for f in files:
        text = read_sql_file(f)
        try:
            for st in split_statements(text):
                out.append(SuiteQuery(f"{f}:{st.line}", st.text))
        except pglast.parser.ParseError as e:
            loc = e.args[1] if len(e.args) > 1 and isinstance(e.args[1], int) else None
            line = text.count("\n", 0, loc) + 1 if loc is not None else None
            problems.append(f"{f}{':' + str(line) if line else ''}: {e.args[0] if e.args else e}")
    if problems:
        raise MigrationFileError(problems, hint="fix the query suite: statements separated by ';', valid PostgreSQL")
    return out


_DML = {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}
_CATALOG_SCHEMAS = ("pg_catalog.", "information_schema.")
_CATALOG_PREFIXES = ("pg_", "information_schema")


def keep_captured(query: str, *, ledger_table: str) -> bool:
    """Whether a statement from pg_stat_statements belongs in a query suite: plain DML that touches
    at least one application relation (not only catalogs, not the ledger, not pg_stat_statements). Pure."""
    import pglast
    from pglast.visitors import referenced_relations

    try:
        trees = pglast.parse_sql(query)
    except pglast.parser.ParseError:
        return False
    if len(trees) != 1 or type(trees[0].stmt).__name__ not in _DML:
        return False
    try:
        rels = referenced_relations(query)
    except Exception:
        return False
    ledger = {ledger_table, schema_dump.qualified(ledger_table), ledger_table.split(".")[-1]}
    app = [r for r in rels if not r.startswith(_CATALOG_SCHEMAS) and not r.split(".")[-1].startswith(_CATALOG_PREFIXES)]
    return bool(app) and not (set(rels) & ledger)


def capture_pg_stat_statements(conn: Any, *, ledger_table: str, limit: int = DEFAULT_STAT_STATEMENTS_LIMIT) -> list[SuiteQuery]:
    """The app's statements as pg_stat_statements saw them on this database, most called first.

    Raises :class:`UsageError` when the extension is not installed or not preloaded."""
    import psycopg

    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_stat_statements'"
    ).fetchone()
    if not row:
        raise UsageError(
            "pg_stat_statements is not installed in the Stage database",
            hint="add pg_stat_statements to shared_preload_libraries, restart, CREATE EXTENSION pg_stat_statements, "
            "let the previous release run, or pass the suite as a file (--previous-queries)",
        )
    from psycopg import sql

    q = sql.SQL(
        "SELECT queryid, query FROM {v} WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND toplevel ORDER BY calls DESC, queryid LIMIT %s"
    ).format(v=sql.Identifier(row[0], "pg_stat_statements"))
    try:
        rows = conn.execute(q, (limit * 4,)).fetchall()
    except psycopg.Error as e:
        raise UsageError(
            f"cannot read pg_stat_statements on the Stage database: {_first_line(e)}",
            hint="pg_stat_statements must be in shared_preload_libraries (a restart is needed)",
        ) from None
    out: list[SuiteQuery] = []
    seen: set[str] = set()
    for queryid, query in rows:
        if query in seen or not keep_captured(query, ledger_table=ledger_table):
            continue
        seen.add(query)
        out.append(SuiteQuery(f"pg_stat_statements queryid {queryid}", query.strip().rstrip(";")))
        if len(out) >= limit:
            break
    return out


# -- which parameter is which (pure) -----------------------------------------------------------------


@dataclass(frozen=True)
class RelationRef:
    """A table named in a statement: ``schema`` (None: the search path), ``name``, ``alias``."""

    schema: str | None
    name: str
    alias: str | None = None

    @property
    def sql_name(self) -> str:
        return ".".join(_quote(p) for p in ((self.schema,) if self.schema else ()) + (self.name,))


@dataclass(frozen=True)
class ParamUse:
    """What a ``$n`` parameter is used for, as far as the statement says.

    ``role``: ``compare`` (``col = $1``, ``col IN ($1)``, ``col BETWEEN $1 AND $2``), ``any``
    (``col = ANY($1)``: an array), ``assign`` (a value of ``INSERT`` or ``UPDATE ... SET``),
    ``limit``, ``offset``. ``column`` and ``qualifier`` (``("u",)`` for ``u.id``) name the column
    compared with; ``target`` the table an ``assign`` writes (``position`` for an INSERT without
    a column list)."""

    number: int
    role: str
    column: str | None = None
    qualifier: tuple[str, ...] = ()
    target: RelationRef | None = None
    position: int | None = None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _walk(root: Any) -> Iterator[Any]:
    from pglast.ast import Node

    stack = [root]
    while stack:
        n = stack.pop()
        if isinstance(n, Node):
            yield n
            for slot in getattr(type(n), "__slots__", ()):  # pglast's AST classes name their fields there
                v = getattr(n, slot, None)
                if isinstance(v, (Node, tuple, list)):
                    stack.append(v)
        elif isinstance(n, (tuple, list)):
            stack.extend(n)


def _param(node: Any) -> int | None:
    """The number of ``$n`` (through casts: ``$1::int``), or None."""
    while type(node).__name__ == "TypeCast":
        node = node.arg
    return node.number if type(node).__name__ == "ParamRef" else None


def _column(node: Any) -> tuple[tuple[str, ...], str] | None:
    while type(node).__name__ == "TypeCast":
        node = node.arg
    if type(node).__name__ != "ColumnRef":
        return None
    parts = [getattr(f, "sval", None) for f in node.fields]
    names = [p for p in parts if isinstance(p, str)]
    if not names or len(names) != len(parts):
        return None  # u.* and the like
    return tuple(names[:-1]), names[-1]


def _rel(rv: Any) -> RelationRef:
    alias = rv.alias.aliasname if getattr(rv, "alias", None) is not None else None
    return RelationRef(rv.schemaname or None, rv.relname, alias)


def parameter_uses(sql: str) -> tuple[dict[int, ParamUse], list[RelationRef]]:
    """The uses of each ``$n`` in one statement, and every table it names. Pure (pglast).

    Unparseable SQL gives no uses (its parameters then get plain values of their types)."""
    import pglast

    try:
        stmts = pglast.parse_sql(sql)
    except pglast.parser.ParseError:
        return {}, []
    uses: dict[int, ParamUse] = {}
    rels: list[RelationRef] = []

    def put(u: ParamUse) -> None:
        uses.setdefault(u.number, u)  # the first use wins (an assignment is visited before its WHERE)

    for raw in stmts:
        root: Any = raw.stmt  # dispatched on its class name below
        kind = type(root).__name__
        if kind == "InsertStmt":
            target = _rel(root.relation)
            cols = [c.name for c in root.cols or ()]
            sel = root.selectStmt
            for row in (getattr(sel, "valuesLists", None) or ()) if sel is not None else ():
                for i, v in enumerate(row):
                    n = _param(v)
                    if n is not None:
                        put(ParamUse(n, "assign", cols[i] if i < len(cols) else None, target=target,
                                     position=None if cols else i))
            occ = root.onConflictClause
            for rt in (getattr(occ, "targetList", None) or ()) if occ is not None else ():
                n = _param(rt.val)
                if n is not None:
                    put(ParamUse(n, "assign", rt.name, target=target))
        elif kind == "UpdateStmt":
            target = _rel(root.relation)
            for rt in root.targetList or ():
                n = _param(rt.val)
                if n is not None and rt.name:
                    put(ParamUse(n, "assign", rt.name, target=target))
        for node in _walk(root):
            t = type(node).__name__
            if t == "RangeVar":
                rels.append(_rel(node))
            elif t == "A_Expr":
                kname = getattr(node.kind, "name", str(node.kind))
                left, right = node.lexpr, node.rexpr
                sides = [(left, right), (right, left)] if not isinstance(right, (tuple, list)) else [(left, right)]
                for col_side, val_side in sides:
                    col = _column(col_side)
                    if col is None:
                        continue
                    vals = val_side if isinstance(val_side, (tuple, list)) else (val_side,)
                    for v in vals:
                        n = _param(v)
                        if n is not None:
                            put(ParamUse(n, "any" if kname == "AEXPR_OP_ANY" else "compare", col[1], col[0]))
            elif t == "SelectStmt":
                for attr, role in (("limitCount", "limit"), ("limitOffset", "offset")):
                    n = _param(getattr(node, attr, None))
                    if n is not None:
                        put(ParamUse(n, role))
    unique_rels = list(dict.fromkeys(rels))  # in order of appearance, each once
    return uses, unique_rels


# -- sampling values (on the clone) ----------------------------------------------------------------


@dataclass(frozen=True)
class ParamValue:
    """One parameter's value (PostgreSQL text input; None is NULL) and where it came from."""

    value: str | None
    source: str

    def describe(self, n: int) -> str:
        shown = "NULL" if self.value is None else repr(self.value if len(self.value) <= 40 else self.value[:37] + "...")
        return f"${n} = {shown} ({self.source})"


def _resolve(conn: Any, use: ParamUse, rels: Sequence[RelationRef]) -> tuple[str, str] | None:
    """(regclass text, column) that a use refers to on this database, or None."""
    def has(rel: RelationRef, col: str) -> str | None:
        row = conn.execute(
            "SELECT to_regclass(%s)::text FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s "
            "AND attnum > 0 AND NOT attisdropped", (rel.sql_name, rel.sql_name, col)).fetchone()  # fmt: skip
        return row[0] if row else None

    if use.role == "assign" and use.target is not None:
        col = use.column
        if col is None and use.position is not None:
            row = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped "
                "ORDER BY attnum OFFSET %s LIMIT 1", (use.target.sql_name, use.position)).fetchone()  # fmt: skip
            col = row[0] if row else None
        found = has(use.target, col) if col else None
        return (found, col) if found and col else None
    if use.column is None:
        return None
    q = use.qualifier
    if q:
        cands = [r for r in rels if (len(q) == 1 and (r.alias == q[0] or (r.alias is None and r.name == q[0])))
                 or (len(q) >= 2 and r.schema == q[-2] and r.name == q[-1])]
        if not cands and len(q) >= 2:
            cands = [RelationRef(q[-2], q[-1])]
    else:
        cands = list(rels)
    for r in cands:
        found = has(r, use.column)
        if found:
            return found, use.column
    return None


def _type_default(conn: Any, type_oid: int) -> ParamValue:
    """A plain value of a type, for a parameter nothing tells about."""
    row = conn.execute("SELECT typname, typcategory, typtype FROM pg_type WHERE oid = %s", (type_oid,)).fetchone()
    if not row:
        return ParamValue(None, "type unknown: NULL")
    name, cat, typtype = row
    if typtype == "e":
        label = conn.execute("SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder LIMIT 1", (type_oid,)).fetchone()
        return ParamValue(label[0] if label else None, f"first value of enum {name}")
    by_name = {"uuid": "00000000-0000-4000-8000-000000000001", "json": "{}", "jsonb": "{}", "bytea": "\\x",
               "inet": "127.0.0.1", "cidr": "127.0.0.0/8", "interval": "1 hour", "bool": "true"}
    by_cat = {"N": "1", "S": "vigil", "B": "true", "D": "now", "T": "1 hour", "A": "{}", "I": "127.0.0.1"}
    v = by_name.get(name, by_cat.get(cat))
    return ParamValue(v, f"a plain {name}" if v is not None else f"no plain value of {name}: NULL")


def _candidates(conn: Any, table: str, column: str, role: str, k: int) -> list[ParamValue]:
    """Up to ``k`` values for a parameter used on ``table.column`` (regclass text)."""
    from psycopg import sql

    col = sql.Identifier(column)
    fk = conn.execute(
        """SELECT f.confrelid::regclass::text, pa.attname FROM pg_constraint f
             JOIN pg_attribute ca ON ca.attrelid = f.conrelid AND ca.attnum = f.conkey[1]
             JOIN pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = f.confkey[1]
            WHERE f.contype = 'f' AND f.conrelid = to_regclass(%s) AND cardinality(f.conkey) = 1 AND ca.attname = %s
            LIMIT 1""", (table, column)).fetchone()  # fmt: skip
    if fk and role in ("assign", "compare", "any"):
        rows = conn.execute(sql.SQL("SELECT DISTINCT {c}::text FROM {t} WHERE {c} IS NOT NULL ORDER BY 1 LIMIT {k}").format(
            c=sql.Identifier(fk[1]), t=sql.SQL(fk[0]), k=sql.Literal(k))).fetchall()  # fmt: skip
        if rows:
            return [ParamValue(r[0], f"an existing {fk[0]}.{fk[1]}, the parent of {table}.{column}") for r in rows]
    if role == "assign":
        unique = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisunique AND a.attname = %s)", (table, column)).fetchone()[0]  # fmt: skip
        if unique:
            typ = conn.execute("SELECT t.typcategory, t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
                               "WHERE a.attrelid = to_regclass(%s) AND a.attname = %s", (table, column)).fetchone()  # fmt: skip
            if typ and typ[0] == "N":
                top = conn.execute(sql.SQL("SELECT coalesce(max({c}), 0)::numeric FROM {t}").format(c=col, t=sql.SQL(table))).fetchone()[0]
                return [ParamValue(str(int(top) + i + 1), f"a new {table}.{column} (unique)") for i in range(k)]
            if typ and typ[1] == "uuid":
                return [ParamValue(f"00000000-0000-4000-8000-{0x7e57 + i:012x}", f"a new {table}.{column} (unique)") for i in range(k)]
            if typ and typ[0] == "S":
                return [ParamValue(f"vigil-verify-{i + 1}", f"a new {table}.{column} (unique)") for i in range(k)]
    rows = conn.execute(sql.SQL("SELECT DISTINCT {c}::text FROM {t} WHERE {c} IS NOT NULL ORDER BY 1 LIMIT {k}").format(
        c=col, t=sql.SQL(table), k=sql.Literal(k))).fetchall()  # fmt: skip
    return [ParamValue(r[0], f"sampled from {table}.{column}") for r in rows]


def _array_of(v: ParamValue) -> ParamValue:
    if v.value is None:
        return ParamValue("{}", v.source + ", as an empty array")
    return ParamValue('{"' + v.value.replace("\\", "\\\\").replace('"', '\\"') + '"}', v.source + ", as a one-element array")


def sample_parameter_sets(conn: Any, sql_text: str, param_types: Sequence[int], *, k: int = CANDIDATE_SETS) -> list[list[ParamValue]]:
    """Up to ``k`` value sets for a statement's parameters (each set has one value per ``$n``),
    read from this database (the clone: sampled rows). Always at least one set."""
    import psycopg

    uses, rels = parameter_uses(sql_text)
    per_param: list[list[ParamValue]] = []
    for i, oid in enumerate(param_types, start=1):
        use = uses.get(i)
        vals: list[ParamValue] = []
        if use is not None and use.role == "limit":
            vals = [ParamValue("10", "LIMIT")]
        elif use is not None and use.role == "offset":
            vals = [ParamValue("0", "OFFSET")]
        elif use is not None:
            try:
                with conn.transaction():  # a savepoint: a lookup that fails must not spoil the rest
                    where = _resolve(conn, use, rels)
                    if where is not None:
                        vals = _candidates(conn, where[0], where[1], use.role, k)
            except psycopg.Error:
                if conn.broken:
                    raise
                vals = []
            if use.role == "any":
                vals = [_array_of(v) for v in vals]
        if not vals:
            vals = [_type_default(conn, oid)]
        per_param.append(vals)
    n_sets = max([len(v) for v in per_param] + [1])
    return [[vals[min(j, len(vals) - 1)] for vals in per_param] for j in range(n_sets)]


# -- running -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryOutcome:
    """One suite statement on one schema: ok or the error; ``mode`` says how it ran and
    ``parameters`` with which values (``$1 = '3' (sampled from public.users.id)``)."""

    ok: bool
    mode: str  # executed | executed-with-parameters | not-prepared (parse or analysis failed: not run)
    sqlstate: str | None = None
    message: str | None = None
    parameters: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"ok": self.ok, "mode": self.mode, "sqlstate": self.sqlstate, "error": self.message,
                "parameters": list(self.parameters)}


@dataclass(frozen=True)
class _Prepared:
    nparams: int
    types: tuple[int, ...]


def _error(conn: Any, e: Any, mode: str, params: Sequence[str] = ()) -> QueryOutcome:
    diag = getattr(e, "diag", None)
    msg = diag.message_primary if diag is not None and diag.message_primary else _first_line(e)
    return QueryOutcome(False, mode, getattr(e, "sqlstate", None), msg, tuple(params))


def _prepare(conn: Any, text: str) -> Any:
    import psycopg
    from psycopg import pq

    res = conn.pgconn.prepare(b"", text.encode("utf-8"))
    if res.status != pq.ExecStatus.COMMAND_OK:
        raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)
    return conn.pgconn.describe_prepared(b"")


def describe(conn: Any, text: str, *, timeout_ms: int) -> _Prepared | QueryOutcome:
    """Parse and analyse a statement (nothing runs): its parameter types, or the failure."""
    import psycopg

    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{timeout_ms}ms",))
            d = _prepare(conn, text)
            return _Prepared(d.nparams, tuple(d.param_type(i) for i in range(d.nparams)))
    except psycopg.Error as e:
        if conn.broken:
            raise
        return _error(conn, e, "not-prepared")


def execute(conn: Any, text: str, values: Sequence[ParamValue] | None, *, timeout_ms: int) -> QueryOutcome:
    """Run one statement with these parameter values in a transaction that is always rolled back."""
    import psycopg
    from psycopg import pq

    shown = tuple(v.describe(i) for i, v in enumerate(values or (), start=1))
    mode = "executed-with-parameters" if values else "executed"
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{timeout_ms}ms",))
            try:
                _prepare(conn, text)
            except psycopg.Error as e:
                if conn.broken:
                    raise
                return _error(conn, e, "not-prepared", shown)
            res = conn.pgconn.exec_prepared(b"", [None if v.value is None else v.value.encode("utf-8") for v in values or ()])
            if res.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY):
                raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)
    except psycopg.Error as e:
        if conn.broken:
            raise
        return _error(conn, e, mode, shown)
    return QueryOutcome(True, mode, parameters=shown)


@dataclass
class SuiteRun:
    """A suite run on one schema: the outcomes, and the parameter set each statement used."""

    outcomes: list[QueryOutcome] = field(default_factory=list)
    values: list[list[ParamValue] | None] = field(default_factory=list)


def run_reference(conn: Any, suite: Sequence[SuiteQuery], *, timeout_ms: int) -> SuiteRun:
    """Run a suite on the reference schema: each statement with up to :data:`CANDIDATE_SETS`
    sampled parameter sets, keeping the first that works (or the last tried)."""
    out = SuiteRun()
    for q in suite:
        d = describe(conn, q.text, timeout_ms=timeout_ms)
        if isinstance(d, QueryOutcome):
            out.outcomes.append(d)
            out.values.append(None)
            continue
        if not d.nparams:
            out.outcomes.append(execute(conn, q.text, None, timeout_ms=timeout_ms))
            out.values.append([])
            continue
        outcome, chosen = None, None
        for values in sample_parameter_sets(conn, q.text, d.types):
            outcome, chosen = execute(conn, q.text, values, timeout_ms=timeout_ms), values
            if outcome.ok:
                break
        assert outcome is not None  # sample_parameter_sets gives at least one set
        out.outcomes.append(outcome)
        out.values.append(chosen)
    return out


def run_under_test(conn: Any, suite: Sequence[SuiteQuery], reference: SuiteRun, *, timeout_ms: int) -> SuiteRun:
    """Run a suite on the schema under test with the very values the reference run used."""
    out = SuiteRun()
    for q, values in zip(suite, reference.values):
        if values is None:  # it did not even parse on the reference schema: values from this one
            d = describe(conn, q.text, timeout_ms=timeout_ms)
            if isinstance(d, QueryOutcome):
                out.outcomes.append(d)
                out.values.append(None)
                continue
            values = sample_parameter_sets(conn, q.text, d.types, k=1)[0] if d.nparams else []
        out.outcomes.append(execute(conn, q.text, values, timeout_ms=timeout_ms))
        out.values.append(values)
    return out


# -- comparing (pure) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """A suite run on a reference schema and on a schema under test. Pure data.

    ``unverified``: statements that failed on the reference schema, so their result on the schema
    under test proves nothing either way; any of them makes the check inconclusive."""

    ok: list[int]
    regressions: list[int]  # ok on the reference, failed on the one under test
    unverified: list[int]  # failed on the reference (whatever they did on the one under test)

    @property
    def status(self) -> str:
        return "failed" if self.regressions else "inconclusive" if self.unverified else "ok"


def compare(reference: Sequence[QueryOutcome], under_test: Sequence[QueryOutcome]) -> Comparison:
    if len(reference) != len(under_test):
        raise ValueError("the two runs of a suite must have one outcome per statement")
    ok, reg, unverified = [], [], []
    for i, (a, b) in enumerate(zip(reference, under_test)):
        if not a.ok:
            unverified.append(i)
        elif b.ok:
            ok.append(i)
        else:
            reg.append(i)
    return Comparison(ok, reg, unverified)
