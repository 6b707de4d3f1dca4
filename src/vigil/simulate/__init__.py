"""Synthetic traffic for the example platform (``vigil simulate``).

:mod:`~vigil.simulate.scenarios` holds the steady conditions and the named incidents (pure data),
:mod:`~vigil.simulate.generator` turns (seed, scenario, incident, minute) into NDJSON lines in the
push format (pure), :mod:`~vigil.simulate.run` drives a backfill and a live loop on an injected
clock, and :mod:`~vigil.simulate.sinks` writes to a stream or pushes to a vigil server.
"""

from vigil.simulate.generator import GRID, Incident, Simulator, latency_cells
from vigil.simulate.run import Cursor, LiveResult, Totals, backfill, live, ts_text
from vigil.simulate.scenarios import SCENARIOS, STEADY, Conditions, HttpTraffic, LogNormal, Scenario, get_scenario
from vigil.simulate.sinks import HttpSink, Sink, StreamSink

__all__ = [
    "GRID",
    "SCENARIOS",
    "STEADY",
    "Conditions",
    "Cursor",
    "HttpSink",
    "HttpTraffic",
    "Incident",
    "LiveResult",
    "LogNormal",
    "Scenario",
    "Simulator",
    "Sink",
    "StreamSink",
    "Totals",
    "backfill",
    "get_scenario",
    "latency_cells",
    "live",
    "ts_text",
]
