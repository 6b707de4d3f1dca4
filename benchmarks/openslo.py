"""OpenSLO import and export speed, and what the hardened YAML reader costs.

Run: .venv/bin/python benchmarks/openslo.py [--slos N] [--repeat R]

It builds a spec of ``--slos`` SLOs (default 800 and 80 services, about 0.5 MiB of OpenSLO YAML,
half the import's size limit) mixing ratio, latency and freshness SLIs, exports it, and times in
interleaved rounds:

- ``export_spec`` + ``dump_documents`` (spec -> OpenSLO YAML);
- ``import_openslo`` of that YAML (read, type, convert, write and re-check the vigil spec);
- the reader alone (``parse_documents``: vigil.yamlio's pre-scan, the marked tree, plain data);
- ruamel.yaml's own round-trip load of the same text, without vigil's checks, for scale.

It prints the minimum and median wall time of each, the minimum CPU time and documents per CPU
second. It asserts nothing
about speed; it checks only that the import gives back every SLO.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vigil.slo.openslo import dump_documents, export_spec, import_openslo, parse_documents  # noqa: E402
from vigil.slo.spec import SLO  # noqa: E402
from vigil.spec import Service, Spec  # noqa: E402


def build(n: int) -> Spec:
    services = {f"svc-{i}": Service(description=f"service {i}", owner="team") for i in range(max(1, n // 10))}
    names = sorted(services)
    slos = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            sli = {"ratio": {"good": f'http_requests{{service="s{i}",code!~"5.."}}', "total": f'http_requests{{service="s{i}"}}'}}
        elif kind == 1:
            sli = {"latency": {"metric": f'http_request_duration_seconds{{service="s{i}"}}', "threshold": Decimal("0.3")}}
        else:
            sli = {"freshness": {"metric": f'index_staleness_seconds{{class="c{i}"}}', "threshold": Decimal(300), "slice": Decimal(60)}}
        window = {"rolling": Decimal(30 * 86400)} if i % 2 else {"calendar": "month", "timezone": "Europe/Berlin"}
        slos.append(SLO.model_validate({"name": f"slo-{i}", "service": names[i % len(names)], "objective": Decimal("0.999"),
                                        "window": window, "sli": sli, "description": f"objective number {i}"}))  # fmt: skip
    return Spec(version=1, services=services, slos=slos)


def timed(fn) -> tuple[float, float]:
    """Wall time and CPU time (the machine is shared: CPU time moves much less with its load)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slos", type=int, default=800)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from ruamel.yaml import YAML

    spec = build(args.slos)
    text = dump_documents(export_spec(spec).documents)
    n_docs = len(spec.services) + len(spec.slos)
    print(f"{len(spec.slos)} SLOs and {len(spec.services)} services: {n_docs} documents, {len(text.encode()) / 1024:.0f} KiB of YAML")
    assert [s.name for s in import_openslo(text).spec.slos] == [s.name for s in spec.slos]

    def ruamel_only() -> None:
        list(YAML(typ="rt", pure=True).load_all(io.StringIO(text)))

    cases = {
        "export + dump": lambda: dump_documents(export_spec(spec).documents),
        "import (whole)": lambda: import_openslo(text),
        "reader alone": lambda: parse_documents(text),
        "ruamel rt load": ruamel_only,
    }
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for _ in range(args.repeat):
        for name, fn in cases.items():
            runs[name].append(timed(fn))
    for name, ts in runs.items():
        wall = [w for w, _ in ts]
        cpu = [c for _, c in ts]
        print(
            f"  {name:16s} wall min {min(wall):7.3f}s median {statistics.median(wall):7.3f}s;"
            f" cpu min {min(cpu):7.3f}s ({n_docs / min(cpu):6.0f} documents per cpu second)"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
