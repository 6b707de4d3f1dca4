"""``vigil search status | snapshot | list | verify | rebuild | check``: the search index's backups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option
from vigil.errors import NotFoundError, UsageError


@click.group("search")
def search_group() -> None:
    """Search index backups: snapshot, schema and export; rebuild from a snapshot plus the outbox."""


def _section() -> tuple[Any, Path]:
    e = env()
    loaded = e.loaded
    backups = loaded.spec.backups
    sb = backups.search if backups is not None else None
    if sb is None:
        raise UsageError(
            f"{e.spec_path}: no backups.search section",
            hint="add `backups: {search: {engine: embedded}}` (or engine: typesense with url and api_key_env) to the spec",
        )
    base = loaded.path.parent if loaded.path is not None else Path.cwd()
    return sb, base


def _engine():
    from vigil.search.engine import open_engine

    sb, base = _section()
    return sb, base, open_engine(sb, base_dir=base)


def _snapshot_root(sb: Any, base: Path) -> Path:
    p = Path(sb.snapshot_dir)
    return p if p.is_absolute() else base / p


def _outbox_url(sb: Any, given: str | None) -> str:
    import os

    if given:
        return given
    if sb.outbox.url_env:
        v = os.environ.get(sb.outbox.url_env, "").strip()
        if v:
            return v
        raise UsageError(f"${sb.outbox.url_env} is not set", hint="export it with the outbox database URL, or pass --outbox-url")
    raise UsageError(
        "no outbox database URL", hint="pass --outbox-url postgresql://..., or name an env var with backups.search.outbox.url_env"
    )


def _collections(sb: Any) -> list | None:
    return list(sb.collections) or None


def _check_lines(chk: Any) -> list[str]:
    """The readable report of an :class:`~vigil.search.check.IndexCheck`."""
    lines = [
        f"{'ok' if chk.ok else 'FAILED'}: index {chk.index_count} / database {chk.db_count} documents, "
        f"watermark {chk.index_watermark} / {chk.db_watermark}, {chk.pending} change(s) pending ({chk.mode} tracking)"
    ]
    for c, v in chk.collections.items():
        ct = chk.content.get(c, {})
        d = chk.diffs.get(c)
        same = "content identical" if d is None or not d.total else (
            f"{d.total} differ: {len(d.missing)} missing, {len(d.modified)} modified, {len(d.ghost)} ghost"
        )
        lines.append(
            f"  {c}: index {v['index']}, database {v['db']} ({v['source']}); {same} "
            f"({ct.get('ranges_compared', 0)} range hash(es) compared, {ct.get('ranges_differing', 0)} of "
            f"{ct.get('leaf_ranges', 0)} leaf ranges re-read, source: {ct.get('source', '?')})"
        )
    lines += [f"  problem: {p}" for p in chk.problems]
    return lines


def _snapshots(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / "manifest.json").is_file())


@search_group.command("status")
@spec_option
@json_option
def status_cmd() -> int:
    """Is the engine healthy; its collections, document counts and watermark."""
    sb, _base, eng = _engine()
    try:
        healthy = eng.health()
        counts = {c: eng.count(c) for c in eng.collections()}
        data = {"engine": eng.kind, "healthy": healthy, "collections": counts, "watermark": eng.get_watermark()}
    finally:
        eng.close()
    lines = [f"{data['engine']}: {'healthy' if healthy else 'NOT healthy'}, watermark {data['watermark']}"]
    lines += [f"  {c}: {n} documents" for c, n in counts.items()] or ["  (no collections)"]
    emit(data, "\n".join(lines))
    return exitcodes.OK if healthy else exitcodes.NO


@search_group.command("snapshot")
@click.option("--out", "out", metavar="DIR", default=None, help="the new snapshot's directory (default: a timestamped one under snapshot_dir)")
@spec_option
@json_option
def snapshot_cmd(out: str | None) -> int:
    """Snapshot the index: manifest, schema and JSONL export of every collection (and, for Typesense
    with server_snapshot_dir, the server's own data snapshot)."""
    e = env()
    sb, base, eng = _engine()
    when = e.clock.now()
    target = Path(out) if out else _snapshot_root(sb, base) / when.strftime("%Y%m%dT%H%M%SZ")
    try:
        snap = eng.snapshot(target, created_at=when)
    finally:
        eng.close()
    d = snap.to_dict()
    emit(d, f"snapshot {snap.path}: {snap.count} documents in {len(snap.counts)} collection(s), watermark {snap.watermark}")
    return exitcodes.OK


@search_group.command("list")
@spec_option
@json_option
def list_cmd() -> int:
    """Snapshots under snapshot_dir, oldest first (manifests read, files not re-hashed)."""
    from vigil.search.engine import IndexSnapshotError, load_snapshot

    sb, base = _section()
    rows = []
    for p in _snapshots(_snapshot_root(sb, base)):
        try:
            rows.append(load_snapshot(p, verify=False).to_dict())
        except IndexSnapshotError as err:
            rows.append({"path": str(p), "error": err.message})
    text = "\n".join(
        f"{r['path']}: " + (f"ERROR {r['error']}" if "error" in r else f"{r['engine']}, {r['created_at']}, {r['count']} documents, watermark {r['watermark']}")
        for r in rows
    ) or f"no snapshots under {_snapshot_root(sb, base)}"
    emit({"snapshots": rows}, text)
    return exitcodes.OK


@search_group.command("verify")
@click.argument("snapshot", metavar="SNAPSHOT")
@json_option
def verify_cmd(snapshot: str) -> int:
    """Re-hash every file of a snapshot and compare with its manifest."""
    from vigil.search.engine import IndexSnapshotError, load_snapshot

    try:
        snap = load_snapshot(snapshot)
    except IndexSnapshotError as err:
        emit({"ok": False, "path": snapshot, "error": err.message}, f"FAILED {err.message}")
        return exitcodes.NO
    emit({"ok": True, **snap.to_dict()}, f"ok: {snapshot}: {len(snap.checksums)} files match their SHA-256")
    return exitcodes.OK


@search_group.command("rebuild")
@click.option("--snapshot", "snapshot", metavar="DIR|latest|none", default="latest", show_default=True,
              help="the snapshot to restore first; 'none' starts from an empty index")
@click.option("--catch-up", is_flag=True, help="no snapshot, no reset: apply the outbox rows after the index's own watermark")
@click.option("--outbox-url", metavar="URL", default=None, help="the outbox database (default: $<outbox.url_env>)")
@click.option("--max-errors", type=click.IntRange(0), default=0, show_default=True, help="refused documents to tolerate")
@spec_option
@json_option
def rebuild_cmd(snapshot: str, catch_up: bool, outbox_url: str | None, max_errors: int) -> int:
    """Restore a snapshot, then re-seed from the outbox since its watermark; then check against the database."""
    from vigil.search.outbox import check_index, rebuild

    sb, base = _section()
    url = _outbox_url(sb, outbox_url)
    snap: Path | None = None
    if not catch_up and snapshot != "none":
        if snapshot == "latest":
            found = _snapshots(_snapshot_root(sb, base))
            if not found:
                raise NotFoundError(
                    f"no snapshot under {_snapshot_root(sb, base)}",
                    hint="take one with `vigil search snapshot`, or rebuild from scratch with --snapshot none",
                )
            snap = found[-1]
        else:
            snap = Path(snapshot)
    _, _, eng = _engine()
    try:
        json_mode = env().json_mode

        def progress(applied: int, watermark: int) -> None:
            if not json_mode:
                click.echo(f"  ... {applied} outbox rows applied, watermark {watermark}", err=True)

        res = rebuild(
            eng, snap, url, outbox=sb.outbox, collections=_collections(sb), batch_size=sb.batch_size,
            max_errors=max_errors, reset=not catch_up, progress=progress,
        )
        chk = check_index(eng, url, outbox=sb.outbox, collections=_collections(sb))
    finally:
        eng.close()
    data = {**res.to_dict(), "check": chk.to_dict()}
    lines = [
        f"rebuilt: {res.count} documents, watermark {res.watermark} ({res.restored} restored from "
        f"{res.snapshot or 'nothing'}, {res.applied} outbox rows re-seeded, {res.mode} tracking) in {res.seconds:.1f}s",
    ]
    lines += [f"  warning: {w}" for w in res.warnings]
    lines += [f"  refused: outbox id {e['outbox_id']} {e['collection']}/{e['doc_id']}: {e['error']}" for e in res.errors[:20]]
    lines += ["check: " + ln if i == 0 else ln for i, ln in enumerate(_check_lines(chk))]
    emit(data, "\n".join(lines))
    return exitcodes.OK if chk.ok and res.ok else exitcodes.NO


@search_group.command("check")
@click.option("--outbox-url", metavar="URL", default=None, help="the outbox database (default: $<outbox.url_env>)")
@click.option("--repair", is_flag=True,
              help="fix exactly the documents that differ (upsert the missing and modified ones from the source, delete the ghosts), "
              "verify each, then check again")
@spec_option
@json_option
def check_cmd(outbox_url: str | None, repair: bool) -> int:
    """Compare the index with the database: every document's content (hashed in ranges, differing ids named),
    live entities per collection, and the changes not applied yet. Exit 1 on a difference (after --repair:
    when the index still differs)."""
    from vigil.search.check import check_index, repair_index

    sb, _base, eng = _engine()
    url = _outbox_url(sb, outbox_url)
    json_mode = env().json_mode
    try:
        chk = check_index(eng, url, outbox=sb.outbox, collections=_collections(sb))
        data = chk.to_dict()
        lines = _check_lines(chk)
        final = chk
        if repair and chk.differences:
            def progress(msg: str) -> None:
                if not json_mode:
                    click.echo(f"  ... repair {msg}", err=True)

            rep = repair_index(eng, url, chk, outbox=sb.outbox, collections=_collections(sb), progress=progress)
            final = check_index(eng, url, outbox=sb.outbox, collections=_collections(sb))
            data["repair"] = rep.to_dict()
            data["after_repair"] = final.to_dict()
            for c, d in chk.diffs.items():
                if not d.total:
                    continue
                ups, dels = rep.upserted.get(c, []), rep.deleted.get(c, [])
                lines.append(
                    f"repaired {c}: upserted {len(ups)} ({len(d.missing)} missing, {len(d.modified)} modified)"
                    f"{': ' + ', '.join(ups[:20]) if ups else ''}; deleted {len(dels)}{': ' + ', '.join(dels[:20]) if dels else ''}"
                    + ("" if not rep.remaining.get(c) else f"; STILL DIFFERENT after the repair: {', '.join(rep.remaining[c][:20])}")
                )
            lines += [f"  refused: {r['collection']}/{r['doc_id']}: {r['error']}" for r in rep.refused[:20]]
            lines += ["after repair: " + ln if i == 0 else ln for i, ln in enumerate(_check_lines(final))]
        elif repair:
            data["repair"] = None
            lines.append("repair: nothing to repair (no document differs)")
    finally:
        eng.close()
    emit(data, "\n".join(lines))
    return exitcodes.OK if final.ok else exitcodes.NO


COMMANDS = [search_group]
