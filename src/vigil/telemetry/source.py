"""The old home of the Source protocol and the embedded source; see :mod:`vigil.telemetry.sources`."""

from vigil.telemetry.sources.embedded import EmbeddedSource, _chunks  # noqa: F401
from vigil.telemetry.sources.protocol import CounterQuery, GaugeQuery, ObservationQuery, Plan, ReadPlan, Source  # noqa: F401
