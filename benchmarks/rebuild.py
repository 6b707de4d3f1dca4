"""Index rebuild of 1M generated documents through the outbox re-seed path into the embedded engine.

A throwaway PostgreSQL 15 cluster gets an outbox table with N generated product documents (one
upsert each, plus optional churn: later updates and deletes of some of them). Then
``vigil.search.rebuild`` re-seeds an empty embedded (SQLite FTS5) index from that outbox, the
way phase 5 of a DR drill does, and ``check_index`` compares it with the database. A snapshot of
the result and a restore from it are timed too. The plan's promise: rebuild <= 60 min for 1M
docs; the aim here: < 5 min.

Run: .venv/bin/python benchmarks/rebuild.py [--docs 1000000] [--batch-size 5000] [--churn 0.0]
Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from pgcluster import PgCluster  # noqa: E402

from vigil.search import EmbeddedEngine, check_index, create_outbox_table, load_snapshot, rebuild  # noqa: E402
from vigil.search.outbox import connect  # noqa: E402
from vigil.search.spec import CollectionSpec  # noqa: E402

WORDS = "'red','blue','green','wool','leather','running','shoe','hat','scarf','boot','linen','cotton','trail','city','winter','summer'"
FIELDS = [
    {"name": "title", "type": "string"},
    {"name": "description", "type": "string"},
    {"name": "tags", "type": "string[]", "facet": True},
    {"name": "brand", "type": "string", "facet": True},
    {"name": "price", "type": "float"},
    {"name": "stock", "type": "int32"},
]


def generate(url: str, n: int, churn: float) -> tuple[int, float]:
    t = time.perf_counter()
    with connect(url) as conn:
        create_outbox_table(conn)
        conn.execute(
            f"""
            INSERT INTO search_outbox (collection, doc_id, op, document)
            SELECT 'products', 'p' || g, 'upsert', jsonb_build_object(
                'title', initcap(w[1 + g %% 16]) || ' ' || w[1 + (g / 16) %% 16] || ' ' || w[1 + (g / 256) %% 16] || ' #' || g,
                'description', 'A ' || w[1 + (g / 7) %% 16] || ' ' || w[1 + (g / 3) %% 16] || ' item made of '
                               || w[1 + (g / 11) %% 16] || ', ref ' || md5(g::text),
                'tags', jsonb_build_array(w[1 + g %% 16], w[1 + (g / 5) %% 16]),
                'brand', 'brand-' || (g %% 500),
                'price', round(((g * 7919) %% 100000) / 100.0, 2),
                'stock', (g * 31) %% 1000)
            FROM generate_series(1::bigint, %s::bigint) g, (SELECT ARRAY[{WORDS}] AS w) words
            """,
            (n,),
        )
        extra = int(n * churn)
        if extra:
            conn.execute(
                """
                INSERT INTO search_outbox (collection, doc_id, op, document)
                SELECT 'products', 'p' || (1 + (g * 104729) %% %s),
                       CASE WHEN g %% 5 = 0 THEN 'delete' ELSE 'upsert' END,
                       CASE WHEN g %% 5 = 0 THEN NULL ELSE jsonb_build_object(
                           'title', 'Updated ' || g, 'description', 'changed', 'tags', jsonb_build_array('updated'),
                           'brand', 'brand-0', 'price', 1.5, 'stock', 1) END
                FROM generate_series(1::bigint, %s::bigint) g
                """,
                (n, extra),
            )
        rows = conn.execute("SELECT count(*) FROM search_outbox").fetchone()[0]
        conn.execute("ANALYZE search_outbox")
    return rows, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--churn", type=float, default=0.0, help="extra outbox rows (updates, 1 in 5 a delete) as a share of --docs")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vigil-rebuild-"))
    print(f"rebuild benchmark: {args.docs:,} documents, batch {args.batch_size}, churn {args.churn:.0%}; work dir {work}")
    try:
        with PgCluster(settings={"shared_buffers": "256MB", "max_wal_size": "4GB"}) as pg:
            url = pg.url()
            rows, gen_s = generate(url, args.docs, args.churn)
            print(f"  outbox generated: {rows:,} rows in {gen_s:.1f} s")

            eng = EmbeddedEngine(work / "index.db")
            spec = CollectionSpec(name="products", fields=FIELDS)
            last = [time.perf_counter()]

            def progress(applied: int, watermark: int) -> None:
                now = time.perf_counter()
                if now - last[0] >= 15:
                    last[0] = now
                    print(f"    ... {applied:,} rows applied, watermark {watermark:,}", flush=True)

            res = rebuild(eng, None, url, collections=[spec], batch_size=args.batch_size, progress=progress)
            print(
                f"  re-seed from the outbox: {res.applied:,} rows in {res.batches:,} batches, "
                f"{res.seconds:.1f} s total ({res.reseed_seconds:.1f} s re-seed), {res.docs_per_second:,.0f} docs/s"
            )
            print(f"  index: {res.count:,} documents, watermark {res.watermark:,}, {len(res.errors)} refused, "
                  f"file {os.path.getsize(work / 'index.db') / 1e6:,.0f} MB")

            t = time.perf_counter()
            count_spec = CollectionSpec(name="products", count_sql="SELECT count(*) FROM (SELECT DISTINCT ON (doc_id) op FROM search_outbox ORDER BY doc_id, id DESC) s WHERE op <> 'delete'")
            chk = check_index(eng, url, collections=[count_spec])
            print(f"  check against the database: ok={chk.ok} index {chk.index_count:,} / db {chk.db_count:,}, "
                  f"watermark {chk.index_watermark:,} / {chk.db_watermark:,} in {time.perf_counter() - t:.1f} s")

            t = time.perf_counter()
            hits = eng.search("products", "wool boot", limit=10)
            print(f"  search 'wool boot': {len(hits)} hits in {(time.perf_counter() - t) * 1000:.1f} ms")

            t = time.perf_counter()
            snap = eng.snapshot(work / "snap")
            snap_s = time.perf_counter() - t
            print(f"  snapshot (backup API copy + schema + JSONL export + SHA-256): {snap_s:.1f} s, "
                  f"{sum(snap.files.values()) / 1e6:,.0f} MB")
            eng.close()

            t = time.perf_counter()
            with EmbeddedEngine(work / "restored.db") as fresh:
                res2 = rebuild(fresh, load_snapshot(work / "snap"), url, collections=[spec], batch_size=args.batch_size)
            print(f"  rebuild from that snapshot (verify + restore + empty re-seed): {time.perf_counter() - t:.1f} s "
                  f"(restore {res2.restore_seconds:.1f} s), {res2.count:,} documents")
            print(f"  target: <= 60 min for 1M documents (aim < 5 min): re-seed took {res.seconds / 60:.2f} min")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
