"""vigil as a library: the few things a Python user scripts with.

Everything here is re-exported by ``import vigil`` (lazily: importing vigil loads none of the heavy
libraries)::

    import vigil

    loaded = vigil.load_spec("vigil.yaml")
    store = vigil.open_store("sqlite:///.vigil/vigil.db", mode="create")
    vigil.push(store, loaded, b'{"ts": "2026-11-20T12:00:00Z", "metric": "http_requests", "inc": 1}\\n')
    for s in vigil.slo_status(loaded, store):
        print(s.slo.name, s.state, s.consumed)
    answer = vigil.ask_gate(loaded, store, "api")            # a what-if, never recorded
    report = vigil.lint_migration("ALTER TABLE t ADD COLUMN c int NOT NULL")
    judgement = vigil.judge_canary(loaded, store, 'version="v1"', 'version="v2"', start, end)

Errors are :class:`vigil.errors.VigilError` subclasses, each with a message and a hint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.clock import Clock, SystemClock

if TYPE_CHECKING:
    from vigil.deploy.canary.analysis import Judgement
    from vigil.deploy.gate import GateDecision
    from vigil.deploy.migrations.lint import LintReport
    from vigil.slo.evaluate import SloStatus
    from vigil.spec import LoadedSpec
    from vigil.store import Mode, Store
    from vigil.telemetry.push import PushResult

__all__ = [
    "load_spec",
    "parse_spec",
    "open_store",
    "push",
    "slo_status",
    "ask_gate",
    "decide_gate",
    "lint_migration",
    "judge_canary",
]


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a ``vigil.yaml``. Raises :class:`vigil.errors.SpecError` listing every
    problem with file, line and spec path."""
    from vigil.spec import load_spec as _load

    return _load(path)


def parse_spec(text: str | bytes, *, filename: str = "<spec>") -> LoadedSpec:
    """Validate spec text (no file). The result has no path; its sha256 is the text's."""
    import hashlib

    from vigil.spec import LoadedSpec as _Loaded
    from vigil.spec import parse_spec as _parse

    data = text.encode("utf-8") if isinstance(text, str) else text
    return _Loaded(_parse(data, filename=filename), None, hashlib.sha256(data).hexdigest())


def open_store(url: str, *, mode: Mode = "read") -> Store:
    """Open the state store. ``mode``: ``read`` (must exist, read-only, the default), ``write``
    (must exist) or ``create`` (created and migrated when missing). SQLite URLs look like
    ``sqlite:///path/vigil.db``; PostgreSQL like ``postgresql://user@host/db``."""
    from vigil.store import open_store as _open

    return _open(url, mode=mode)


def push(
    store: Store,
    loaded: LoadedSpec,
    data: bytes | str | Iterable[dict[str, Any]],
    *,
    clock: Clock | None = None,
) -> PushResult:
    """Push telemetry (the push format: NDJSON bytes or text, a JSON array, or dicts) into the
    store in one transaction. Bad lines are rejected with their line numbers; good ones are kept.
    Samples are checked against the clock (too old for retention, or in the future)."""
    import json

    from vigil.telemetry.push import Ingestor, PushResult

    now = (clock or SystemClock()).now()
    ing = Ingestor(loaded.spec, store)
    if isinstance(data, (bytes, str)):
        body = data.encode("utf-8") if isinstance(data, str) else data
        return ing.push_body(body, now)
    lines = [(i, json.dumps(row)) for i, row in enumerate(data, 1)]
    res = PushResult()
    res.add(ing.push_lines(lines, now))
    return res


def slo_status(
    loaded: LoadedSpec, store: Store, *, at: datetime | None = None, services: Sequence[str] = (), clock: Clock | None = None
) -> list[SloStatus]:
    """Evaluate the spec's SLOs (of ``services``, default all) at ``at`` (default now): budgets,
    burn rates, the workbook's multiwindow conditions, coverage and state."""
    from vigil.slo.evaluate import evaluate_slos
    from vigil.telemetry.sources import open_source

    when = at or (clock or SystemClock()).now()
    slos = [s for s in loaded.spec.slos if not services or s.service in services]
    return evaluate_slos(slos, open_source(loaded.spec.telemetry, store), when)


def ask_gate(
    loaded: LoadedSpec,
    store: Store,
    service: str,
    *,
    at: datetime | None = None,
    labels: Sequence[str] = (),
    reason: str | None = None,
    release: str | None = None,
    clock: Clock | None = None,
) -> GateDecision:
    """What the deploy gate answers for ``service`` at ``at`` (default now): a what-if, never
    recorded. ``decision.allowed``, ``decision.reasons`` and ``decision.to_dict()`` say why."""
    from vigil.deploy.gate import gate_deploy

    when = at or (clock or SystemClock()).now()
    return gate_deploy(loaded, store, service, when, labels=labels, reason=reason, release=release, record=False)


def decide_gate(
    loaded: LoadedSpec,
    store: Store,
    service: str,
    *,
    actor: str,
    labels: Sequence[str] = (),
    reason: str | None = None,
    release: str | None = None,
) -> GateDecision:
    """The deploy gate's decision for ``service``, made now at the real clock and recorded (with
    ``actor``) in the store. There is no ``at``: a recorded decision is never about another time."""
    from vigil.deploy.gate import gate_deploy

    now = SystemClock().now()
    return gate_deploy(loaded, store, service, now, decided_at=now, labels=labels, reason=reason, actor=actor, release=release)


def lint_migration(sql: str | Path, *, file: str | None = None) -> LintReport:
    """Lint one migration: SQL text, or the path of a ``.sql`` file. The report's ``findings``
    name the rule, the line, why it is unsafe and the safe rewrite."""
    from vigil.deploy.migrations.lint import lint_sql

    if isinstance(sql, Path):
        return lint_sql(sql.read_text(encoding="utf-8"), file or sql.name)
    return lint_sql(sql, file or "<sql>")


def judge_canary(
    loaded: LoadedSpec,
    store: Store,
    baseline: str,
    canary: str,
    start: datetime,
    end: datetime,
) -> Judgement:
    """Judge a canary against its baseline over ``[start, end)`` with the spec's ``canary``
    section. ``baseline`` and ``canary`` are label matchers like ``version="v1"``. Nothing is
    recorded; ``judgement.verdict`` holds the verdict, the score and every metric's statistics."""
    from vigil.deploy.canary.analysis import judge_window, parse_matchers

    b = parse_matchers(baseline, "baseline")
    c = parse_matchers(canary, "canary")
    return judge_window(loaded, store, b, c, start, end, judged_at=SystemClock().now(), record=False)
