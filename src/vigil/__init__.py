"""vigil: a reliability control plane.

The library works without the CLI. ``import vigil`` gives the few things a Python user scripts
with (see :mod:`vigil.api`), loaded lazily so that importing vigil stays cheap:

- :func:`load_spec`, :func:`parse_spec`: read and validate a spec
- :func:`open_store`: the state store (SQLite or PostgreSQL)
- :func:`push`: push telemetry
- :func:`slo_status`: evaluate SLOs (budgets, burn rates, multiwindow conditions)
- :func:`ask_gate`: what the deploy gate answers (never recorded); :func:`decide_gate`: a recorded decision
- :func:`lint_migration`: lint a SQL migration
- :func:`judge_canary`: judge a canary against its baseline
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vigil import api

        return getattr(api, name)
    raise AttributeError(f"module 'vigil' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
