"""The scratch database ``verify`` rehearses in: a clone of Stage, built on the Stage server.

Schema (``pg_dump --schema-only`` piped to ``psql``, the PostgreSQL client programs of
``pg_bin``), the ledger's rows, the sequences' positions, the privileges granted to roles other
than the owner (copied from the catalogs: ``pg_dump --no-privileges`` keeps the load independent
of who owns what on Stage) and a sample of ``sample_rows`` rows per table, chosen so that every
foreign key holds (a child row is sampled only when its parent row is). Indexes, constraints and
triggers are created after the data.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from vigil.deploy.migrations import runner, schema_dump


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
    privileges: int = 0
    notes: list[str] = field(default_factory=list)


def _fk_edges(conn: Any) -> list[tuple[str, list[str], list[str], str, list[str]]]:
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
    """Create ``scratch`` on the Stage server with Stage's schema, ledger rows, sequence positions,
    privileges and a consistent sample of ``sample_rows`` rows per table. Raises :class:`CloneError`."""
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
    dst = runner.connect(runner_url(stage_url, scratch), application_name="vigil migrate verify", what="the scratch database")
    try:
        info.privileges, notes = copy_privileges(src, dst, ledger_table=ledger_table)
        info.notes.extend(notes)
    except psycopg.Error as e:
        raise CloneError(f"copying the privileges failed: {runner.first_line(e)}") from None
    finally:
        dst.close()
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


def copy_privileges(src: Any, dst: Any, *, ledger_table: str) -> tuple[int, list[str]]:
    """Make the clone's privileges those of Stage (GRANT / REVOKE what differs, the owner written
    ``CURRENT_USER``). Returns (statements run, notes about the ones that failed)."""
    import psycopg

    def read(conn: Any) -> dict:
        with conn.cursor() as cur:
            saved = cur.execute("SELECT current_setting('search_path')").fetchone()[0]
            cur.execute("SELECT set_config('search_path', '', false)")
            try:
                return schema_dump.read_privileges(cur, [schema_dump.qualified(ledger_table)])
            finally:
                cur.execute("SELECT set_config('search_path', %s, false)", (saved,))

    want, have = read(src), read(dst)
    statements: list[str] = []
    for key in sorted(want.keys() | have.keys()):
        w, h = want.get(key), have.get(key)
        if w is None or h is None and w[1] is None:
            continue  # an object only one side has (not the clone's business), or a table-level row missing
        obj, col = w[0], w[1]
        target = f"({_quote(col)}) ON {obj}" if col else f"ON {obj}"
        have_entries = set(h[2]) if h else set()
        for entry in sorted(have_entries - set(w[2])):
            grantee, priv = entry.split("=", 1)
            statements.append(f"REVOKE {priv.rstrip('*')} {target} FROM {_grantee(grantee)}")
        for entry in sorted(set(w[2]) - have_entries):
            grantee, priv = entry.split("=", 1)
            statements.append(f"GRANT {priv.rstrip('*')} {target} TO {_grantee(grantee)}"
                              + (" WITH GRANT OPTION" if priv.endswith("*") else ""))
    notes: list[str] = []
    done = 0
    for st in statements:
        try:
            dst.execute(st)
            done += 1
        except psycopg.Error as e:
            if dst.broken:
                raise
            notes.append(f"could not copy a privilege ({st}): {runner.first_line(e)}")
    return done, notes


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _grantee(name: str) -> str:
    return {"PUBLIC": "PUBLIC", "<owner>": "CURRENT_USER"}.get(name, name)  # other names come quoted by regrole
