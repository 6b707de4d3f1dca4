"""``vigil openslo export|import``: the spec's SLOs as OpenSLO v1 documents, and back.

The conversion lives in :mod:`vigil.slo.openslo`; this module reads and writes files.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import click

from vigil import exitcodes
from vigil.cli.common import emit, env, json_option, spec_option
from vigil.errors import NotFoundError, UsageError
from vigil.slo.openslo import (
    MAX_BYTES,
    dump_documents,
    export_spec,
    import_openslo,
    spec_to_document,
    to_json,
)


@click.group("openslo")
def openslo_group() -> None:
    """OpenSLO v1: export the spec's SLOs as OpenSLO documents, import OpenSLO documents as a spec."""


@openslo_group.command("export")
@spec_option
@json_option
@click.option(
    "--out", "out", default="-", show_default=True, metavar="FILE|-", help="write the documents to FILE (overwritten), or - for stdout"
)
@click.option("--no-services", is_flag=True, help="write only kind: SLO documents, no kind: Service")
def export_cmd(out: str, no_services: bool) -> int:
    """Write the spec's services and SLOs as a stream of OpenSLO v1 documents (YAML; a JSON array with --json).

    \b
    Each service becomes a `kind: Service` document and each SLO a `kind: SLO` document with its
    SLI inline: ratio -> ratioMetric (Occurrences), latency -> thresholdMetric (Occurrences, op lte),
    freshness -> thresholdMetric (Timeslices, timeSliceTarget 1). Ratio `exclude` and freshness
    `missing` travel in vigil.dev/* annotations that only vigil reads; the policy is not exported.
    Warnings about what OpenSLO cannot carry go to stderr.
    """
    e = env()
    spec = e.loaded.spec
    result = export_spec(spec, services=not no_services)
    n_slo = sum(1 for d in result.documents if d["kind"] == "SLO")
    n_svc = len(result.documents) - n_slo
    if e.json_mode:
        text = json.dumps(to_json(result.documents), indent=2) + "\n"
    else:
        text = dump_documents(result.documents)
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    if out == "-":
        click.echo(text, nl=False)
        return exitcodes.OK
    _write(out, text, force=True)
    summary = {
        "spec": e.spec_path,
        "out": out,
        "documents": len(result.documents),
        "services": n_svc,
        "slos": n_slo,
        "warnings": result.warnings,
    }
    emit(summary, f"wrote {out}: {n_svc} services and {n_slo} SLOs as OpenSLO v1 documents")
    return exitcodes.OK


@openslo_group.command("import")
@click.argument("file", metavar="FILE")
@click.option("--out", "out", default="-", show_default=True, metavar="FILE|-", help="write the vigil spec to FILE, or - for stdout")
@click.option("--force", is_flag=True, help="overwrite --out FILE when it exists")
@json_option
def import_cmd(file: str, out: str, force: bool) -> int:
    """Read OpenSLO v1 documents from FILE (- for stdin) and write a vigil spec that `vigil check` accepts.

    \b
    Imported: kind SLO (inline indicator or indicatorRef), kind SLI, kind Service; DataSource only
    resolves a metricSourceRef's type; other kinds are skipped with a warning.
    Mapping: ratioMetric {counter, good, total} + Occurrences -> ratio SLI;
    thresholdMetric + Occurrences, objective op lte value S -> latency SLI with threshold S seconds;
    thresholdMetric + Timeslices, op lte, timeSliceTarget 1, timeSliceWindow -> freshness SLI;
    timeWindow 30d rolling -> {rolling: 30d}; 1w / 1M / 1Q with calendar -> week / month / quarter;
    target or targetPercent -> objective; annotations vigil.dev/exclude and vigil.dev/missing.
    Metric sources must be PromQL (Prometheus, Thanos, Mimir, Cortex, VictoriaMetrics) with a
    selector query (sum()/rate()/increase() around a counter selector are accepted).
    Errors (nothing is written, exit 2): bad instead of good, raw ratios, counter false,
    RatioTimeslices, Timeslices on a ratio, op other than lte, timeSliceTarget other than 1,
    several objectives, composite SLOs, non-PromQL sources, windows vigil cannot express.
    Warnings: alertPolicies, displayName, labels and other fields vigil has no place for.
    """
    e = env()
    data, label = _read_input(file)
    result = import_openslo(data, filename=label)
    spec = result.spec
    warnings = [str(w) for w in result.warnings]
    summary = {
        "file": label,
        "out": out,
        "services": sorted(spec.services),
        "slos": [s.name for s in spec.slos],
        "warnings": [w.to_dict() for w in result.warnings],
    }
    if not e.json_mode:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
    if out == "-":
        if e.json_mode:
            summary["spec"] = to_json(spec_to_document(spec))
            emit(summary)
        else:
            click.echo(result.yaml, nl=False)
        return exitcodes.OK
    _write(out, result.yaml, force=force)
    emit(
        summary,
        f"wrote {out}: {len(spec.services)} services, {len(spec.slos)} SLOs; check it with `vigil check {out}`",
    )
    return exitcodes.OK


def _read_input(file: str) -> tuple[bytes, str]:
    if file == "-":
        stream = getattr(sys.stdin, "buffer", None)
        data = stream.read(MAX_BYTES + 1) if stream is not None else sys.stdin.read(MAX_BYTES + 1).encode("utf-8")
        return data, "<stdin>"
    try:
        with open(file, "rb") as f:
            return f.read(MAX_BYTES + 1), file
    except FileNotFoundError:
        raise NotFoundError(f"{file}: file not found", hint="pass the path of an OpenSLO YAML file, or - to read stdin") from None
    except IsADirectoryError:
        raise UsageError(f"{file}: is a directory, not an OpenSLO file") from None
    except PermissionError:
        raise UsageError(f"{file}: permission denied") from None
    except OSError as err:
        raise UsageError(f"{file}: cannot read: {err.strerror or err}") from None


def _write(out: str, text: str, *, force: bool) -> None:
    """Write ``text`` to ``out`` atomically (a temporary file renamed over it)."""
    p = Path(out)
    if p.is_dir():
        raise UsageError(f"--out {out}: is a directory", hint="name a file, like --out vigil.yaml")
    if p.exists() and not force:
        raise UsageError(f"--out {out}: the file exists", hint="pass --force to overwrite it, or --out - to print")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"--out {out}: directory {parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=parent)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, p.stat().st_mode & 0o7777 if p.exists() else 0o666 & ~_umask())
        os.replace(tmp, p)
    except OSError as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise UsageError(f"--out {out}: cannot write: {err.strerror or err}") from None


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


COMMANDS = [openslo_group]
