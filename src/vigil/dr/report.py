"""The DR report: JSON (the record), Markdown and HTML (Jinja2 templates in ``templates/``), and
the evidence bundle's ``SHA256SUMS`` covering every file in the bundle.

Bundle layout::

    <report_dir>/<drill>-<UTC start>/
      report.json  report.md  report.html
      evidence/    pgbackrest-info.json, pgbackrest-restore.conf, pgbackrest-restore.log,
                   canary-ledger.json, archiver-at-disaster.json, row-counts.json,
                   search-rebuild.json, restored-postgres.log
      SHA256SUMS   sha256sum format: `sha256sum -c SHA256SUMS` checks the bundle
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vigil.fileutil import sha256_file
from vigil.units import format_duration

TEMPLATES = Path(__file__).parent / "templates"
SUMS = "SHA256SUMS"


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["dur"] = human_duration
    env.filters["md"] = _md_escape
    return env


def human_duration(seconds: Any) -> str:
    """``12.3456`` -> ``12.35s``; ``5400`` -> ``1h30m``; None -> ``-``."""
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.2f}s"
    from decimal import Decimal

    return format_duration(Decimal(int(round(s))))


def _md_escape(v: Any) -> str:
    return str(v if v is not None else "-").replace("|", "\\|").replace("\n", " ")


def evidence_listing(bundle: Path) -> list[dict]:
    ev = bundle / "evidence"
    if not ev.is_dir():
        return []
    out = []
    for p in sorted(ev.rglob("*")):
        if p.is_file():
            out.append({"file": p.relative_to(bundle).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p).sha256})
    return out


def render_markdown(report: dict) -> str:
    return _env().get_template("report.md.j2").render(r=report)


def render_html(report: dict) -> str:
    return _env().get_template("report.html.j2").render(r=report)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_bundle(bundle: Path, report: dict) -> dict:
    """Write report.json, report.md, report.html and SHA256SUMS into ``bundle``; the report gets its
    ``evidence`` listing (every evidence file with its SHA-256). Returns the written paths."""
    bundle.mkdir(parents=True, exist_ok=True)
    report["evidence"] = evidence_listing(bundle)
    files = {
        "json": bundle / "report.json",
        "markdown": bundle / "report.md",
        "html": bundle / "report.html",
    }
    paths = {k: str(v) for k, v in files.items()}
    report["files"] = {**paths, "sha256sums": str(bundle / SUMS)}
    _write(files["json"], json.dumps(report, indent=2, default=str) + "\n")
    _write(files["markdown"], render_markdown(report))
    _write(files["html"], render_html(report))
    lines = []
    for p in sorted(bundle.rglob("*")):
        if p.is_file() and p.name != SUMS:
            lines.append(f"{sha256_file(p).sha256}  {p.relative_to(bundle).as_posix()}")
    _write(bundle / SUMS, "\n".join(lines) + "\n")
    return report["files"]


def verify_bundle(bundle: Path) -> list[str]:
    """Problems with a bundle's checksums (empty when every file matches and none is unlisted)."""
    problems = []
    sums = bundle / SUMS
    if not sums.is_file():
        return [f"{sums}: missing"]
    listed = {}
    for line in sums.read_text().splitlines():
        if line.strip():
            digest, _, name = line.partition("  ")
            listed[name] = digest
    for name, digest in listed.items():
        p = bundle / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(p).sha256 != digest:
            problems.append(f"{name}: SHA-256 mismatch")
    for p in bundle.rglob("*"):
        if p.is_file() and p.name != SUMS and p.relative_to(bundle).as_posix() not in listed:
            problems.append(f"{p.relative_to(bundle).as_posix()}: not listed")
    return problems
