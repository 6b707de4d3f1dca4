"""``vigil probe ssrf | ssti``: runtime checks for server-side request forgery and template injection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option, terminal_width, wrap, write_out
from vigil.errors import ExternalError, UsageError


@click.group("probe")
def probe_group() -> None:
    """Runtime SSRF (CWE-918) and SSTI (CWE-1336) probes with an out-of-band canary; SARIF out."""


def _options(f):
    opts = [
        click.option("--target", "targets", multiple=True, required=True, metavar="URL", help="the endpoint to probe (repeatable)"),
        click.option("--param", "params", multiple=True, required=True, metavar="NAME", help="a parameter to put payloads in (repeatable)"),
        click.option("--method", default="GET", show_default=True, type=click.Choice(["GET", "POST", "PUT", "PATCH"]), help="the HTTP method"),
        click.option("--body", "body", type=click.Choice(["query", "form", "json"]), default=None,
                     help="where the parameter goes (default: query for GET, form otherwise)"),
        click.option("--data", "data", multiple=True, metavar="NAME=VALUE", help="another field sent with every request (repeatable)"),
        click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="a header sent with every request (repeatable)"),
        click.option("--allow-target", "allow", multiple=True, metavar="HOST|CIDR",
                     help="probe this non-loopback host or network too (besides security.probes.allowed_targets)"),
        click.option("--canary-listen", default="127.0.0.1:0", show_default=True, metavar="HOST:PORT", help="where the canary listener listens"),
        click.option("--canary-url", metavar="URL", help="how the target reaches the canary (default: the listener's address, or security.probes.canary_url)"),
        click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True, help="seconds to wait for each answer"),
        click.option("--delay", type=click.FloatRange(0.1, 30), default=None, help="seconds the canary holds a timing payload (default security.probes.delay, 2)"),
        click.option("--oob-wait", type=click.FloatRange(0, 120), default=1.0, show_default=True,
                     help="seconds to wait for late canary hits (servers that fetch from a queue)"),
        click.option("--sarif", "sarif_out", metavar="FILE", help="also write SARIF 2.1.0 to FILE ('-' for standard output instead of the report)"),
        click.option("--seed", type=int, default=None, hidden=True),
        spec_option,
        json_option,
    ]
    for o in reversed(opts):
        f = o(f)
    return f


@probe_group.command("ssrf")
@_options
def ssrf_cmd(**kw) -> int:
    """Probe for server-side request forgery (CWE-918): exit 1 on a finding, 3 when incomplete.

    Sends the canary's URL in many spellings, cloud metadata URLs in every spelling, redirects,
    file://, gopher:// and dict:// and a closed internal port, and reads each answer, the canary's
    hits (a unique token per payload) and the time taken. Only loopback targets unless allowed.
    """
    return _run("ssrf", **kw)


@probe_group.command("ssti")
@_options
def ssti_cmd(**kw) -> int:
    """Probe for server-side template injection (CWE-1336): exit 1 on a finding, 3 when incomplete.

    Sends an arithmetic expression with random factors in each template syntax (Jinja2/Twig,
    FreeMarker/EL, ERB, Smarty, Thymeleaf, Razor, Velocity, ...) between unique markers, engine
    fingerprints such as {{7*'7'}}, and syntax-error probes.
    """
    return _run("ssti", **kw)


def _pairs(items: tuple[str, ...], sep: str, what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for it in items:
        k, s, v = it.partition(sep)
        if not s or not k.strip():
            raise UsageError(f"{what} {it!r}: expected NAME{sep}VALUE")
        out.append((k.strip(), v.strip() if sep == ":" else v))
    return tuple(out)


def _probe_spec():
    """The spec's security.probes section, when a spec is there (an explicit --spec must load)."""
    e = env()
    explicit = e.spec_path != "vigil.yaml" or os.environ.get("VIGIL_SPEC")
    if not explicit and not Path(e.spec_path).exists():
        return None
    sec = e.loaded.spec.security
    return sec.probes if sec is not None else None


def _run(kind: str, targets, params, method, body, data, headers, allow, canary_listen, canary_url, timeout, delay, oob_wait,
         sarif_out, seed) -> int:
    import random

    from vigil.clock import SystemClock, isoformat
    from vigil.security.probes import to_sarif
    from vigil.security.probes.canary import Canary
    from vigil.security.probes.engine import ProbeOptions, Target, run_probe, target_problem

    ps = _probe_spec()
    allowed = list(allow) + (list(ps.allowed_targets) if ps else [])
    for t in targets:
        why = target_problem(t, allowed)
        if why:
            raise UsageError(f"--target {t} {why}", hint="vigil probes only loopback unless --allow-target HOST or security.probes.allowed_targets names it")
    for p in params:
        if not p or len(p) > 200:
            raise UsageError(f"--param {p!r}: a parameter name of 1-200 characters")
    body = body or ("query" if method == "GET" else "form")
    if method == "GET" and body != "query":
        raise UsageError("--body form|json needs --method POST, PUT or PATCH")
    host, _, port = canary_listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--canary-listen {canary_listen!r}: expected HOST:PORT (port 0 picks a free one)")
    curl = canary_url or (ps.canary_url if ps else None)
    if curl:
        from vigil.netguard import url_problem

        why = url_problem(curl, allow_link_local=True)
        if why:
            raise UsageError(f"--canary-url {curl} {why}")
    hold = float(delay if delay is not None else (ps.delay if ps else 2))
    tlist = [Target(t, tuple(params), method, body, _pairs(data, "=", "--data"), _pairs(headers, ":", "--header")) for t in targets]
    try:
        canary = Canary(host, int(port), public_url=curl)
    except OSError as e:
        raise ExternalError(f"the canary cannot listen on {canary_listen}: {e.strerror or e}", hint="pick another --canary-listen port") from None
    rand = random.Random(seed) if seed is not None else random.SystemRandom()
    opts = ProbeOptions(timeout=timeout, delay=hold, oob_wait=oob_wait)
    at = isoformat(SystemClock().now())
    with canary:
        report = run_probe(kind, tlist, canary=canary, options=opts, rand=rand, at=at)
    code = exitcodes.NO if report.findings else (exitcodes.EXTERNAL if not report.complete else exitcodes.OK)
    if sarif_out:
        if write_out(sarif_out, json.dumps(to_sarif(report), indent=2) + "\n"):
            return code
    out = report.to_dict()

    def text() -> None:
        width = terminal_width()
        for tr in report.targets:
            t = tr.target
            head = f"{t.method} {t.url} [{', '.join(t.params)}]"
            if tr.error:
                click.echo(wrap(f"NOT PROBED {head}: {tr.error}", width))
                continue
            state = "FOUND" if tr.findings else ("INCOMPLETE" if not tr.complete else "CLEAN")
            click.echo(wrap(f"{state} {head}: {tr.payloads} payloads, {tr.requests} requests" + (f", {len(tr.unsent)} unsent" if tr.unsent else ""), width))
            from vigil.security.probes.engine import CWE

            for f in tr.findings:
                b = f.best
                click.echo(wrap(f"{f.severity.upper()} {CWE[f.kind]} {f.kind} in {f.param!r} ({f.confidence}" + (f", {f.engine}" if f.engine else "")
                                + f"; {len(f.hits)} payloads worked)", width, first="  ", rest="      "))
                click.echo(wrap(f"payload: {b.payload}", width, first="    ", rest="      "))
                for e in b.evidence:
                    click.echo(wrap(f"{e.kind}: {e.detail}", width, first="    ", rest="      "))
            for u in tr.unsent[:5]:
                click.echo(wrap(f"no answer to {u['family']} payload for {u['param']!r}: {u['payload']}", width, first="  ", rest="      "))
        if not report.complete and not report.findings:
            click.echo("the probe did not complete: that is not a clean result (exit 3)")

    emit(out, text)
    return code


COMMANDS = [probe_group]
