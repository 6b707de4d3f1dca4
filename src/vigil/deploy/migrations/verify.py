"""``vigil migrate verify``: the pending migrations rehearsed on a clone of the Stage database.

Nothing runs on Stage itself but reads (the catalogs, the ledger, a data sample,
``pg_stat_statements``). The rehearsal runs in a scratch database created on the Stage server,
dropped at the end even when a check fails (``keep`` leaves it for a post-mortem):

``plan``
    Stage's ledger read against the files: the pending migrations; failed when an applied
    migration was edited since or a pending one is older than an applied one.
``clone``
    a scratch database with Stage's schema (``pg_dump --schema-only`` piped to ``psql``, the
    PostgreSQL client programs of ``pg_bin``), the ledger's rows, the sequences' positions and,
    with ``sample_rows`` > 0, up to that many rows per table, chosen so that every foreign key
    holds (a child row is sampled only when its parent row is).
``apply``
    the pending migrations applied by the real runner (ledger, transactions, the spec's
    ``lock_timeout`` and ``statement_timeout``); a failure names the file, line and SQL error.
``backward-compat``
    the previous release's query suite (the app running now) against the new schema. Each
    statement runs before and after the migrations, in a transaction that is rolled back; a
    statement with ``$n`` parameters is parsed and planned (``PREPARE``) instead of run. Failed
    when a statement that worked on the old schema fails on the new one; a statement that already
    fails on the old schema is reported, not counted.
``forward-compat``
    for expand-only pending migrations (the lint classifier), the new release's suite against the
    OLD schema (the new code may go out before the migration), compared the same way with the
    new schema. Skipped when a pending migration contracts (drops, renames, narrows).
``down``
    the down migrations applied newest first; the schema must then equal the clone's schema before
    the migrations (:mod:`vigil.deploy.migrations.schema_dump`): every object that differs is named.

Each check is ``ok``, ``failed`` or ``skipped`` with why. The verdict is ``pass`` when no check
failed; the report (``to_dict``) carries the pending migrations' checksums so a deploy gate can
tell whether a verdict is about the migrations it is about to apply (:func:`verdict_covers`).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from vigil import exitcodes
from vigil.deploy.migrations import runner, schema_dump
from vigil.deploy.migrations.files import Migration, MigrationFileError, read_sql_file, split_statements
from vigil.errors import UsageError

DEFAULT_PG_BIN = "/usr/lib/postgresql/15/bin"
DEFAULT_QUERY_TIMEOUT_MS = 30_000
DEFAULT_STAT_STATEMENTS_LIMIT = 500
VERDICT_FORMAT = 1

Event = Callable[[str, dict], None]


# -- query suites -------------------------------------------------------------------------------


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
            f"cannot read pg_stat_statements on the Stage database: {runner.first_line(e)}",
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


@dataclass(frozen=True)
class QueryOutcome:
    """One suite statement on one schema: ok or the error; ``mode`` says how it was tried."""

    ok: bool
    mode: str  # executed | prepared (has $n parameters: parsed, analysed and planned, not run)
    sqlstate: str | None = None
    message: str | None = None

    def to_dict(self) -> dict:
        return {"ok": self.ok, "mode": self.mode, "sqlstate": self.sqlstate, "error": self.message}


def run_query(conn: Any, text: str, *, timeout_ms: int) -> QueryOutcome:
    """Try one statement in a transaction that is always rolled back. Parameterised statements are
    prepared (parse, analysis: every table, column, function and type is resolved) but not run."""
    import psycopg
    from psycopg import pq

    mode = "prepared"  # until it runs: a failure while preparing is a parse/analysis error
    try:
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{timeout_ms}ms",))
            res = conn.pgconn.prepare(b"", text.encode("utf-8"))
            if res.status != pq.ExecStatus.COMMAND_OK:
                raise psycopg.errors.error_from_result(res, encoding=conn.info.encoding)
            nparams = conn.pgconn.describe_prepared(b"").nparams
            if not nparams:  # with $n parameters: parsed and analysed (every name and type resolved), not run
                mode = "executed"
                conn.execute(text)
    except psycopg.Error as e:
        if conn.broken:
            raise
        diag = getattr(e, "diag", None)
        msg = diag.message_primary if diag is not None and diag.message_primary else runner.first_line(e)
        return QueryOutcome(False, mode, getattr(e, "sqlstate", None), msg)
    return QueryOutcome(True, mode)


def run_suite(conn: Any, suite: Sequence[SuiteQuery], *, timeout_ms: int) -> list[QueryOutcome]:
    return [run_query(conn, q.text, timeout_ms=timeout_ms) for q in suite]


@dataclass(frozen=True)
class Comparison:
    """A suite run on a reference schema and on a schema under test. Pure data."""

    ok: list[int]
    regressions: list[int]  # ok on the reference, failed on the one under test
    broken: list[int]  # failed on the reference already (not counted)
    fixed: list[int]  # failed on the reference, ok on the one under test


def compare(reference: Sequence[QueryOutcome], under_test: Sequence[QueryOutcome]) -> Comparison:
    ok, reg, broken, fixed = [], [], [], []
    for i, (a, b) in enumerate(zip(reference, under_test)):
        if a.ok and b.ok:
            ok.append(i)
        elif a.ok:
            reg.append(i)
        elif b.ok:
            fixed.append(i)
            broken.append(i)
        else:
            broken.append(i)
    return Comparison(ok, reg, broken, fixed)


# -- expand / contract ----------------------------------------------------------------------------


def classify_expand_only(migrations: Sequence[Migration]) -> tuple[bool, list[str], str]:
    """(expand-only?, why not, which classifier): every pending migration must be ``expand`` for the
    lint module's classifier (:func:`vigil.deploy.migrations.lint.lint_migrations`); ``contract``,
    ``data-dependent`` and ``unknown`` all count as not expand-only (conservative: the forward check
    is then skipped, never wrongly passed)."""
    from vigil.deploy.migrations.lint import lint_migrations

    report = lint_migrations(migrations, display=lambda p: Path(p).name)
    reasons = [f"{c.file}: {c.cls}: {c.why}" for c in report.migrations if c.cls != "expand"]
    return (not reasons, reasons, "lint")


# -- cloning -------------------------------------------------------------------------------------------


class CloneError(Exception):
    """The scratch database could not be built; the message says which step and why."""


def _pg_env(url: str, dbname: str | None = None) -> tuple[list[str], dict[str, str]]:
    """``--dbname`` conninfo (no password) and an environment (PGPASSWORD) for the client programs."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    d = conninfo_to_dict(runner.libpq_url(url))
    password = d.pop("password", None)
    if dbname:
        d["dbname"] = dbname
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(LC_ALL="C", LANG="C")
    if password:
        env["PGPASSWORD"] = str(password)
    return [f"--dbname={make_conninfo(**{k: str(v) for k, v in d.items()})}"], env


def _run(cmd: list[str], env: dict[str, str], *, what: str, input_path: Path | None = None, output_path: Path | None = None,
         timeout: float = 1800) -> None:
    try:
        with open(input_path, "rb") if input_path else open(os.devnull, "rb") as fin, \
                open(output_path, "wb") if output_path else open(os.devnull, "wb") as fout:
            p = subprocess.run(cmd, env=env, stdin=fin, stdout=fout, stderr=subprocess.PIPE, timeout=timeout)
    except FileNotFoundError:
        raise CloneError(f"{what}: {cmd[0]} not found") from None
    except subprocess.TimeoutExpired:
        raise CloneError(f"{what}: {Path(cmd[0]).name} did not finish within {timeout:g}s") from None
    if p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip()
        lines = [ln for ln in err.splitlines() if ln.strip()]
        raise CloneError(f"{what}: {Path(cmd[0]).name} exited {p.returncode}: " + " | ".join(lines[-5:]))


@dataclass
class CloneInfo:
    tables: int = 0
    sampled_rows: int = 0
    ledger_rows: int = 0
    sequences: int = 0
    notes: list[str] = field(default_factory=list)


def _fk_edges(conn: Any) -> list[tuple[str, list[str], list[str], str, list[str], list[str]]]:
    """(child, child cols, their types, parent, parent cols) of every foreign key between app tables."""
    return conn.execute(
        """SELECT format('%I.%I', cn.nspname, c.relname),
                  array_agg(quote_ident(ca.attname) ORDER BY k.ord), array_agg(format_type(ca.atttypid, ca.atttypmod) ORDER BY k.ord),
                  format('%I.%I', pn.nspname, p.relname), array_agg(quote_ident(pa.attname) ORDER BY k.ord)
             FROM pg_constraint f
             CROSS JOIN LATERAL unnest(f.conkey, f.confkey) WITH ORDINALITY AS k(ck, pk, ord)
             JOIN pg_class c ON c.oid = f.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
             JOIN pg_class p ON p.oid = f.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
             JOIN pg_attribute ca ON ca.attrelid = f.conrelid AND ca.attnum = k.ck
             JOIN pg_attribute pa ON pa.attrelid = f.confrelid AND pa.attnum = k.pk
            WHERE f.contype = 'f' AND f.conparentid = 0
            GROUP BY f.oid, cn.nspname, c.relname, pn.nspname, p.relname"""
    ).fetchall()


def _leaves(conn: Any) -> dict[str, list[str]]:
    """Each partitioned table and its leaf partitions (the tables that hold its rows)."""
    return dict(conn.execute(
        """SELECT format('%I.%I', n.nspname, c.relname), array_agg(format('%I.%I', ln.nspname, l.relname) ORDER BY 1)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN LATERAL pg_partition_tree(c.oid) t
             JOIN pg_class l ON l.oid = t.relid JOIN pg_namespace ln ON ln.oid = l.relnamespace
            WHERE c.relkind = 'p' AND t.isleaf
            GROUP BY 1"""
    ).fetchall())  # fmt: skip


def _tables(conn: Any, ledger_table: str) -> list[tuple[str, list[str], str]]:
    """(qualified name, insertable columns, ORDER BY) of every plain table to sample (partitions, not their parents)."""
    n = schema_dump.SYSTEM_SCHEMAS_SQL
    return conn.execute(
        f"""SELECT format('%%I.%%I', ns.nspname, c.relname),
                  array_agg(quote_ident(a.attname) ORDER BY a.attnum) FILTER (WHERE a.attgenerated = ''),
                  COALESCE((SELECT string_agg(quote_ident(pa.attname), ', ' ORDER BY k.ord)
                              FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(att, ord)
                              JOIN pg_attribute pa ON pa.attrelid = c.oid AND pa.attnum = k.att
                             WHERE i.indrelid = c.oid AND i.indisprimary), 'ctid')
             FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE c.relkind = 'r' AND {n.replace('n.nspname', 'ns.nspname')}
              AND NOT (ns.nspname || '.' || c.relname = %s)
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
            GROUP BY ns.nspname, c.relname, c.oid ORDER BY 1""",
        (schema_dump.qualified(ledger_table),),
    ).fetchall()


def sample_order(tables: Iterable[str], edges: Iterable[tuple[str, str]]) -> tuple[list[str], set[tuple[str, str]]]:
    """Tables with parents before children, and the FK edges (child, parent) that lie on a cycle
    (self references included): rows are sampled along those only where the key is NULL. Pure."""
    tables = sorted(set(tables))
    parents: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in edges:
        if child in parents and parent in parents:
            parents[child].add(parent)
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comp: dict[str, int] = {}
    counter = [0, 0]

    def strong(v: str) -> None:
        work = [(v, iter(sorted(parents[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(parents[w]))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp[w] = counter[1]
                    if w == node:
                        break
                counter[1] += 1

    for t in tables:
        if t not in index:
            strong(t)
    cyclic = {(c, p) for c in tables for p in parents[c] if comp[c] == comp[p]}
    # Tarjan emits components in reverse topological order of the "child -> parent" graph: parents first
    order = sorted(tables, key=lambda t: (comp[t], t))
    return order, cyclic


def clone_database(src: Any, stage_url: str, scratch: str, *, ledger_table: str, sample_rows: int, pg_bin: str) -> CloneInfo:
    """Create ``scratch`` on the Stage server with Stage's schema, ledger rows, sequence positions
    and a consistent sample of ``sample_rows`` rows per table. Raises :class:`CloneError`."""
    import psycopg
    from psycopg import sql

    info = CloneInfo()
    enc, collate, ctype = src.execute(
        "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    try:
        src.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
            sql.Identifier(scratch), sql.Literal(enc), sql.Literal(collate), sql.Literal(ctype)))
    except psycopg.Error as e:
        raise CloneError(f"cannot create the scratch database {scratch}: {runner.first_line(e)} "
                         "(the Stage role needs CREATEDB)") from None
    bin_dir = Path(pg_bin)
    src_args, src_env = _pg_env(stage_url)
    dst_args, dst_env = _pg_env(stage_url, scratch)
    common = ["--schema-only", "--no-owner", "--no-privileges", "--no-subscriptions", "--no-publications"]
    psql = [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", *dst_args, "-f"]
    with tempfile.TemporaryDirectory(prefix="vigil-verify-") as tmp:
        pre, post = Path(tmp) / "pre.sql", Path(tmp) / "post.sql"
        _run([str(bin_dir / "pg_dump"), *common, "--section=pre-data", *src_args], src_env, what="dumping Stage's schema", output_path=pre)
        _run([str(bin_dir / "pg_dump"), *common, "--section=post-data", *src_args], src_env, what="dumping Stage's schema", output_path=post)
        _run([*psql, str(pre)], dst_env, what="loading the schema into the scratch database")
        dst = runner.connect(runner_url(stage_url, scratch), application_name="vigil migrate verify", what="the scratch database")
        try:
            _copy_data(src, dst, info, ledger_table=ledger_table, sample_rows=sample_rows)
        except psycopg.Error as e:
            raise CloneError(f"copying the data sample failed: {runner.first_line(e)}") from None
        finally:
            dst.close()
        _run([*psql, str(post)], dst_env, what="creating indexes, constraints and triggers in the scratch database"
             + (" (a sampled row breaks a constraint?)" if sample_rows else ""))
    return info


def runner_url(url: str, dbname: str) -> str:
    """``url`` with another database name (password and options kept)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    d = conninfo_to_dict(runner.libpq_url(url))
    d["dbname"] = dbname
    return make_conninfo(**{k: str(v) for k, v in d.items()})


def _copy_rows(src: Any, dst: Any, select: Any, params: Sequence[Any], table: str, cols: list[str]) -> int:
    from psycopg import sql

    n = 0
    target = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.SQL(table), sql.SQL(", ").join(sql.SQL(c) for c in cols))
    with src.cursor().copy(sql.SQL("COPY ({}) TO STDOUT").format(select), params or None) as out, \
            dst.cursor().copy(target) as into:
        for block in out:
            n += bytes(block).count(b"\n")
            into.write(block)
    return n


def _copy_data(src: Any, dst: Any, info: CloneInfo, *, ledger_table: str, sample_rows: int) -> None:
    from psycopg import sql

    with src.transaction():
        # one snapshot for the whole sample: parents and children agree
        src.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # the ledger, in full: verify plans from Stage's ledger, exactly as apply will
        led = schema_dump.qualified(ledger_table)
        has_ledger = src.execute("SELECT to_regclass(%s) IS NOT NULL", (led,)).fetchone()[0]
        if has_ledger:
            cols = [r[0] for r in src.execute(
                "SELECT quote_ident(attname) FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum", (led,)).fetchall()]
            t = sql.SQL(".").join(sql.Identifier(p) for p in led.split(".")).as_string(src)
            info.ledger_rows = _copy_rows(src, dst, sql.SQL("SELECT {} FROM {}").format(
                sql.SQL(", ").join(sql.SQL(c) for c in cols), sql.SQL(t)), (), t, cols)
        tables = {name: (cols, order) for name, cols, order in _tables(src, ledger_table)}
        info.tables = len(tables)
        if sample_rows > 0 and tables:
            # a foreign key of (or to) a partitioned table holds for (or points into) its leaf partitions
            leaves = _leaves(src)
            fks = [(c, cc, ct, p, pc) for child, cc, ct, p, pc in _fk_edges(src) for c in leaves.get(child, [child])]
            order, cyclic = sample_order(tables, [(c, leaf) for c, _, _, p, _ in fks for leaf in leaves.get(p, [p])])
            for name in order:
                cols, order_by = tables[name]
                conds: list[Any] = []
                params: list[Any] = []
                for child, ccols, ctypes, parent, pcols in fks:
                    if child != name or not (parent in tables or parent in leaves):
                        continue
                    nulls = [sql.SQL("{} IS NULL").format(sql.SQL(c)) for c in ccols]
                    if any((child, leaf) in cyclic for leaf in leaves.get(parent, [parent])):
                        conds.append(sql.SQL("({})").format(sql.SQL(" OR ").join(nulls)))
                        continue
                    # the parent's keys that made it into the scratch database
                    keys = dst.execute(sql.SQL("SELECT DISTINCT {} FROM {}").format(
                        sql.SQL(", ").join(sql.SQL(f"{c}::text") for c in pcols), sql.SQL(parent))).fetchall()
                    arrays = [[k[i] for k in keys] for i in range(len(pcols))]
                    unnest = sql.SQL(", ").join(sql.SQL("%s::text[]::{}[]").format(sql.SQL(t)) for t in ctypes)
                    conds.append(sql.SQL("({} OR ({}) IN (SELECT * FROM unnest({})))").format(
                        sql.SQL(" OR ").join(nulls), sql.SQL(", ").join(sql.SQL(c) for c in ccols), unnest))
                    params.extend(arrays)
                where = sql.SQL(" WHERE {}").format(sql.SQL(" AND ").join(conds)) if conds else sql.SQL("")
                select = sql.SQL("SELECT {} FROM {}{} ORDER BY {} LIMIT {}").format(
                    sql.SQL(", ").join(sql.SQL(c) for c in cols), sql.SQL(name), where, sql.SQL(order_by), sql.Literal(sample_rows))
                info.sampled_rows += _copy_rows(src, dst, select, params, name, cols)
        # sequences where Stage has them, so sampled ids and nextval() do not collide
        seqs = src.execute(
            "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences WHERE last_value IS NOT NULL"
        ).fetchall()
        for seq, value in seqs:
            if dst.execute("SELECT to_regclass(%s) IS NOT NULL", (seq,)).fetchone()[0]:
                dst.execute("SELECT setval(%s::regclass, %s)", (seq, value))
                info.sequences += 1


# -- the report -------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    status: str  # ok | failed | skipped
    summary: str
    details: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "summary": self.summary, "details": list(self.details), "data": self.data}


CHECK_NAMES = ("plan", "clone", "apply", "backward-compat", "forward-compat", "down")


@dataclass
class VerifyReport:
    stage: str
    scratch_database: str | None = None
    release: str | None = None
    generated_at: datetime | None = None
    pending: list[Migration] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    kept: bool = False

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def add(self, name: str, status: str, summary: str, details: Iterable[str] = (), **data: Any) -> Check:
        c = Check(name, status, summary, list(details), data)
        self.checks.append(c)
        return c

    def skip_rest(self, why: str) -> None:
        for n in CHECK_NAMES:
            if self.check(n) is None:
                self.add(n, "skipped", why)

    @property
    def verdict(self) -> str:
        return "fail" if any(c.status == "failed" for c in self.checks) else "pass"

    @property
    def exit_code(self) -> int:
        return exitcodes.NO if self.verdict == "fail" else exitcodes.OK

    def to_dict(self) -> dict:
        order = {n: i for i, n in enumerate(CHECK_NAMES)}
        return {
            "format": VERDICT_FORMAT,
            "kind": "vigil-migrate-verify",
            "verdict": self.verdict,
            "stage": self.stage,
            "release": self.release,
            "generated_at": self.generated_at.isoformat() if self.generated_at else None,
            "scratch_database": self.scratch_database,
            "scratch_kept": self.kept,
            "pending": [{"version": m.version, "id": m.id, "checksum": runner.checksum(m.up_sql)} for m in self.pending],
            "checks": [c.to_dict() for c in sorted(self.checks, key=lambda c: order.get(c.name, 99))],
        }


def verdict_covers(verdict: dict, migrations: Sequence[Migration], pending_ids: Sequence[str] | None = None) -> tuple[bool, str]:
    """Whether a saved verdict (``VerifyReport.to_dict()``) passed for exactly these migration files:
    every migration it verified has the same checksum now, and (when given) the pending set is the same.
    For a deploy gate: ``ok, why = verdict_covers(json.load(f), load_migrations(dir))``. Pure."""
    if verdict.get("kind") != "vigil-migrate-verify":
        return False, "not a vigil migrate verify verdict"
    if verdict.get("verdict") != "pass":
        failed = [c["name"] for c in verdict.get("checks", []) if c.get("status") == "failed"]
        return False, f"verify failed ({', '.join(failed) or 'no checks'})"
    now = {m.id: runner.checksum(m.up_sql) for m in migrations}
    for p in verdict.get("pending", []):
        if now.get(p["id"]) != p["checksum"]:
            return False, f"{p['id']} changed (or is gone) since it was verified"
    if pending_ids is not None and sorted(pending_ids) != sorted(p["id"] for p in verdict.get("pending", [])):
        return False, "the pending migrations differ from the verified ones"
    return True, "verified"


def read_verdict(path: str | Path) -> dict:
    """A verdict file written by :func:`write_verdict` (``verify --out``); :class:`UsageError` when unreadable."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise UsageError(f"{p}: no migration verdict here", hint="run `vigil migrate verify --out PATH` first") from None
    except (OSError, ValueError) as e:
        raise UsageError(f"{p}: not a readable verdict: {e}", hint="run `vigil migrate verify --out PATH` again") from None
    if not isinstance(data, dict) or data.get("kind") != "vigil-migrate-verify" or data.get("format") != VERDICT_FORMAT:
        raise UsageError(f"{p}: not a vigil migrate verify verdict (format {VERDICT_FORMAT})")
    return data


def write_verdict(report: VerifyReport, path: str | Path) -> None:
    """Write the verdict JSON atomically (a temp file renamed over ``path``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    os.replace(tmp, p)


# -- the rehearsal ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyOptions:
    ledger_table: str
    lock_timeout_ms: int | None = 5000
    statement_timeout_ms: int | None = 900_000
    sample_rows: int = 0
    previous: Sequence[SuiteQuery] | None = None
    next: Sequence[SuiteQuery] | None = None
    from_pg_stat_statements: bool = False
    stat_statements_limit: int = DEFAULT_STAT_STATEMENTS_LIMIT
    query_timeout_ms: int = DEFAULT_QUERY_TIMEOUT_MS
    pg_bin: str = DEFAULT_PG_BIN
    keep: bool = False
    release: str | None = None
    actor: str | None = None


def _suite_details(suite: Sequence[SuiteQuery], idx: Iterable[int], outcomes: Sequence[QueryOutcome], prefix: str) -> list[str]:
    out = []
    for i in idx:
        o = outcomes[i]
        text = " ".join(suite[i].text.split())
        text = text if len(text) <= 160 else text[:157] + "..."
        out.append(f"{prefix}{suite[i].source}: {text} -> {o.sqlstate or ''} {o.message}".replace("  ", " "))
    return out


def _suite_check(report: VerifyReport, name: str, suite: Sequence[SuiteQuery], reference: Sequence[QueryOutcome],
                 under_test: Sequence[QueryOutcome], *, ref_label: str, test_label: str) -> None:
    c = compare(reference, under_test)
    details = _suite_details(suite, c.regressions, under_test, f"works on the {ref_label} schema, fails on the {test_label}: ")
    details += _suite_details(suite, [i for i in c.broken if i not in c.fixed], reference,
                              f"fails on the {ref_label} schema already (not counted): ")
    details += _suite_details(suite, c.fixed, reference, f"fails on the {ref_label} schema, works on the {test_label} (not counted): ")
    prepared = sum(1 for o in under_test if o.mode == "prepared")
    data = {"statements": len(suite), "ok": len(c.ok), "regressions": len(c.regressions), "not_comparable": len(c.broken),
            "prepared_only": prepared,
            "results": [{"source": q.source, ref_label: a.to_dict(), test_label: b.to_dict()} for q, a, b in zip(suite, reference, under_test)]}
    how = f" ({prepared} with $n parameters: prepared, not run)" if prepared else ""
    if c.regressions:
        report.add(name, "failed", f"{len(c.regressions)} of {len(suite)} statements work on the {ref_label} schema but fail on the "
                   f"{test_label}{how}", details, **data)
    else:
        report.add(name, "ok", f"{len(c.ok)} of {len(suite)} statements work on both schemas{how}"
                   + (f"; {len(c.broken)} fail on the {ref_label} schema already" if c.broken else ""), details, **data)


def verify(stage_url: str, migrations: Sequence[Migration], opts: VerifyOptions, *, on_event: Event | None = None,
           generated_at: datetime | None = None, classify: Callable[[Sequence[Migration]], tuple[bool, list[str], str]] = classify_expand_only,
           scratch_name: str | None = None) -> VerifyReport:
    """Rehearse the pending migrations on a clone of Stage; one :class:`Check` per step.

    Raises :class:`~vigil.deploy.migrations.runner.MigrationDbError` (exit 3) when Stage cannot be
    reached; every failure after that is a check in the report."""
    import psycopg
    from psycopg import sql

    def event(kind: str, **data: Any) -> None:
        if on_event:
            on_event(kind, data)

    report = VerifyReport(runner.redact(stage_url), release=opts.release, generated_at=generated_at)
    src = runner.connect(stage_url, application_name="vigil migrate verify", what="the Stage database",
                         hint="check the Stage URL (--stage-url or the environment variable in migrations.stage.url_env)")
    scratch = None
    try:
        # plan from Stage's ledger, exactly as apply will
        try:
            rows = runner.Ledger(src, opts.ledger_table).rows()
        except psycopg.Error as e:
            raise runner.MigrationDbError(f"cannot read the ledger on Stage: {runner.first_line(e)}", hint=runner.DB_HINT) from None
        plan = runner.make_plan(migrations, rows, retry_failed=True)
        report.pending = list(plan.to_run)
        if plan.problems:
            report.add("plan", "failed", "Stage's ledger and the migration files disagree", [p.message + f" ({p.hint})" for p in plan.problems],
                       problems=[p.to_dict() for p in plan.problems])
            report.skip_rest("the plan failed")
            return report
        if not plan.to_run:
            report.add("plan", "ok", "nothing pending: Stage has every migration")
            report.skip_rest("nothing pending")
            return report
        report.add("plan", "ok", f"{len(plan.to_run)} pending: {', '.join(m.id for m in plan.to_run)}",
                   [f"failed on Stage before, retried here: {s.id}" for s in plan.states if s.state in ("failed", "interrupted")])
        event("check", name="plan", status="ok")

        previous = list(opts.previous) if opts.previous is not None else None
        if opts.from_pg_stat_statements:
            previous = (previous or []) + capture_pg_stat_statements(src, ledger_table=opts.ledger_table, limit=opts.stat_statements_limit)

        scratch = scratch_name or f"vigil_verify_{uuid.uuid4().hex[:12]}"
        report.scratch_database = scratch
        event("clone", database=scratch, sample_rows=opts.sample_rows)
        try:
            info = clone_database(src, stage_url, scratch, ledger_table=opts.ledger_table, sample_rows=opts.sample_rows, pg_bin=opts.pg_bin)
        except CloneError as e:
            report.add("clone", "failed", str(e), ["the Stage role needs CREATEDB, and --pg-bin must hold pg_dump and psql "
                                                   "of at least Stage's major version"])
            report.skip_rest("the clone failed")
            return report
        what = f"schema of {info.tables} tables" + (f" and {info.sampled_rows} sampled rows (up to {opts.sample_rows} per table)" if opts.sample_rows else "")
        report.add("clone", "ok", f"scratch database {scratch}: {what}, {info.ledger_rows} ledger rows, {info.sequences} sequence positions",
                   tables=info.tables, sampled_rows=info.sampled_rows, ledger_rows=info.ledger_rows)
        event("check", name="clone", status="ok")

        conn = runner.connect(runner_url(stage_url, scratch), application_name="vigil migrate verify", what="the scratch database")
        try:
            _rehearse(conn, report, migrations, plan.to_run, previous, opts, classify, event)
        finally:
            conn.close()
        return report
    finally:
        if scratch and not opts.keep:
            try:
                src.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(scratch)))
            except psycopg.Error as e:
                event("warning", message=f"could not drop the scratch database {scratch}: {runner.first_line(e)}")
        report.kept = bool(scratch and opts.keep)
        src.close()


def _rehearse(conn: Any, report: VerifyReport, migrations: Sequence[Migration], pending: Sequence[Migration],
              previous: list[SuiteQuery] | None, opts: VerifyOptions, classify: Callable, event: Callable) -> None:
    before = schema_dump.snapshot(conn, exclude=[opts.ledger_table])
    try:
        expand_only, contracting, classifier = classify(pending)
    except Exception as e:  # a classifier bug must not pass the forward check: treat as not expand-only
        expand_only, contracting, classifier = False, [f"the classifier failed: {runner.first_line(e)}"], "lint"
    t = opts.query_timeout_ms
    prev_old = run_suite(conn, previous, timeout_ms=t) if previous else None
    next_old = run_suite(conn, opts.next, timeout_ms=t) if opts.next and expand_only else None

    ropts = runner.ApplyOptions(
        ledger_table=opts.ledger_table, lock_timeout_ms=opts.lock_timeout_ms, statement_timeout_ms=opts.statement_timeout_ms,
        lock_retries=0, lock_wait=0, retry_failed=True, actor=opts.actor,
    )
    up = runner.apply_on(conn, migrations, ropts, database=report.scratch_database or "", sleep=lambda s: None)
    applied = [r for r in up.results if r.status == "applied"]
    timings = [f"{r.id}: {r.duration_ms} ms{' (outside a transaction: ' + r.reason + ')' if not r.transactional else ''}" for r in up.results if r.status == "applied"]
    if up.status != "ok":
        failed = next((r for r in up.results if r.status == "failed"), None)
        details = timings + ([f"{failed.id} failed: {failed.failure.text}"] if failed and failed.failure else [])
        details += [p.message for p in up.plan.problems] + [f"not run: {x}" for x in up.not_run] + (failed.remains if failed else [])
        summary = (f"{failed.id} failed at {Path(failed.failure.file).name}:{failed.failure.line}: {failed.failure.sqlstate} {failed.failure.message}"
                   if failed and failed.failure else "the runner refused to apply")
        report.add("apply", "failed", summary, details, results=[r.to_dict() for r in up.results])
        if next_old is not None:
            report.add("forward-compat", "skipped", "the migrations did not apply, so there is no new schema to compare with")
        report.skip_rest("the migrations did not apply")
        return
    limits = ", ".join(f"{k} {v} ms" for k, v in (("lock_timeout", opts.lock_timeout_ms), ("statement_timeout", opts.statement_timeout_ms)) if v)
    report.add("apply", "ok", f"{len(applied)} migration(s) applied" + (f" within {limits}" if limits else ""), timings,
               results=[r.to_dict() for r in up.results])
    event("check", name="apply", status="ok")

    if previous:
        prev_new = run_suite(conn, previous, timeout_ms=t)
        _suite_check(report, "backward-compat", previous, prev_old or [], prev_new, ref_label="old", test_label="new")
    else:
        report.add("backward-compat", "skipped", "no query suite of the previous release (migrations.queries.previous, "
                   "--previous-queries or --from-pg-stat-statements)")
    if not opts.next:
        report.add("forward-compat", "skipped", "no query suite of the new release (migrations.queries.next or --next-queries)")
    elif not expand_only:
        report.add("forward-compat", "skipped", f"the pending migrations are not expand-only ({classifier} classifier), so the new "
                   "release cannot be expected to run on the old schema", contracting, classifier=classifier)
    else:
        next_new = run_suite(conn, opts.next, timeout_ms=t)
        _suite_check(report, "forward-compat", opts.next, next_new, next_old or [], ref_label="new", test_label="old")
    for name in ("backward-compat", "forward-compat"):
        c = report.check(name)
        if c:
            event("check", name=name, status=c.status)

    # down: newest first, back to where Stage is
    after_up = schema_dump.snapshot(conn, exclude=[opts.ledger_table])
    down_to = min(m.version for m in pending) - 1
    dopts = runner.ApplyOptions(
        ledger_table=opts.ledger_table, lock_timeout_ms=opts.lock_timeout_ms, statement_timeout_ms=opts.statement_timeout_ms,
        lock_retries=0, lock_wait=0, down_to=down_to, actor=opts.actor,
    )
    down = runner.apply_on(conn, migrations, dopts, database=report.scratch_database or "", sleep=lambda s: None)
    if down.plan.problems:
        report.add("down", "failed", "; ".join(p.message for p in down.plan.problems), [p.hint for p in down.plan.problems])
    elif down.status != "ok":
        failed = next((r for r in down.results if r.status == "failed"), None)
        report.add("down", "failed",
                   f"{failed.id} down failed at {Path(failed.failure.file).name}:{failed.failure.line}: {failed.failure.sqlstate} "
                   f"{failed.failure.message}" if failed and failed.failure else "the down migrations did not run",
                   [f"not run: {x}" for x in down.not_run], results=[r.to_dict() for r in down.results])
    else:
        restored = schema_dump.snapshot(conn, exclude=[opts.ledger_table])
        diffs = schema_dump.diff(before, restored)
        notes = schema_dump.order_notes(before, restored)
        changed_by_up = len(schema_dump.diff(before, after_up))
        if diffs:
            report.add("down", "failed", f"after the down migrations {len(diffs)} object(s) differ from the schema before the migrations",
                       [d.message for d in diffs] + [f"note: {n}" for n in notes], differences=[d.to_dict() for d in diffs])
        else:
            report.add("down", "ok", f"the down migrations ({', '.join(r.id for r in down.results)}) restore the schema exactly "
                       f"({changed_by_up} object(s) changed by the up migrations)", [f"note: {n}" for n in notes])
    event("check", name="down", status=report.check("down").status)  # type: ignore[union-attr]
