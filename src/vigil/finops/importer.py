"""``vigil cost import``: FOCUS and CUR 2.0 files (CSV, gzipped CSV, Parquet) into the store.

Reading (:func:`read_files`) checks every row (:mod:`vigil.finops.rows`) and sums the accepted ones;
nothing is written while reading. Writing (:func:`store_rollup`) is one transaction: for each scope
the file covers (a provider's billing account and billing period), the rows an earlier import
stored are deleted and this import's inserted, so a re-import of the same file or period replaces
and never adds. A file with rejected rows stores nothing unless the caller accepts a partial
import (``skip_bad``): a half-read month must not replace a whole one.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, Sequence

from vigil.clock import isoformat
from vigil.errors import UsageError, VigilError
from vigil.finops.rows import Attribution, Mapper, Rejection, Rollup, RowError, detect_format, from_nano, read_rows, to_nano

MAX_FIELD = 1 << 20
IMPORT_LOCK = 7307013
"""The PostgreSQL advisory lock every cost import holds for its transaction."""


class CostInputError(VigilError):
    """A cost file cannot be read, or has rows that are not valid (each named with its line)."""

    code = "cost-input"

    def __init__(self, message: str, *, hint: str | None = None, rejections: Sequence[Rejection] = (), rejected: int = 0) -> None:
        super().__init__(message, hint=hint)
        self.rejections = list(rejections)
        self.rejected = rejected

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["rejected"] = self.rejected
        d["errors"] = [r.to_dict() for r in self.rejections]
        return d


@dataclass
class FileRead:
    name: str
    sha256: str
    kind: str
    rows: int
    rejected: int

    def to_dict(self) -> dict:
        return {"file": self.name, "sha256": self.sha256, "format": self.kind, "rows": self.rows, "rejected": self.rejected}


@dataclass
class ReadResult:
    rollup: Rollup
    files: list[FileRead] = field(default_factory=list)
    kind: str = "focus"
    estimated_days: list[str] = field(default_factory=list)  # Cost Explorer's days still estimated (not final)


def _open_text(p: Path) -> io.TextIOBase:
    raw = open(p, "rb")  # noqa: SIM115 - wrapped and closed by the caller
    head = raw.read(2)
    raw.seek(0)
    stream: Any = gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="", errors="strict")


def _is_parquet(p: Path) -> bool:
    with open(p, "rb") as f:
        return f.read(4) == b"PAR1"


def csv_rows(p: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and ``(line number, fields)`` of a CSV file (gzipped or not)."""
    csv.field_size_limit(MAX_FIELD)
    f = _open_text(p)
    reader = csv.reader(f, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        f.close()
        raise CostInputError(f"{p}: the file is empty", hint="a FOCUS or CUR export starts with a header line") from None
    except UnicodeDecodeError:
        f.close()
        raise CostInputError(f"{p}:1: not UTF-8 text", hint="nothing was stored; export the file as UTF-8 CSV") from None
    except (csv.Error, EOFError, OSError) as e:
        f.close()
        raise CostInputError(f"{p}:1: cannot read the header: {e}") from None

    def it() -> Iterator[tuple[int, list[str]]]:
        try:
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                if not row:
                    continue
                yield reader.line_num, row
        except csv.Error as e:
            raise CostInputError(f"{p}:{reader.line_num}: malformed CSV: {e}", hint="nothing was stored; fix or re-export the file") from None
        except UnicodeDecodeError:
            raise CostInputError(f"{p}: not UTF-8 text near line {reader.line_num}", hint="nothing was stored; export the file as UTF-8") from None
        except (EOFError, OSError) as e:  # a truncated gzip stream
            raise CostInputError(f"{p}: cannot read past line {reader.line_num}: {e}", hint="nothing was stored; the file is damaged") from None
        finally:
            f.close()

    return header, it()


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, datetime):
        return isoformat(v) if v.tzinfo is not None else v.isoformat()
    if isinstance(v, list):  # a Parquet map column: [(key, value), ...]
        try:
            return json.dumps({str(k): ("" if x is None else str(x)) for k, x in v}, sort_keys=True)
        except (TypeError, ValueError):
            return json.dumps(v, default=str)
    if isinstance(v, dict):
        return json.dumps(v, default=str, sort_keys=True)
    if isinstance(v, float):
        return repr(v)
    return str(v)


def parquet_rows(p: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The column names and ``(row number, fields as text)`` of a Parquet file, read in batches."""
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise CostInputError(f"{p}: reading Parquet needs pyarrow", hint="pip install pyarrow, or export CSV") from None
    try:
        pf = pq.ParquetFile(str(p))
    except Exception as e:
        raise CostInputError(f"{p}: not a readable Parquet file: {str(e)[:200]}") from None
    header = list(pf.schema_arrow.names)

    def it() -> Iterator[tuple[int, list[str]]]:
        n = 0
        try:
            for batch in pf.iter_batches(batch_size=65536):
                cols = [[_cell(v) for v in c.to_pylist()] for c in batch.columns]
                for fields in zip(*cols):
                    n += 1
                    yield n, list(fields)
        except CostInputError:
            raise
        except Exception as e:
            raise CostInputError(f"{p}: row {n + 1}: cannot read the Parquet file: {str(e)[:200]}", hint="nothing was stored") from None

    return header, it()


def read_files(paths: Sequence[str | Path], attribution: Attribution, *, currency: str | None = None, kind: str | None = None) -> ReadResult:
    """Check and sum every row of ``paths`` (one import: CUR parts of a month go together)."""
    if not paths:
        raise UsageError("name at least one file to import")
    rollup = Rollup()
    result = ReadResult(rollup)
    kinds: set[str] = set()
    for path in paths:
        p = Path(path)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise CostInputError(f"{p}: no such file") from None
        except OSError as e:
            raise CostInputError(f"{p}: cannot read: {e.strerror}") from None
        if not p.is_file():
            raise CostInputError(f"{p}: not a file")
        if st.st_size == 0:
            raise CostInputError(f"{p}: the file is empty", hint="a FOCUS or CUR export starts with a header line")
        try:
            parquet = _is_parquet(p)
            header, rows = parquet_rows(p) if parquet else csv_rows(p)
        except PermissionError:
            raise CostInputError(f"{p}: permission denied") from None
        fmt = kind or detect_format(header)
        if fmt is None:
            raise CostInputError(
                f"{p}:1: neither FOCUS nor CUR 2.0 columns in the header",
                hint="a FOCUS file has BilledCost and ChargePeriodStart; a CUR 2.0 file line_item_unblended_cost and line_item_usage_start_date",
            )
        kinds.add(fmt)
        try:
            mapper = Mapper(header, fmt, attribution, currency)
        except RowError as e:
            raise CostInputError(f"{p}:1: {e}", hint=f"export the file with the {fmt.upper()} columns") from None
        before_read, before_rej = rollup.read, rollup.rejected
        first_listed = len(rollup.rejections)
        read_rows(rows, mapper, rollup)
        if len(paths) > 1:  # name the file in each of its rejections
            rollup.rejections[first_listed:] = [Rejection(r.line, f"{p.name}: {r.error}") for r in rollup.rejections[first_listed:]]
        result.files.append(FileRead(str(p), _sha256(p), fmt, rollup.read - before_read, rollup.rejected - before_rej))
    result.kind = kinds.pop() if len(kinds) == 1 else "mixed"
    return result


def _sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- the store ----------------------------------------------------------------------------------------


@dataclass
class ImportOutcome:
    import_id: int | None
    kind: str
    files: list[FileRead]
    scopes: list[dict]
    rows_read: int
    rows_rejected: int
    rows_stored: int
    rows_replaced: int
    billed: Decimal
    untagged_rows: int
    untagged_billed: Decimal
    rejections: list[Rejection]
    warnings: list[str]
    stored: bool

    def to_dict(self) -> dict:
        return {
            "import_id": self.import_id,
            "stored": self.stored,
            "format": self.kind,
            "files": [f.to_dict() for f in self.files],
            "scopes": self.scopes,
            "rows_read": self.rows_read,
            "rows_rejected": self.rows_rejected,
            "rows_stored": self.rows_stored,
            "rows_replaced": self.rows_replaced,
            "billed_cost": str(self.billed.quantize(Decimal("0.01"))),
            "untagged": {"rows": self.untagged_rows, "billed_cost": str(self.untagged_billed.quantize(Decimal("0.01")))},
            "errors": [r.to_dict() for r in self.rejections],
            "warnings": self.warnings,
        }


def _scope_parts(scope: str) -> tuple[str, str, str]:
    parts = scope.split(":")
    return parts[0], parts[-2] if len(parts) >= 3 else "", parts[-1]


def store_rollup(store: Any, res: ReadResult, *, at: datetime, actor: str | None, skip_bad: bool = False, dry_run: bool = False) -> ImportOutcome:
    """Write a read import into the store (one transaction; replaces the scopes it covers)."""
    import sqlalchemy as sa

    from vigil.finops.tables import cost_daily, cost_imports, cost_scopes
    from vigil.store import db_errors

    r = res.rollup
    rows = r.rows()
    spans = {s: r.days[s] for s in r.scopes}
    out = ImportOutcome(
        None, res.kind, res.files, [], r.read, r.rejected, len(rows), 0, r.billed(), r.untagged_rows, r.untagged_billed,
        list(r.rejections), [], False,
    )
    if r.rejected and not skip_bad:
        raise CostInputError(
            f"{r.rejected} of {r.read} rows are not valid; nothing was stored",
            hint="fix the rows named above and import again, or pass --skip-bad to store the valid rows (the import records how many were skipped)",
            rejections=r.rejections,
            rejected=r.rejected,
        )
    if r.read == 0 or not rows:
        raise CostInputError("no cost rows in the input; nothing was stored", hint="the files hold a header and no line items")
    if r.untagged_rows:
        out.warnings.append(
            f"{r.untagged_rows} of {r.read - r.rejected} rows lack an env or service tag (billed {r.untagged_billed.quantize(Decimal('0.01'))}); "
            "they count in totals as untagged"
        )
    if dry_run:
        out.scopes = [{"scope": s, "first_day": a, "last_day": b, "replaced_import": None} for s, (a, b) in spans.items()]
        return out

    def once() -> ImportOutcome:
        with store.engine.begin() as conn:
            if store.dialect == "postgresql":  # imports replace whole scopes: one at a time (no deadlock between two)
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({IMPORT_LOCK})"))
            existing = {
                row.scope: row
                for row in conn.execute(sa.select(cost_scopes).where(cost_scopes.c.scope.in_(list(spans))))
            }
            # a different source covering the same account and period counts the same costs twice
            others = conn.execute(sa.select(cost_scopes.c.scope)).scalars().all()
            mine = {(_scope_parts(s)[1], _scope_parts(s)[2]) for s in spans}
            for o in others:
                kind, acct, period = _scope_parts(o)
                if o not in spans and (acct, period) in mine and acct:
                    out.warnings.append(f"scope {o} (another source) covers the same account and period: its costs are counted too")
            iid = conn.execute(
                sa.insert(cost_imports).returning(cost_imports.c.id),
                {
                    "imported_at": isoformat(at), "kind": res.kind, "files": json.dumps([f.to_dict() for f in res.files]),
                    "scopes": json.dumps(sorted(spans)), "rows_read": r.read, "rows_rejected": r.rejected, "rows_stored": len(rows),
                    "rows_replaced": 0, "billed_nano": to_nano(out.billed), "actor": actor,
                },
            ).scalar_one()
            replaced = 0
            for s, (first, last) in spans.items():
                replaced += conn.execute(sa.delete(cost_daily).where(cost_daily.c.scope == s)).rowcount or 0
                prev = existing.get(s)
                if prev is None:
                    conn.execute(sa.insert(cost_scopes), {"scope": s, "import_id": iid, "first_day": first, "last_day": last, "replaced": 0})
                else:
                    conn.execute(
                        sa.update(cost_scopes).where(cost_scopes.c.scope == s)
                        .values(import_id=iid, first_day=first, last_day=last, replaced=prev.replaced + 1)
                    )
                out.scopes.append({"scope": s, "first_day": first, "last_day": last, "replaced_import": None if prev is None else prev.import_id})
            for i in range(0, len(rows), 5000):
                chunk = rows[i : i + 5000]
                for row in chunk:
                    row["import_id"] = iid
                conn.execute(sa.insert(cost_daily), chunk)
            conn.execute(sa.update(cost_imports).where(cost_imports.c.id == iid).values(rows_replaced=replaced))
            out.import_id = int(iid)
            out.rows_replaced = replaced
            out.stored = True
            return out

    with db_errors("storing the cost rows failed; nothing of this import was stored"):
        for attempt in range(5):
            try:
                out.scopes = []
                out.warnings = [w for w in out.warnings if not w.startswith("scope ")]
                return once()
            except sa.exc.IntegrityError:
                if attempt == 4:
                    raise
                continue  # a concurrent import of the same scope committed first: replace it now
    raise AssertionError("unreachable")  # pragma: no cover


def import_files(store: Any, paths: Sequence[str | Path], costs: Any, *, at: datetime, actor: str | None = None,
                 skip_bad: bool = False, dry_run: bool = False, kind: str | None = None) -> ImportOutcome:
    """Read ``paths`` and store them: the library entry point behind ``vigil cost import``."""
    res = read_files(paths, Attribution.from_spec(costs), currency=getattr(costs, "currency", None), kind=kind)
    return store_rollup(store, res, at=at, actor=actor, skip_bad=skip_bad, dry_run=dry_run)


def imports(store: Any, limit: int = 50) -> list[dict]:
    import sqlalchemy as sa

    from vigil.finops.tables import cost_imports
    from vigil.store import db_errors

    with db_errors("reading the cost imports failed"), store.engine.connect() as conn:
        rows = conn.execute(sa.select(cost_imports).order_by(cost_imports.c.id.desc()).limit(limit)).mappings().all()
    return [
        {
            "id": r["id"], "imported_at": r["imported_at"], "format": r["kind"], "files": json.loads(r["files"]),
            "scopes": json.loads(r["scopes"]), "rows_read": r["rows_read"], "rows_rejected": r["rows_rejected"],
            "rows_stored": r["rows_stored"], "rows_replaced": r["rows_replaced"],
            "billed_cost": str(from_nano(r["billed_nano"]).quantize(Decimal("0.01"))), "actor": r["actor"],
        }
        for r in rows
    ]

