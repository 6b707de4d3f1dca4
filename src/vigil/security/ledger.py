"""The findings ledger in the store: imports, findings per service and release, waivers.

Adapters (they read and write the store); the decisions over what they read are pure functions in
:mod:`vigil.security.fixgate`.

* An import is idempotent: the same file (by SHA-256) imported again for the same service and
  release changes nothing and answers with the first import. A different file adds only the
  fingerprints the release does not have yet; a finding keeps its ``first_seen``, which is the
  earliest time its fingerprint was seen for the service in any release.
* A pen-test window (``window``) is a dated import: its findings are first seen at the window's
  date, they count for every release of the service until a retest of the window (``retest``) no
  longer finds them (then ``fixed_at`` is set).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from vigil.clock import isoformat, parse_time
from vigil.errors import NotFoundError, UsageError
from vigil.security.sarifin import SarifRun, kind_of_tool
from vigil.security.tables import security_findings, security_imports, security_waivers
from vigil.store import Store, db_errors


@dataclass
class FindingsImportResult:
    import_ids: list[int]
    already: bool
    results: int
    findings: int
    new_findings: int
    fixed: int

    def to_dict(self) -> dict:
        return {
            "imports": self.import_ids,
            "already_imported": self.already,
            "results": self.results,
            "findings": self.findings,
            "new_findings": self.new_findings,
            "fixed_by_retest": self.fixed,
        }


def import_runs(
    store: Store,
    runs: list[SarifRun],
    *,
    service: str,
    release: str,
    file_sha256: str,
    file_name: str | None,
    at: datetime,
    found_at: datetime | None = None,
    kind: str | None = None,
    window: str | None = None,
    retest: bool = False,
    actor: str | None = None,
) -> FindingsImportResult:
    """Write the runs of one SARIF file into the ledger (one transaction). ``at`` is the real time
    of the import; ``found_at`` (default ``at``, never later) dates the findings (a pen test)."""
    found = found_at or at
    if found > at:
        raise UsageError("the findings cannot be found later than now", hint="--found-at is the day the pen test reported them")
    if retest and not window:
        raise UsageError("--retest needs --window: a retest replaces the findings of one pen-test window")
    with db_errors("importing findings failed"):
        for _ in range(5):
            try:
                return _import_once(store, runs, service, release, file_sha256, file_name, at, found, kind, window, retest, actor)
            except sa.exc.IntegrityError:
                # another import wrote one of these rows at the same moment (this transaction
                # rolled back, nothing of it is stored): run again, now seeing what the other one
                # stored; the same file imported twice at once answers with the other import
                continue
    raise UsageError("the import kept colliding with concurrent imports of the same release; run it again")


def _import_once(store, runs, service, release, file_sha256, file_name, at, found, kind, window, retest, actor) -> FindingsImportResult:
    t_i, t_f = security_imports, security_findings
    with store.engine.begin() as conn:
        prior = conn.execute(
            sa.select(t_i.c.id).where(t_i.c.service == service, t_i.c.release == release, t_i.c.file_sha256 == _sha_key(file_sha256, 0))
        ).first()
        if prior is not None:
            return _already(conn, service, release, file_sha256, runs)
        ids: list[int] = []
        new_total = 0
        fixed = 0
        seen_in_window: set[str] = set()
        for n, run in enumerate(runs):
            run_kind = kind or ("pentest" if window else kind_of_tool(run.tool))
            iid = conn.execute(
                sa.insert(t_i).returning(t_i.c.id),
                {
                    "service": service, "release": release, "kind": run_kind, "tool": run.tool, "window": window,
                    "retest": retest, "found_at": isoformat(found), "imported_at": isoformat(at), "actor": actor,
                    "file_sha256": _sha_key(file_sha256, n), "file_name": file_name, "results": run.results, "new_findings": 0,
                },
            ).scalar_one()
            ids.append(int(iid))
            new = 0
            for f in run.findings:
                seen_in_window.add(f.fingerprint)
                exists = conn.execute(
                    sa.select(t_f.c.id, t_f.c.fixed_at).where(t_f.c.service == service, t_f.c.release == release, t_f.c.fingerprint == f.fingerprint)
                ).first()
                if exists is not None:
                    if exists.fixed_at is not None and window:  # found again by a retest: open again
                        conn.execute(sa.update(t_f).where(t_f.c.id == exists.id).values(fixed_at=None))
                    continue
                earliest = conn.execute(
                    sa.select(sa.func.min(t_f.c.first_seen)).where(t_f.c.service == service, t_f.c.fingerprint == f.fingerprint)
                ).scalar()
                first_seen = isoformat(found)
                if earliest is not None and parse_time(earliest) < found:
                    first_seen = earliest
                conn.execute(
                    sa.insert(t_f),
                    {
                        "service": service, "release": release, "fingerprint": f.fingerprint, "kind": run_kind, "tool": f.tool,
                        "rule_id": f.rule_id, "severity": f.severity, "title": f.title or f.rule_id, "path": f.path, "line": f.line,
                        "window": window, "first_seen": first_seen, "import_id": int(iid), "fixed_at": None,
                        "details": json.dumps(f.details(), sort_keys=True),
                    },
                )
                new += 1
            conn.execute(sa.update(t_i).where(t_i.c.id == iid).values(new_findings=new))
            new_total += new
        if retest and window:
            fixed = conn.execute(
                sa.update(t_f)
                .where(t_f.c.service == service, t_f.c.window == window, t_f.c.fixed_at.is_(None),
                       t_f.c.fingerprint.notin_(seen_in_window) if seen_in_window else sa.true())
                .values(fixed_at=isoformat(found))
            ).rowcount or 0
        return FindingsImportResult(ids, False, sum(r.results for r in runs), sum(len(r.findings) for r in runs), new_total, fixed)


def _sha_key(sha: str, n: int) -> str:
    """The unique key of run ``n`` of a file (a file of several runs is several imports)."""
    return sha if n == 0 else f"{sha[:56]}:{n:07d}"[:64]


def _already(conn, service: str, release: str, sha: str, runs: list[SarifRun]) -> FindingsImportResult:
    t_i = security_imports
    keys = [_sha_key(sha, n) for n in range(max(1, len(runs)))]
    rows = conn.execute(sa.select(t_i.c.id).where(t_i.c.service == service, t_i.c.release == release, t_i.c.file_sha256.in_(keys))).all()
    return FindingsImportResult(sorted(int(r.id) for r in rows), True, sum(r.results for r in runs), sum(len(r.findings) for r in runs), 0, 0)


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerView:
    """What the fix gate reads for one release: plain data, decided on by a pure function."""

    service: str
    release: str | None
    findings: list[dict]
    waivers: dict[str, dict]
    imports: list[dict]


def _row_dict(r) -> dict:
    d = dict(r._mapping)
    d["details"] = json.loads(d.get("details") or "{}")
    return d


def latest_waivers(conn, service: str, fingerprints: list[str] | None = None) -> dict[str, dict]:
    """The newest waiver of each fingerprint of ``service`` (a later waiver replaces an earlier one)."""
    t = security_waivers
    q = sa.select(t).where(t.c.service == service).order_by(t.c.id)
    if fingerprints is not None:
        if not fingerprints:
            return {}
        q = q.where(t.c.fingerprint.in_(fingerprints))
    out: dict[str, dict] = {}
    for r in conn.execute(q):
        out[r.fingerprint] = dict(r._mapping)
    return out


def read_ledger(store: Store, service: str, release: str | None) -> LedgerView:
    """The findings of ``release`` plus the open pen-test window findings of the service from any
    release, the waivers that concern them and the release's imports."""
    t_f, t_i = security_findings, security_imports
    with db_errors("reading the findings ledger failed"), store.engine.connect() as conn:
        rows = []
        imports = []
        if release is not None:
            rows = [_row_dict(r) for r in conn.execute(sa.select(t_f).where(t_f.c.service == service, t_f.c.release == release).order_by(t_f.c.id))]
            imports = [dict(r._mapping) for r in conn.execute(
                sa.select(t_i).where(t_i.c.service == service, t_i.c.release == release).order_by(t_i.c.id))]
        have = {r["fingerprint"] for r in rows}
        for r in conn.execute(
            sa.select(t_f).where(t_f.c.service == service, t_f.c.window.is_not(None), t_f.c.fixed_at.is_(None)).order_by(t_f.c.id)
        ):
            if r.fingerprint not in have:
                rows.append(_row_dict(r))
                have.add(r.fingerprint)
        waivers = latest_waivers(conn, service, sorted(have))
    return LedgerView(service, release, rows, waivers, imports)


def list_findings(store: Store, *, service: str | None = None, release: str | None = None, limit: int = 1000) -> tuple[list[dict], dict]:
    """Ledger rows (newest first) and the newest waiver of each (service, fingerprint) among them."""
    t = security_findings
    q = sa.select(t).order_by(t.c.id.desc()).limit(limit)
    if service:
        q = q.where(t.c.service == service)
    if release:
        q = q.where(t.c.release == release)
    with db_errors("reading the findings ledger failed"), store.engine.connect() as conn:
        rows = [_row_dict(r) for r in conn.execute(q)]
        waivers: dict[tuple[str, str], dict] = {}
        for svc in {r["service"] for r in rows}:
            for fp, w in latest_waivers(conn, svc, sorted({r["fingerprint"] for r in rows if r["service"] == svc})).items():
                waivers[(svc, fp)] = w
    return rows, waivers


def find(store: Store, ident: str, *, service: str | None = None, release: str | None = None) -> tuple[dict, list[dict], dict | None]:
    """One finding by its ledger id (``42``) or its fingerprint or a prefix of 8+ hex digits: the
    row (the newest release's when a fingerprint is in several), every release it is in, and its
    newest waiver."""
    t = security_findings
    ident = ident.strip()
    with db_errors("reading the findings ledger failed"), store.engine.connect() as conn:
        if ident.isdigit() and len(ident) < 12:
            q = sa.select(t).where(t.c.id == int(ident))
        elif len(ident) >= 8 and all(c in "0123456789abcdef" for c in ident.lower()):
            q = sa.select(t).where(t.c.fingerprint.like(ident.lower() + "%"))
        else:
            raise UsageError(f"{ident!r} is neither a finding id nor a fingerprint", hint="use the id or the fingerprint `vigil findings list` shows")
        if service:
            q = q.where(t.c.service == service)
        if release:
            q = q.where(t.c.release == release)
        rows = [_row_dict(r) for r in conn.execute(q.order_by(t.c.id.desc()))]
        if not rows:
            raise NotFoundError(f"no finding {ident!r}" + (f" for service {service}" if service else ""), hint="vigil findings list shows the ledger")
        keys = {(r["service"], r["fingerprint"]) for r in rows}
        if len(keys) > 1:
            raise UsageError(
                f"{ident!r} matches {len(keys)} findings", hint="give more of the fingerprint, or --service: " + ", ".join(sorted(f"{s}:{fp[:12]}" for s, fp in keys))[:300]
            )
        svc, fp = keys.pop()
        releases = [_row_dict(r) for r in conn.execute(sa.select(t).where(t.c.service == svc, t.c.fingerprint == fp).order_by(t.c.id))]
        waiver = latest_waivers(conn, svc, [fp]).get(fp)
    return rows[0], releases, waiver


def waive(
    store: Store,
    *,
    service: str,
    fingerprint: str,
    reason: str,
    owner: str,
    expires: datetime,
    at: datetime,
    max_waiver: Decimal,
    actor: str | None,
) -> dict:
    """Record a waiver (reason, owner, expiry, actor) for a finding of ``service``. The expiry must
    be in the future and at most ``max_waiver`` away; the finding must be in the ledger."""
    for name, v in (("reason", reason), ("owner", owner)):
        if not v or not v.strip():
            raise UsageError(f"a waiver needs a {name}", hint="every waiver has a reason, an owner and an expiry")
        from vigil.text import readable

        if not readable(v, lines=name == "reason"):
            raise UsageError(f"a waiver's {name} must be readable text: it holds control, invisible or bidi characters, or nothing visible")
        if len(v) > 2000:
            raise UsageError(f"the {name} is longer than 2000 characters")
    if expires <= at:
        raise UsageError(f"the expiry {isoformat(expires)} is not in the future")
    if expires - at > timedelta(seconds=float(max_waiver)):
        from vigil.units import format_duration

        raise UsageError(
            f"a waiver may run at most {format_duration(max_waiver)} (security.max_waiver); {isoformat(expires)} is later",
            hint="waive again before it expires if the fix still has not shipped",
        )
    t = security_waivers
    with db_errors("recording the waiver failed"), store.engine.begin() as conn:
        hit = conn.execute(
            sa.select(security_findings.c.id).where(security_findings.c.service == service, security_findings.c.fingerprint == fingerprint).limit(1)
        ).first()
        if hit is None:
            raise NotFoundError(f"no finding {fingerprint} for service {service}", hint="vigil findings list --service " + service)
        wid = conn.execute(
            sa.insert(t).returning(t.c.id),
            {"service": service, "fingerprint": fingerprint, "reason": reason.strip(), "owner": owner.strip(),
             "expires": isoformat(expires), "created_at": isoformat(at), "actor": actor},
        ).scalar_one()
        row = conn.execute(sa.select(t).where(t.c.id == wid)).one()
    return dict(row._mapping)
