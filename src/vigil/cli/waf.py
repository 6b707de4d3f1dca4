"""``vigil waf run | ratelimit | audit``: the WAF suite, the rate-limit check, the AWS web ACL audit."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option, terminal_width, wrap, write_out
from vigil.errors import UsageError


@click.group("waf")
def waf_group() -> None:
    """The WAF suite (go-ftw YAML, scored as GoTestWAF), the rate-limit check and the AWS WAFv2 audit."""


def _waf_spec(required: bool = False):
    """(security.waf or None, the spec's directory)."""
    e = env()
    explicit = e.spec_path != "vigil.yaml" or os.environ.get("VIGIL_SPEC")
    if not explicit and not Path(e.spec_path).exists():
        if required:
            raise UsageError(f"no spec at {e.spec_path}", hint="pass --spec PATH with a security.waf section")
        return None, Path.cwd()
    loaded = e.loaded
    sec = loaded.spec.security
    w = sec.waf if sec is not None else None
    if required and w is None:
        raise UsageError(f"{e.spec_path} has no security.waf section", hint="see the README's WAF section for an example")
    return w, Path(e.spec_path).resolve().parent


def _target(url: str) -> str:
    from vigil.netguard import url_problem

    why = url_problem(url)
    if why:
        raise UsageError(f"--target {url} {why}")
    return url


def _fraction(text: str | None, what: str) -> Decimal | None:
    if text is None:
        return None
    from vigil.units import parse_fraction

    try:
        v = parse_fraction(text)
    except Exception:
        raise UsageError(f"{what} {text!r}: expected a percentage (95%) or a fraction (0.95)") from None
    if not Decimal(0) <= v <= Decimal(1):
        raise UsageError(f"{what} must be between 0% and 100%")
    return v


@waf_group.command("run")
@click.option("--target", required=True, metavar="URL", help="the WAF to test (http://HOST:PORT); each test's dest_addr/port is replaced")
@click.option("--suite", "suites", multiple=True, metavar="PATH", help="go-ftw YAML files or directories (default security.waf.suite)")
@click.option("--include", metavar="REGEX", help="only tests whose id matches")
@click.option("--log", "log", metavar="FILE", help="the WAF's log (ModSecurity's error log) for log expectations, read between X-CRS-Test markers")
@click.option("--block-status", "block", multiple=True, type=int, metavar="CODE", help="statuses that mean blocked (default security.waf.block_status, 403)")
@click.option("--pass-status", "passes", multiple=True, type=int, metavar="CODE", help="statuses that mean passed (default 200 and 404)")
@click.option("--min-attack-score", metavar="PCT", help="attacks blocked / answered, at least (default security.waf.min_attack_score, 100%)")
@click.option("--min-benign-score", metavar="PCT", help="benign passed / answered, at least (default 100%)")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True, help="seconds to wait for each answer")
@click.option("--sarif", "sarif_out", metavar="FILE", help="also write SARIF 2.1.0 (bypasses and false positives) to FILE ('-' for standard output)")
@spec_option
@json_option
def run_cmd(target: str, suites: tuple[str, ...], include: str | None, log: str | None, block: tuple[int, ...], passes: tuple[int, ...],
            min_attack_score: str | None, min_benign_score: str | None, timeout: float, sarif_out: str | None) -> int:
    """Run the WAF suite: exit 0 when it scores, 1 when not (or a test's expectation failed), 3 when the WAF never answered.

    Attacks must be blocked, benign requests must pass; the score is GoTestWAF's (blocked / answered
    attacks, passed / answered benign). An unresolved answer or none at all fails the check.
    """
    import re

    from vigil.clock import SystemClock, isoformat
    from vigil.security.waf.ftw import load_suite
    from vigil.security.waf.runner import run_suite, to_sarif

    w, base = _waf_spec()
    _target(target)
    paths = [Path(s) for s in suites] if suites else ([base / s for s in w.suite] if w is not None else [])
    if not paths:
        raise UsageError("no suite: pass --suite PATH or set security.waf.suite", hint="the platform's suite is examples/platform/waf")
    cases = load_suite(paths)
    if include:
        try:
            rx = re.compile(include)
        except re.error as err:
            raise UsageError(f"--include {include!r}: {err}") from None
        cases = [c for c in cases if rx.search(c.id)]
        if not cases:
            raise UsageError(f"--include {include!r} matches no test")
    block_status = list(block) or (w.block_status if w else [403])
    pass_status = list(passes) or (w.pass_status if w else [200, 404])
    if set(block_status) & set(pass_status):
        raise UsageError("a status cannot mean both blocked and passed")
    ma = _fraction(min_attack_score, "--min-attack-score")
    mb = _fraction(min_benign_score, "--min-benign-score")
    ma = ma if ma is not None else (w.min_attack_score if w else Decimal(1))
    mb = mb if mb is not None else (w.min_benign_score if w else Decimal(1))
    log_path = Path(log) if log else None
    if log_path is not None and not log_path.is_file():
        raise UsageError(f"--log {log}: no such file")
    report = run_suite(cases, target, block_status=block_status, pass_status=pass_status, min_attack=ma, min_benign=mb, log=log_path,
                       timeout=timeout, at=isoformat(SystemClock().now()))
    all_failed = all(r.outcome == "failed" for r in report.results)
    code = exitcodes.EXTERNAL if all_failed else (exitcodes.OK if report.passed and not report.expectations_failed else exitcodes.NO)
    if sarif_out:
        if write_out(sarif_out, json.dumps(to_sarif(report), indent=2) + "\n"):
            return code
    out = report.to_dict()

    def text() -> None:
        width = terminal_width()
        sc = report.score
        head = "PASS" if code == exitcodes.OK else ("NO ANSWER" if all_failed else "FAIL")
        click.echo(f"{head} {target}: {len(report.results)} tests; attacks blocked {sc['attack_score']}%, benign passed {sc['benign_score']}%,"
                   f" overall {sc['overall']}% (GoTestWAF's score)")
        for g, c in sc["by_group"].items():
            click.echo(f"  {g:<15} sent {c['sent']:>3}  blocked {c['blocked']:>3}  passed {c['passed']:>3}  unresolved {c['unresolved']}  failed {c['failed']}")
        for why in report.reasons:
            click.echo(wrap(f"- {why}", width, first="  ", rest="    "))
        for r in report.results:
            bad = (r.case.category == "attack" and r.outcome == "passed") or (r.case.category == "benign" and r.outcome == "blocked") \
                or r.outcome in ("failed", "unresolved") or (r.checked and not r.expectations_met)
            if bad:
                what = {"passed": "GOT THROUGH", "blocked": "BLOCKED", "failed": "NO ANSWER", "unresolved": "UNRESOLVED"}[r.outcome]
                click.echo(wrap(f"{what} {r.case.id} ({r.case.category}, {r.case.group}) HTTP {r.status}: {r.case.description}"
                                + (f" [{'; '.join(r.reasons[:3])}]" if r.reasons else ""), width, first="  ", rest="    "))
        nc = sum(not r.checked for r in report.results)
        if nc:
            click.echo(f"  {nc} tests expect things in the WAF log, which was not read (--log)")

    emit(out, text)
    return code


@waf_group.command("ratelimit")
@click.option("--target", required=True, metavar="URL", help="the rate-limited front (the spec's rate_limit.path is appended when the URL has no path)")
@click.option("--limit", type=click.IntRange(1, 10_000_000), default=None, help="requests per window (default security.waf.rate_limit.limit)")
@click.option("--window", metavar="DURATION", default=None, help="the window (default security.waf.rate_limit.window, 5m)")
@click.option("--tolerance", metavar="PCT", default=None, help="how far from the limit blocking may start (default security.waf.rate_limit.tolerance, 20%)")
@click.option("--max-requests", type=click.IntRange(1, 1_000_000), default=None, help="send at most this many (default 2 x the limit + 100)")
@click.option("--max-seconds", type=click.FloatRange(0.1, 3600), default=60.0, show_default=True, help="send for at most this long")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True, help="seconds to wait for each answer")
@spec_option
@json_option
def ratelimit_cmd(target: str, limit: int | None, window: str | None, tolerance: str | None, max_requests: int | None, max_seconds: float,
                  timeout: float) -> int:
    """Check that the front blocks a client past the planned rate limit, within a tolerance: exit 0, 1, or 3 when it never answered.

    Sends requests one after another (bounded in count and time) and judges when the first block
    (429, 403 or 503) came: not far past limit + rate x elapsed, and not long before the limit.
    """
    from urllib.parse import urlsplit, urlunsplit

    from vigil.security.waf.ratelimit import http_sender, judge, send_until_blocked
    from vigil.units import parse_duration

    w, _ = _waf_spec()
    rl = w.rate_limit if w is not None else None
    _target(target)
    lim = limit if limit is not None else (rl.limit if rl else None)
    if lim is None:
        raise UsageError("no limit: pass --limit N or set security.waf.rate_limit")
    try:
        win = parse_duration(window) if window else (rl.window if rl else Decimal(300))
    except Exception:
        raise UsageError(f"--window {window!r}: expected a duration like 1s, 5m") from None
    if win <= 0:
        raise UsageError("--window must be longer than 0s")
    tol = _fraction(tolerance, "--tolerance")
    tol = tol if tol is not None else (rl.tolerance if rl else Decimal("0.2"))
    if tol >= 1:
        raise UsageError("--tolerance must be below 100%")
    p = urlsplit(target)
    if (not p.path or p.path == "/") and rl is not None:
        target = urlunsplit((p.scheme, p.netloc, rl.path, p.query, ""))
    n = max_requests if max_requests is not None else 2 * lim + 100
    need = int(lim * (1 + tol)) + 2
    if n < need:
        raise UsageError(f"--max-requests {n} cannot show a limit of {lim}: send at least {need}")
    send, close = http_sender(target, timeout)
    try:
        events = send_until_blocked(send, max_requests=n, max_seconds=max_seconds)
    finally:
        close()
    res = judge(events, limit=lim, window=win, tolerance=tol)
    res["target"] = target
    none_answered = events and all(e.status is None for e in events)
    code = exitcodes.EXTERNAL if none_answered else (exitcodes.OK if res["passed"] else exitcodes.NO)

    def text() -> None:
        width = terminal_width()
        fb = res["first_block"]
        head = "PASS" if res["passed"] else ("NO ANSWER" if none_answered else "FAIL")
        if fb:
            click.echo(f"{head} {target}: first block (HTTP {fb['status']}) at request {fb['request']} after {fb['t']:.2f}s;"
                       f" {res['passed_before_block']} passed before it (limit {lim} per {float(win):g}s allows {res['allowed_at_block']},"
                       f" bounds {res['lower_bound']}..{res['upper_bound']}); {res['blocked_after_first']}/{res['sent_after_first']} blocked from then on")
        else:
            click.echo(f"{head} {target}: {res['sent']} requests sent")
        for why in res["reasons"]:
            click.echo(wrap(f"- {why}", width, first="  ", rest="    "))

    emit(res, text)
    return code


@waf_group.command("audit")
@click.option("--region", metavar="REGION", help="the AWS region (default security.waf.aws.region)")
@spec_option
@json_option
def audit_cmd(region: str | None) -> int:
    """Check the AWS WAFv2 web ACL against the spec: managed rule groups enforced, the rate-based rule, logging on; exit 1 on a gap.

    Reads security.waf.aws (web ACL name, scope, region, managed rule groups, logging) and
    security.waf.rate_limit; needs wafv2:ListWebACLs, GetWebACL and GetLoggingConfiguration.
    """
    from vigil.security.waf.audit import audit, fetch, make_client

    w, _ = _waf_spec(required=True)
    if w.aws is None:
        raise UsageError("security.waf.aws is not set", hint="name the web ACL: security.waf.aws.web_acl, scope, region")
    if region is not None:
        w = w.model_copy(update={"aws": w.aws.model_copy(update={"region": region})})
    if w.aws.scope == "REGIONAL" and not w.aws.region and not os.environ.get("AWS_DEFAULT_REGION") and not os.environ.get("AWS_REGION"):
        raise UsageError("a REGIONAL web ACL needs a region", hint="security.waf.aws.region or --region")
    acl, logging = fetch(w, make_client(w))
    res = audit(acl, logging, w)

    def text() -> None:
        width = terminal_width()
        click.echo(f"{'PASS' if res['passed'] else 'FAIL'} web ACL {res['web_acl']} ({res['scope']}, default action {res['default_action']})")
        for c in res["checks"]:
            click.echo(wrap(f"{'ok  ' if c['ok'] else 'GAP '} {c['check']}: {c['detail']}", width, first="  ", rest="       "))

    emit(res, text)
    return exitcodes.OK if res["passed"] else exitcodes.NO


COMMANDS = [waf_group]
