"""``vigil cost``: cost data in, budgets, anomalies, unit cost, rightsizing and the cost audit."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import click

from vigil import exitcodes
from vigil.cli.common import actor, at_option, db_option, emit, env, json_option, spec_option
from vigil.errors import UsageError


@click.group("cost")
def cost_group() -> None:
    """FinOps: import cost data (FOCUS, CUR 2.0, Cost Explorer), budgets, anomalies, unit cost, rightsizing, audit."""


def _costs() -> Any:
    spec = env().loaded.spec
    if spec.costs is None:
        raise UsageError(
            "the spec has no `costs:` section",
            hint="add `costs:` to vigil.yaml (README, FinOps); `costs: {}` takes every default",
        )
    return spec.costs


def _money(d: Any) -> str:
    from decimal import Decimal

    return f"{Decimal(d).quantize(Decimal('0.01')):,}"


def _print_rejections(errors: list[dict], total: int) -> None:
    for r in errors[:20]:
        click.echo(f"  line {r['line']}: {r['error']}", err=True)
    if total > 20:
        click.echo(f"  ... and {total - 20} more (use --json to see up to 100)", err=True)


@cost_group.command("import")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["auto", "focus", "cur2"]), default="auto", show_default=True, help="the files' columns")
@click.option("--skip-bad", is_flag=True, help="store the valid rows of a file that has invalid ones (default: store nothing, exit 2)")
@click.option("--dry-run", is_flag=True, help="check and sum the files; store nothing")
@click.option("--cost-explorer", "from_ce", is_flag=True, help="read Cost Explorer's GetCostAndUsage instead of files (--from, --to)")
@click.option("--from", "from_", metavar="DAY", help="with --cost-explorer: first day, YYYY-MM-DD")
@click.option("--to", "to", metavar="DAY", help="with --cost-explorer: the day after the last, YYYY-MM-DD (default today)")
@click.option("--region", default="us-east-1", show_default=True, help="with --cost-explorer: the Cost Explorer endpoint's region")
@spec_option
@db_option
@json_option
def import_cmd(files: tuple[str, ...], fmt: str, skip_bad: bool, dry_run: bool, from_ce: bool, from_: str | None, to: str | None, region: str) -> int:
    """Import cost line items: FOCUS 1.0-1.3 or AWS CUR 2.0 files (CSV, gzipped CSV, Parquet), or
    Cost Explorer. Rows are summed per day and {env, service, ServiceName, region}; a re-import of
    the same billing period replaces it, never adds. Invalid rows are listed with their line; then
    nothing is stored (exit 2) unless --skip-bad."""
    from vigil.finops.importer import CostInputError, import_files, store_rollup

    e = env()
    costs = _costs()
    now = e.clock.now()
    if from_ce:
        if files:
            raise UsageError("--cost-explorer reads no files", hint="drop the file names, or drop --cost-explorer")
        res = _ce_read(costs, from_, to, region, now)
        store = e.store if not dry_run else None
        try:
            out = store_rollup(store, res, at=now, actor=actor(), skip_bad=skip_bad, dry_run=dry_run)
        except CostInputError as err:
            _print_rejections([r.to_dict() for r in err.rejections], err.rejected)
            raise
        data = out.to_dict()
        data["estimated_days"] = res.estimated_days
    else:
        if not files:
            raise UsageError("name the files to import", hint="vigil cost import focus-2026-03.csv (or --cost-explorer --from DAY)")
        if from_ or to:
            raise UsageError("--from and --to go with --cost-explorer")
        try:
            out = import_files(
                e.store if not dry_run else None, files, costs, at=now, actor=actor(), skip_bad=skip_bad, dry_run=dry_run,
                kind=None if fmt == "auto" else fmt,
            )
        except CostInputError as err:
            _print_rejections([r.to_dict() for r in err.rejections], err.rejected)
            raise
        data = out.to_dict()

    def text() -> None:
        verb = "checked" if dry_run else "imported"
        click.echo(
            f"{verb} {out.rows_read - out.rows_rejected:,} rows ({out.kind}) into {out.rows_stored:,} daily rows, billed {_money(out.billed)} {costs.currency}"
            + (f"; import #{out.import_id}" if out.import_id else "")
        )
        for s in data["scopes"]:
            rep = f", replaced import #{s['replaced_import']}" if s.get("replaced_import") else ""
            click.echo(f"  {s['scope']}: {s['first_day']} to {s['last_day']}{rep}")
        if out.rows_replaced:
            click.echo(f"  {out.rows_replaced:,} stored rows of those periods replaced (a re-import never adds)")
        for w in out.warnings:
            click.echo(f"warning: {w}", err=True)
        if out.rows_rejected:
            click.echo(f"skipped {out.rows_rejected} invalid rows (--skip-bad)", err=True)
            _print_rejections(data["errors"], out.rows_rejected)
        for d in data.get("estimated_days", []):
            click.echo(f"note: Cost Explorer marks {d} as estimated; import it again later", err=True)

    emit(data, text)
    return exitcodes.USAGE if out.rows_rejected else exitcodes.OK


def _ce_read(costs: Any, from_: str | None, to: str | None, region: str, now: Any) -> Any:
    from vigil.dr.aws.client import Aws, make_client
    from vigil.finops.costexplorer import fetch
    from vigil.finops.importer import ReadResult

    if not from_:
        raise UsageError("--cost-explorer needs --from DAY", hint="like --from 2026-03-01 --to 2026-04-01")
    try:
        start = date.fromisoformat(from_)
        end = date.fromisoformat(to) if to else now.date()
    except ValueError as err:
        raise UsageError(f"--from/--to: {err}", hint="days are YYYY-MM-DD") from None
    sts = Aws(make_client("sts", region))
    account = str(sts.call("get_caller_identity").get("Account", "unknown"))
    ce = Aws(make_client("ce", region))
    r = fetch(ce, account, start, end, costs)
    return ReadResult(r.rollup, [], "cost-explorer", r.estimated_days)


@cost_group.command("imports")
@click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True)
@spec_option
@db_option
@json_option
def imports_cmd(limit: int) -> int:
    """The cost imports stored, newest first: files, scopes, rows, what each replaced."""
    from vigil.finops.importer import imports

    rows = imports(env().open_store("read"), limit)

    def text() -> None:
        if not rows:
            click.echo("no cost imports")
        for r in rows:
            names = ", ".join(f["file"] for f in r["files"]) or r["format"]
            click.echo(
                f"#{r['id']} {r['imported_at']} {r['format']}: {names}: {r['rows_stored']:,} daily rows, billed {r['billed_cost']},"
                f" {r['rows_rejected']} rejected, {r['rows_replaced']:,} replaced"
            )

    emit({"imports": rows}, text)
    return exitcodes.OK


def _day(text: str | None, default: date) -> date:
    if text is None:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"cannot read day {text!r}", hint="days are YYYY-MM-DD") from None


def _month(text: str | None, default: date) -> date:
    if text is None:
        return default.replace(day=1)
    try:
        y, m = text.split("-")
        return date(int(y), int(m), 1)
    except ValueError:
        raise UsageError(f"cannot read month {text!r}", hint="months are YYYY-MM") from None



def _frozen(costs: Any, store: Any, at: Any) -> dict[str, list[str]]:
    """Services a freeze holds for (the gate's what-if), when a freeze changes a budget's limits."""
    from vigil.finops.budgets import frozen_services

    if not costs.freeze_overspend:
        return {}
    services = [b.service for b in costs.budgets if b.service]
    return frozen_services(env().loaded, store, services, at) if services else {}


@cost_group.command("budgets")
@click.option("--month", metavar="YYYY-MM", help="the month (default: the month of --at)")
@click.option("--record", is_flag=True, help="record new breaches and push their alert events (vigil_event_total{event=cost_budget})")
@at_option
@spec_option
@db_option
@json_option
def budgets_cmd(month: str | None, record: bool, at: str | None) -> int:
    """Each budget: the month's BilledCost so far, the forecast (weekly seasonality), and which
    thresholds are breached. Exit 1 when one is; no data is shown as no_data, never as ok.
    --record writes new breaches and pushes an event the alerting engine's event rules fire on."""
    from vigil.finops.budgets import breaches_of, budget_statuses, record_alerts

    e = env()
    costs = _costs()
    when = e.at(at)
    store = e.open_store("write" if record else "read")
    if record and at is not None:
        raise UsageError("--record evaluates now", hint="drop --at, or drop --record to look at another time")
    m = _month(month, when.date())
    statuses = budget_statuses(store, costs, m, as_of=when.date(), frozen=_frozen(costs, store, when))
    rec = record_alerts(store, e.loaded.spec, breaches_of(statuses), when) if record else None
    data = {"month": m.strftime("%Y-%m"), "at": when.isoformat().replace("+00:00", "Z"), "currency": costs.currency,
            "budgets": [s.to_dict() for s in statuses], "recorded": rec}

    def text() -> None:
        from rich.table import Table

        from vigil.cli.common import console

        if not statuses:
            click.echo("no budgets in the spec (costs.budgets)")
            return
        tb = Table(title=f"budgets {data['month']} ({costs.currency}), data through {statuses[0].forecast.to_dict()['as_of'] or 'none'}")
        for c in ("budget", "scope", "amount", "actual", "used", "forecast", "breached", "state"):
            tb.add_column(c, justify="right" if c in ("amount", "actual", "used", "forecast") else "left")
        for st in statuses:
            b = st.budget
            scope = "/".join(x for x in (b.env, b.service, b.service_name) if x) or "all"
            fc = st.forecast
            tb.add_row(b.name, scope, _money(b.amount), _money(fc.actual), f"{(st.used * 100):.1f}%",
                       "-" if fc.forecast is None else _money(fc.forecast),
                       ",".join(t.label for t in st.thresholds if t.breached) or "-", st.state + (" (frozen)" if st.frozen else ""))
        console().print(tb)
        for st in statuses:
            for r in st.freeze_reasons:
                click.echo(f"  {st.budget.name}: limits raised by {float(st.overspend) * 100:g}% while frozen: {r}")
        if rec is not None:
            click.echo(f"recorded {rec['new']} new breaches, pushed {rec['events_pushed']} alert events")

    emit(data, text)
    return exitcodes.NO if any(s.state == "breached" for s in statuses) else exitcodes.OK


@cost_group.command("anomalies")
@click.option("--from", "from_", metavar="DAY", help="first day judged (default: 7 days before the last day with data)")
@click.option("--to", "to", metavar="DAY", help="last day judged (default: the last day with data)")
@click.option("--record", is_flag=True, help="record new anomalies and push their alert events (vigil_event_total{event=cost_anomaly})")
@spec_option
@db_option
@json_option
def anomalies_cmd(from_: str | None, to: str | None, record: bool) -> int:
    """Cost anomalies per {env, service} on daily EffectiveCost (amortized): a weekly robust
    decomposition and a modified z-score of the residual, past both floors, with the impact and the
    top contributors (ServiceName, region, usage type). Exit 1 when there is one."""
    from vigil.finops import query
    from vigil.finops.budgets import anomalies_of, detect_anomalies, record_alerts

    e = env()
    costs = _costs()
    store = e.open_store("write" if record else "read")
    first_any, last_any = query.span(store)
    if last_any is None:
        raise UsageError("no cost rows in the store", hint="import some first: vigil cost import FILE")
    last = _day(to, date.fromisoformat(last_any))
    first = _day(from_, last - timedelta(days=6))
    if first > last:
        raise UsageError("--from must not be after --to")
    findings, judged = detect_anomalies(store, costs, first, last)
    rec = record_alerts(store, e.loaded.spec, anomalies_of(findings), e.clock.now()) if record else None
    data = {"from": first.isoformat(), "to": last.isoformat(), "series": judged, "anomalies": [f.to_dict() for f in findings], "recorded": rec}

    def text() -> None:
        click.echo(f"anomalies {first} to {last}: {len(findings)} in {judged} series (env/service) judged")
        for f in findings:
            s = f.score.to_dict()
            z = "inf" if s["z_infinite"] else s["z"]
            click.echo(f"  {f.day} {f.env or '(untagged)'}/{f.service or '(untagged)'}: {_money(s['actual'])} vs expected {_money(s['expected'])}"
                       f" (+{_money(s['impact'])}, z {z})")
            for c in f.contributors:
                click.echo(f"      {c.service_name} {c.region or '-'} {c.usage_type or '-'}: +{_money(c.impact)}")
        if rec is not None:
            click.echo(f"recorded {rec['new']} new anomalies, pushed {rec['events_pushed']} alert events")

    emit(data, text)
    return exitcodes.NO if findings else exitcodes.OK


@cost_group.command("breaches")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@spec_option
@db_option
@json_option
def breaches_cmd(limit: int) -> int:
    """Recorded budget breaches and anomalies, newest first, and whether their alert event was pushed."""
    from vigil.finops.budgets import list_breaches

    rows = list_breaches(env().open_store("read"), limit)

    def text() -> None:
        if not rows:
            click.echo("no cost breaches recorded")
        for r in rows:
            click.echo(f"{r['detected_at']} {r['kind']} {r['budget']} {r['threshold']}: {r['value']} (limit {r['limit']})"
                       + ("" if r["event_sent_at"] else " (event not pushed yet)"))

    emit({"breaches": rows}, text)
    return exitcodes.OK


@cost_group.command("report")
@click.option("--month", metavar="YYYY-MM", help="the month (default: the month of --at)")
@at_option
@spec_option
@db_option
@json_option
def report_cmd(month: str | None, at: str | None) -> int:
    """A month of costs per {env, service}: BilledCost, EffectiveCost, the cost per 1,000 requests
    and per 1,000 valid events of each SLO (the telemetry's environment), the data-transfer split
    (edge, inter-region, internet) and cross-region transfer by the platform's own services."""
    from vigil.finops import query
    from vigil.finops.forecast import month_end
    from vigil.finops.unitcost import transfer_report, unit_costs

    e = env()
    costs = _costs()
    spec = e.loaded.spec
    when = e.at(at)
    m = _month(month, when.date())
    store = e.open_store("read")
    first_any, last_any = query.span(store)
    end = month_end(m) - timedelta(days=1)
    last = min(end, date.fromisoformat(last_any)) if last_any else None
    if last is None or last < m or (first_any is not None and first_any > end.isoformat()):
        raise UsageError(f"no cost rows for {m.strftime('%Y-%m')}", hint="import the month first: vigil cost import FILE")
    units = unit_costs(store, spec, m, last)
    transfer = transfer_report(query.transfer_rows(store, m.isoformat(), last.isoformat()), set(spec.services))
    from decimal import Decimal

    total_b = sum((u.billed for u in units), Decimal(0))
    total_e = sum((u.effective for u in units), Decimal(0))
    data = {
        "month": m.strftime("%Y-%m"), "from": m.isoformat(), "to": last.isoformat(), "currency": costs.currency,
        "billed_cost": str(total_b.quantize(Decimal("0.01"))), "effective_cost": str(total_e.quantize(Decimal("0.01"))),
        "services": [u.to_dict() for u in units], "transfer": transfer,
    }

    def text() -> None:
        from rich.table import Table

        from vigil.cli.common import console

        tb = Table(title=f"costs {data['month']} ({m} to {last}, {costs.currency}): billed {_money(total_b)}, effective {_money(total_e)}")
        for c in ("env", "service", "billed", "effective", "requests", "per 1k requests", "SLO unit cost (per 1k valid events)"):
            tb.add_column(c, justify="right" if c in ("billed", "effective", "requests", "per 1k requests") else "left")
        for u in units:
            d = u.to_dict()
            slos = ", ".join(f"{s['slo']} {s['cost_per_1000_valid_events'] or '-'}" for s in d["slos"])
            tb.add_row(u.env or "(untagged)", u.service or "(untagged)", _money(u.billed), _money(u.effective),
                       "-" if u.requests is None else f"{u.requests:,}", d["cost_per_1000_requests"] or "-", slos or "-")
        console().print(tb)
        for env_, split in transfer["by_env"].items():
            click.echo(f"data transfer {env_}: " + ", ".join(f"{k} {v}" for k, v in split.items()))
        for f in transfer["findings"]:
            click.echo(f"finding: {f['message']}")

    emit(data, text)
    return exitcodes.OK


@cost_group.command("rightsize")
@click.option("--apply", "do_apply", is_flag=True, help="apply the recommendations that are allowed (each decision is recorded)")
@click.option("--cluster", "clusters", multiple=True, metavar="ID", help="only this cluster (repeatable)")
@click.option("--allow-overspend", metavar="AMOUNT", help="while a freeze holds: accept a capacity raise costing up to AMOUNT a month (within costs.freeze_overspend)")
@spec_option
@db_option
@json_option
def rightsize_cmd(do_apply: bool, clusters: tuple[str, ...], allow_overspend: str | None) -> int:
    """Aurora Serverless v2 floors and ceilings per environment from the clusters' hourly capacity
    (RDS, CloudWatch). A cut is withheld while the service's SLO burns faster than 1x; with --apply a
    cut is refused while a freeze holds (the deploy gate, asked as a what-if). Exit 1 when something
    was withheld or refused."""
    from decimal import Decimal, InvalidOperation

    from vigil.dr.aws.client import Aws, make_client
    from vigil.finops.rightsize import rightsize

    e = env()
    costs = _costs()
    cap = None
    if allow_overspend is not None:
        try:
            cap = Decimal(allow_overspend)
        except InvalidOperation:
            raise UsageError(f"--allow-overspend {allow_overspend!r} is not an amount") from None
        if not cap.is_finite() or cap < 0:
            raise UsageError("--allow-overspend is an amount of at least 0")
        if not do_apply:
            raise UsageError("--allow-overspend goes with --apply")
    if costs.rightsizing is None:
        raise UsageError("the spec has no costs.rightsizing section", hint="list the Aurora Serverless v2 clusters (README, FinOps)")
    at = e.decision_clock("an applied rightsizing").now() if do_apply else e.clock.now()
    region = costs.rightsizing.region
    store = e.open_store("write" if do_apply else "read")
    recs = rightsize(e.loaded, store, Aws(make_client("rds", region)), Aws(make_client("cloudwatch", region)), at,
                     do_apply=do_apply, allow_overspend=cap, actor=actor(), clusters=clusters)
    data = {"at": at.isoformat().replace("+00:00", "Z"), "applied": do_apply, "clusters": [r.to_dict() for r in recs]}

    def text() -> None:
        for r in recs:
            d = r.to_dict()
            state = "applied" if r.applied else "refused" if r.refused else "withheld" if r.withheld else r.direction
            click.echo(f"{r.cluster_id} ({r.env}/{r.service}): {r.current_min}-{r.current_max} ACU -> {r.new_min}-{r.new_max} ACU"
                       f"{' auto-pause' if r.pause else ''}, {d['monthly_cost_change']} {costs.currency}/month: {state}")
            for x in r.reasons:
                click.echo(f"    {x}")
            for x in r.withheld:
                click.echo(f"    withheld: {x}")
            for x in r.refused:
                click.echo(f"    refused: {x}")

    emit(data, text)
    return exitcodes.NO if any(r.withheld or r.refused for r in recs) else exitcodes.OK


@cost_group.command("audit")
@click.option("--apply", "do_apply", is_flag=True, help="fix what is safe: create or update budgets, raise log retention, write the archive lifecycle")
@click.option("--allow-shorten", is_flag=True, help="with --apply: also shorten log retention (deletes the logs older than the new retention)")
@spec_option
@db_option
@json_option
def audit_cmd(do_apply: bool, allow_shorten: bool) -> int:
    """Compare the live AWS account with the spec's cost policy: AWS Budgets, CloudWatch Logs
    retention per environment, the log archive's lifecycle (Glacier after N days), Aurora capacity
    per environment, the search scale rule. Exit 1 on a drift left unfixed."""
    from vigil.dr.aws.client import Aws, make_client
    from vigil.finops.audit import AuditResult, audit_aurora, audit_budgets, audit_log_archive, audit_log_retention, audit_search_scale

    e = env()
    costs = _costs()
    spec = e.loaded.spec
    if allow_shorten and not do_apply:
        raise UsageError("--allow-shorten goes with --apply")
    res = AuditResult()
    pol = costs.policies
    region = pol.region if pol is not None else "us-east-1"
    if costs.budgets:
        account = str(Aws(make_client("sts", region)).call("get_caller_identity").get("Account"))
        res.drifts += audit_budgets(Aws(make_client("budgets", "us-east-1")), account, costs, do_apply=do_apply)
        res.checked.append("budgets")
    if pol is not None and pol.log_groups:
        res.drifts += audit_log_retention(Aws(make_client("logs", region)), pol, do_apply=do_apply, allow_shorten=allow_shorten)
        res.checked.append("log-retention")
    if pol is not None and pol.log_archive is not None:
        res.drifts += audit_log_archive(Aws(make_client("s3", region)), pol, do_apply=do_apply)
        res.checked.append("log-archive")
    if costs.rightsizing is not None and costs.rightsizing.clusters:
        res.drifts += audit_aurora(Aws(make_client("rds", costs.rightsizing.region)), costs)
        res.checked.append("aurora-capacity")
    if pol is not None and pol.search_scale_rule:
        res.drifts += audit_search_scale(spec)
        res.checked.append("search-scale")
    data = res.to_dict()

    def text() -> None:
        click.echo(f"checked: {', '.join(res.checked) or 'nothing (the spec names no budgets or policies)'}")
        for d in res.drifts:
            mark = "fixed" if d.fixed else "drift"
            click.echo(f"  {mark}: {d.message}")
            if d.note and not d.fixed:
                click.echo(f"      {d.note}")
        if not res.drifts:
            click.echo("in policy")

    emit(data, text)
    return exitcodes.OK if data["in_policy"] else exitcodes.NO
