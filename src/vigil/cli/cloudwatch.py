"""``vigil cloudwatch emf|put``: the platform's custom metrics (job success, outbox backlog, index
staleness), as vigil's push format, written to CloudWatch: Embedded Metric Format lines on stdout
(for a Lambda's log, or any log CloudWatch Logs reads) or PutMetricData requests."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option
from vigil.errors import UsageError

MAX_INPUT = 256 * 1024 * 1024


@click.group("cloudwatch")
def cloudwatch_group() -> None:
    """The platform's custom metrics to CloudWatch: EMF log lines, or PutMetricData in batches."""


def _rows(path: str) -> list[dict]:
    """Push-format rows from FILE or stdin (``-``): one JSON object per line, or a JSON array."""
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_INPUT + 1)
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or e}") from None
    if len(data) > MAX_INPUT:
        raise UsageError(f"{path} is over {MAX_INPUT // (1024 * 1024)} MiB", hint="send it in parts")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    s = text.lstrip()
    try:
        if s.startswith("["):
            rows = json.loads(s)
            if not isinstance(rows, list):
                raise UsageError(f"{path}: a JSON array of objects was expected")
            return rows
        out = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UsageError(f"{path}:{i}: not JSON ({e.msg})", hint="one JSON object per line; nothing was sent") from None
        return out
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from None


def _target(source: str | None, namespace: str | None) -> tuple[Any, str | None]:
    """The mapping (namespace, dimensions, metrics) of a CloudWatch source of the spec, or a bare
    namespace; and the source's region."""
    from vigil.telemetry.out.cloudwatch import Target

    if source is None and namespace is not None:
        return Target(namespace), None
    spec = env().loaded.spec
    t = spec.telemetry
    name = source or "default"
    cw = t.source if name == "default" else t.sources.get(name)
    if cw is None or getattr(cw, "kind", None) != "cloudwatch":
        names = [n for n, s in (("default", t.source), *t.sources.items()) if getattr(s, "kind", None) == "cloudwatch"]
        raise UsageError(
            f"source {name!r} is not a CloudWatch source of the spec" + (f" (CloudWatch sources: {', '.join(names)})" if names else ""),
            hint="pass --namespace NS, or --source NAME of a telemetry source with kind: cloudwatch",
        )
    target = Target.of(cw)
    if namespace is not None:
        target = Target(namespace, target.dimensions, target.metrics)
    return target, getattr(cw, "region", None)


def _options(f):
    f = click.option("--namespace", help="CloudWatch namespace (default: the source's)")(f)
    f = click.option("--source", "source", help="a telemetry source of kind cloudwatch whose mapping to use (default: telemetry.source)")(f)
    return f


@cloudwatch_group.command("emf")
@click.argument("path", default="-")
@_options
@spec_option
@json_option
def emf_cmd(path: str, source: str | None, namespace: str | None) -> int:
    """Print PATH's rows (push format; - is stdin) as Embedded Metric Format lines."""
    from vigil.telemetry.out.cloudwatch import emf_lines

    target, _ = _target(source, namespace)
    lines = emf_lines(_rows(path), target, now_ms=int(env().clock.now().timestamp() * 1000))
    for line in lines:
        click.echo(line)
    return exitcodes.OK


@cloudwatch_group.command("put")
@click.argument("path", default="-")
@_options
@click.option("--region", help="AWS region (default: the source's, else the environment's)")
@spec_option
@json_option
def put_cmd(path: str, source: str | None, namespace: str | None, region: str | None) -> int:
    """Send PATH's rows (push format; - is stdin) with PutMetricData, in batches within its limits.
    Every row is checked first: one bad row sends nothing (exit 2)."""
    import boto3
    from botocore.config import Config

    from vigil.telemetry.out.cloudwatch import PublishError, put_metric_data

    target, src_region = _target(source, namespace)
    rows = _rows(path)
    client = boto3.client("cloudwatch", region_name=region or src_region, config=Config(retries={"max_attempts": 1}))
    try:
        rep = put_metric_data(client, rows, target, now_ms=int(env().clock.now().timestamp() * 1000))
    except PublishError as e:
        emit({"error": e.to_dict()}, lambda: None)
        raise
    emit(rep.to_dict(), lambda: click.echo(f"sent {rep.datums} datum(s) in {rep.stored} request(s)"
                                           + (f", {rep.retried} throttled and sent again" if rep.retried else ""), err=True))
    return exitcodes.OK


COMMANDS = [cloudwatch_group]
