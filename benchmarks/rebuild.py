"""Index rebuild of 1M generated documents through the outbox re-seed path into the embedded engine,
then the content check on the result.

A throwaway PostgreSQL 15 cluster gets an outbox table with N generated product documents (one
upsert each, plus optional churn: later updates and deletes of some of them). Then
``vigil.search.rebuild`` re-seeds an empty embedded (SQLite FTS5) index from that outbox, the way
phase 5 of a DR drill does, and ``check_index`` compares it with the database document by document.
Then 17 differences are written into the index (5 deleted, 7 modified, 5 ghosts: the audit's case)
and the check, ``repair_index`` and a check after the repair are timed. A snapshot of the index and
a rebuild from it are timed too. The plan's promise: rebuild <= 60 min for 1M docs.

Document shapes (``--shape``):

* ``realistic`` (default): a product catalogue entry of about 1.1 KB of JSON: a title of 4-9 words
  plus brand and model code, a description of 60-180 words (mean 120), 2-6 tags, brand (2,000
  brands), a three-level category path, a nested ``attributes`` object (colour, size, material,
  weight), price, stock, rating and a creation timestamp. Words are drawn from a 30,000-word
  vocabulary of generated pseudo-words (3-13 letters) with a Zipf-like (log-uniform rank)
  distribution, so the full-text index sees a realistic number of distinct terms and a long tail of
  rare ones. Generated in Python (seeded) and loaded with COPY.
* ``small``: the earlier benchmark's shape: about 250 bytes, a 16-word vocabulary (what the README's
  first 61 s figure was measured on).

Run: .venv/bin/python benchmarks/rebuild.py [--docs 1000000] [--shape realistic|small] [--batch-size 5000] [--churn 0.0]
Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from pgcluster import PgCluster  # noqa: E402

from vigil.search import EmbeddedEngine, check_index, create_outbox_table, load_snapshot, rebuild, repair_index  # noqa: E402
from vigil.search.outbox import connect  # noqa: E402
from vigil.search.spec import CollectionSpec  # noqa: E402

SMALL_WORDS = "'red','blue','green','wool','leather','running','shoe','hat','scarf','boot','linen','cotton','trail','city','winter','summer'"
FIELDS = [
    {"name": "title", "type": "string"},
    {"name": "description", "type": "string"},
    {"name": "tags", "type": "string[]", "facet": True},
    {"name": "brand", "type": "string", "facet": True},
    {"name": "category", "type": "string", "facet": True, "optional": True},
    {"name": "attributes", "type": "object", "optional": True, "index": False},
    {"name": "price", "type": "float"},
    {"name": "stock", "type": "int32"},
    {"name": "rating", "type": "float", "optional": True},
    {"name": "created_at", "type": "int64", "optional": True},
]
VOCABULARY = 30_000
CONSONANTS, VOWELS = "bcdfghjklmnprstvwz", "aeiouy"


def vocabulary(n: int = VOCABULARY) -> list[str]:
    """``n`` pseudo-words, 2-6 consonant-vowel syllables and sometimes a final consonant (3-13 letters),
    derived from the MD5 of their rank: the same list on every run."""
    out = []
    for r in range(1, n + 1):
        h = hashlib.md5(str(r).encode()).digest()
        w = "".join(CONSONANTS[h[2 * k] % 18] + VOWELS[h[2 * k + 1] % 6] for k in range(2 + h[13] % 5))
        out.append(w + ("nrst"[h[14] % 4] if h[15] % 2 == 0 else ""))
    return out


def realistic(g: int, words: list[str], rnd: random.Random) -> dict:
    """Product ``g``: words of Zipf-like rank (log-uniform: rank = V ** u), lengths from ``g``."""
    v = len(words)
    pick = lambda k: [words[int(v ** rnd.random()) - 1] for _ in range(k)]  # noqa: E731
    brand = f"brand{(g * 13) % 2000}"
    return {
        "title": " ".join(pick(4 + (g * 7) % 6)).title() + f" {brand} {hashlib.md5(str(g).encode()).hexdigest()[:6].upper()}",
        "description": " ".join(pick(60 + (g * 31) % 121)) + ".",
        "tags": pick(2 + (g * 11) % 5),
        "brand": brand,
        "category": f"{words[g % 40]} > {words[40 + (g // 40) % 60]} > {words[100 + (g // 2400) % 200]}",
        "attributes": {"colour": words[300 + g % 24], "size": ["XS", "S", "M", "L", "XL", "XXL"][g % 6],
                       "material": words[324 + (g // 7) % 30], "weight_g": 50 + (g * 37) % 2000},
        "price": round(((g * 7919) % 100000) / 100.0, 2),
        "stock": (g * 31) % 1000,
        "rating": round(1 + ((g * 17) % 400) / 100.0, 2),
        "created_at": 1700000000 + g * 29,
    }


SMALL_SQL = f"""
INSERT INTO search_outbox (collection, doc_id, op, document)
SELECT 'products', 'p' || g, 'upsert', jsonb_build_object(
    'title', initcap(w[1 + g %% 16]) || ' ' || w[1 + (g / 16) %% 16] || ' ' || w[1 + (g / 256) %% 16] || ' #' || g,
    'description', 'A ' || w[1 + (g / 7) %% 16] || ' ' || w[1 + (g / 3) %% 16] || ' item made of '
                   || w[1 + (g / 11) %% 16] || ', ref ' || md5(g::text),
    'tags', jsonb_build_array(w[1 + g %% 16], w[1 + (g / 5) %% 16]),
    'brand', 'brand-' || (g %% 500),
    'price', round(((g * 7919) %% 100000) / 100.0, 2),
    'stock', (g * 31) %% 1000)
FROM generate_series(%s::bigint, %s::bigint) g, (SELECT ARRAY[{SMALL_WORDS}] AS w) words
"""


def generate(url: str, n: int, churn: float, shape: str) -> tuple[int, float, dict]:
    t = time.perf_counter()
    with connect(url) as conn:
        create_outbox_table(conn)
        if shape == "realistic":
            words, rnd = vocabulary(), random.Random(42)
            with conn.cursor().copy("COPY search_outbox (collection, doc_id, op, document) FROM STDIN") as cp:
                for g in range(1, n + 1):
                    cp.write_row(("products", f"p{g}", "upsert", json.dumps(realistic(g, words, rnd), separators=(",", ":"))))
                    if g % 100_000 == 0:
                        print(f"    ... {g:,} documents generated", flush=True)
        else:
            conn.execute(SMALL_SQL, (1, n))
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
        r = conn.execute(
            "SELECT avg(octet_length(document::text)), avg(array_length(regexp_split_to_array(document->>'description', ' '), 1)), "
            "pg_total_relation_size('search_outbox') FROM search_outbox"
        ).fetchone()
        sample = conn.execute("SELECT document::text FROM search_outbox WHERE id = 1").fetchone()[0]
    shape_info = {"avg_json_bytes": float(r[0]), "avg_description_words": float(r[1] or 0), "outbox_bytes": int(r[2]), "sample": sample}
    return rows, time.perf_counter() - t, shape_info


def pg_cpu_seconds(pg: PgCluster) -> float:
    """CPU seconds used so far by the cluster: the postmaster with its reaped children, plus the live ones."""
    tick = os.sysconf("SC_CLK_TCK")
    pid = int((pg.data_dir / "postmaster.pid").read_text().split()[0])

    def fields(p: int) -> list[str]:
        with open(f"/proc/{p}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    f = fields(pid)
    total = sum(int(x) for x in f[11:15])  # utime, stime, cutime, cstime
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                c = fields(int(d))
            except OSError:
                continue
            if int(c[1]) == pid:
                total += int(c[11]) + int(c[12])
    return total / tick


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=1_000_000)
    ap.add_argument("--shape", choices=["realistic", "small"], default="realistic")
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--churn", type=float, default=0.0, help="extra outbox rows (updates, 1 in 5 a delete) as a share of --docs")
    ap.add_argument("--rebuild-only", action="store_true", help="stop after the re-seed (no check, repair, snapshot)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed run still stops its cluster and removes its files

    work = Path(tempfile.mkdtemp(prefix="vigil-rebuild-"))
    print(f"rebuild benchmark: {args.docs:,} {args.shape} documents, batch {args.batch_size}, churn {args.churn:.0%}; work dir {work}")
    try:
        with PgCluster(settings={"shared_buffers": "256MB", "max_wal_size": "4GB"}) as pg:
            url = pg.url()
            rows, gen_s, shape = generate(url, args.docs, args.churn, args.shape)
            print(f"  outbox generated: {rows:,} rows in {gen_s:.1f} s; documents average {shape['avg_json_bytes']:,.0f} bytes of JSON, "
                  f"descriptions {shape['avg_description_words']:.0f} words; outbox table {shape['outbox_bytes'] / 1e6:,.0f} MB")
            print(f"  a document: {shape['sample'][:400]}{'...' if len(shape['sample']) > 400 else ''}")

            eng = EmbeddedEngine(work / "index.db")
            spec = CollectionSpec(name="products", fields=FIELDS)
            last = [time.perf_counter()]

            def progress(applied: int, watermark: int) -> None:
                now = time.perf_counter()
                if now - last[0] >= 15:
                    last[0] = now
                    print(f"    ... {applied:,} rows applied, watermark {watermark:,}", flush=True)

            load0, cpu0, pgcpu0 = os.getloadavg()[0], time.process_time(), pg_cpu_seconds(pg)
            res = rebuild(eng, None, url, collections=[spec], batch_size=args.batch_size, progress=progress)
            cpu, pgcpu = time.process_time() - cpu0, pg_cpu_seconds(pg) - pgcpu0
            print(
                f"  re-seed from the outbox ({res.mode} tracking): {res.applied:,} rows in {res.batches:,} batches, "
                f"{res.seconds:.1f} s total ({res.reseed_seconds:.1f} s re-seed), {res.docs_per_second:,.0f} docs/s"
            )
            print(
                f"  CPU: {cpu:.0f} s in this process (vigil, SQLite FTS5), {pgcpu:.0f} s in PostgreSQL; load average "
                f"{load0:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores (a wall time well above the CPU "
                "time means the run waited for a core)"
            )
            print(f"  index: {res.count:,} documents, watermark {res.watermark:,}, {len(res.errors)} refused, "
                  f"file {os.path.getsize(work / 'index.db') / 1e6:,.0f} MB")
            with sqlite3.connect(work / "index.db") as raw:
                raw.execute("CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, fts_1, 'row')")
                terms = raw.execute("SELECT count(*) FROM temp.vocab").fetchone()[0]
            print(f"  full-text index: {terms:,} distinct terms")
            if args.rebuild_only:
                eng.close()
                return

            t, cpu0, pgcpu0 = time.perf_counter(), time.process_time(), pg_cpu_seconds(pg)
            chk = check_index(eng, url, collections=[spec])
            c = chk.content["products"]
            print(f"  content check, index equal to the database: ok={chk.ok} in {time.perf_counter() - t:.1f} s "
                  f"(CPU {time.process_time() - cpu0:.0f} s here, {pg_cpu_seconds(pg) - pgcpu0:.0f} s in PostgreSQL; "
                  f"{c['documents']['index']:,} + {c['documents']['source']:,} documents hashed, depth {c['depth']}, "
                  f"{c['ranges_compared']} range hash(es) compared)")

            ids = sorted(str(d["id"]) for d in eng.search("products", "*", limit=40))
            deleted, modified = ids[:5], ids[5:12]
            eng.delete_documents("products", deleted)
            eng.import_documents("products", [{**eng.get("products", k), "price": 0.01} for k in modified]).raise_for_errors()
            eng.import_documents("products", [{**eng.get("products", ids[20]), "id": f"ghost{i}"} for i in range(5)]).raise_for_errors()
            t = time.perf_counter()
            chk = check_index(eng, url, collections=[spec])
            c = chk.content["products"]
            d = chk.diffs["products"]
            print(f"  content check with 17 differences (counts balanced): ok={chk.ok}, {len(d.missing)} missing, {len(d.modified)} modified, "
                  f"{len(d.ghost)} ghost in {time.perf_counter() - t:.1f} s; {c['ranges_compared']} range hashes compared, "
                  f"{c['ranges_differing']} of {c['leaf_ranges']:,} leaf ranges re-read ({c['reread']['source']} + {c['reread']['index']} documents)")
            t = time.perf_counter()
            rep = repair_index(eng, url, chk, collections=[spec])
            print(f"  repair: {sum(len(v) for v in rep.upserted.values())} upserted, {sum(len(v) for v in rep.deleted.values())} deleted, "
                  f"verified ok={rep.ok} in {time.perf_counter() - t:.2f} s")
            t = time.perf_counter()
            chk = check_index(eng, url, collections=[spec])
            print(f"  check after the repair: ok={chk.ok} in {time.perf_counter() - t:.1f} s")

            q = "wool boot" if args.shape == "small" else " ".join(vocabulary()[i] for i in (3, 40))
            t = time.perf_counter()
            hits = eng.search("products", q, limit=10)
            print(f"  search {q!r}: {len(hits)} hits in {(time.perf_counter() - t) * 1000:.1f} ms")

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
            print(f"  peak resident memory of this process: {rss_mb():,.0f} MB")
            print(f"  target: <= 60 min for 1M documents: the re-seed took {res.seconds / 60:.2f} min")
            print("  figures: " + json.dumps({"docs": args.docs, "shape": args.shape, "rebuild_s": round(res.seconds, 1),
                                              "docs_per_s": round(res.docs_per_second)}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
