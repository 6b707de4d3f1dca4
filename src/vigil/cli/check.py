"""``vigil check [SPEC]``: validate a spec, and warn about selectors that cannot work."""

from __future__ import annotations

import click

from vigil import exitcodes
from vigil.cli.common import db_option, emit, env, json_option, spec_option
from vigil.errors import SpecError, SpecIssue, VigilError


@click.command("check")
@click.argument("spec_file", required=False, metavar="[SPEC]")
@spec_option
@db_option
@json_option
def check_cmd(spec_file: str | None) -> int:
    """Validate a spec.

    Every problem in one pass (schema, cross-references, time zones), each with file, line and
    spec path; exit 2 when invalid.

    Warnings (exit 0) name SLI selectors that can never match (service="api",service="checkout"),
    `=`/`!=` values that look like regular expressions, and, when the store exists (opened
    read-only, never created), selectors that match nothing in it (with did-you-mean) and a `good`
    that matches every series of `total`.
    """
    from vigil.spec import located, spec_tree

    e = env()
    if spec_file:
        e.spec_path = spec_file
    issues: list[SpecIssue] = []
    loaded = None
    try:
        loaded = e.loaded
    except SpecError as err:
        issues = err.issues
    warnings: list[SpecIssue] = []
    store_info: dict = {"url": None, "checked": False, "note": None}
    failure: VigilError | None = None
    parsed = spec_tree(e.spec_path)
    if parsed is not None:
        from vigil.slo.lint import selector_refs, static_warnings

        tree, plain = parsed
        refs = selector_refs(plain)
        pairs = static_warnings(refs)
        if refs:
            failure = _store_warnings(e, refs, pairs, store_info)
        warnings = sorted(located(pairs, tree, e.spec_path), key=lambda w: (w.line or 0, w.column or 0))
    data: dict = {"valid": not issues, "file": e.spec_path}
    if loaded is not None:
        s = loaded.spec
        data.update(
            sha256=loaded.sha256,
            services=sorted(s.services),
            slos=[x.name for x in s.slos],
            freeze_rules=len(s.policy.freeze),
        )
    data.update(
        issues=[i.to_dict() for i in issues],
        warnings=[w.to_dict() for w in warnings],
        store=store_info,
    )
    if failure is not None:
        data["error"] = failure.to_dict()

    def text() -> None:
        for i in issues:
            click.echo(str(i), err=True)
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
        if store_info["note"]:
            click.echo(f"note: {store_info['note']}", err=True)
        if failure is not None:
            click.echo(f"error: {failure.message}", err=True)
            if failure.hint:
                click.echo(f"hint: {failure.hint}", err=True)
        if loaded is not None:
            s = loaded.spec
            n = len(warnings)
            click.echo(
                f"ok: {e.spec_path}: {len(s.services)} services, {len(s.slos)} SLOs, {len(s.policy.freeze)} freeze rules"
                + (f" ({n} warning{'s' if n != 1 else ''})" if n else "")
            )

    emit(data, text)
    if issues:
        return exitcodes.USAGE
    if failure is not None:
        return failure.exit_code
    return exitcodes.OK


def _store_warnings(e, refs, pairs: list, info: dict) -> VigilError | None:
    """Add the store's warnings to ``pairs``. The store is opened read-only and never created: a
    missing one is a note; one that cannot be read is returned as the failure."""
    from vigil.slo.lint import store_warnings
    from vigil.store import StoreMissingError

    info["url"] = _shown(e.store_url)
    try:
        store = e.open_store("read")
        series = store.series()
    except StoreMissingError:
        info["note"] = f"no store at {info['url']}: selectors were not checked against data"
        return None
    except VigilError as err:
        info["note"] = f"the store at {info['url']} could not be read: selectors were not checked against data"
        return err
    info["checked"] = True
    info["series"] = len(series)
    pairs.extend(store_warnings(refs, series))
    return None


def _shown(url: str) -> str:
    from vigil.store import _redact

    return _redact(url)


COMMANDS = [check_cmd]
