"""The assembly of every table: the store's own and each capability's, on one metadata.

The store does not import capabilities; each capability's tables module registers its tables on
:data:`vigil.store.schema.metadata` when it is imported. This module imports them all, for what
needs the whole schema at once (Alembic's environment, schema tests).
"""

from __future__ import annotations

from vigil.alerting import delivery_tables as _alert_delivery_tables  # noqa: F401
from vigil.alerting import tables as _alert_tables  # noqa: F401
from vigil.deploy import verdict_tables as _verdict_tables  # noqa: F401
from vigil.deploy.canary import tables as _canary_tables  # noqa: F401
from vigil.dr import tables as _dr_tables  # noqa: F401
from vigil.finops import tables as _finops_tables  # noqa: F401
from vigil.security import tables as _security_tables  # noqa: F401
from vigil.store.schema import metadata
from vigil.telemetry.otlp import tables as _otlp_tables  # noqa: F401
from vigil.traces import tables as _trace_tables  # noqa: F401

__all__ = ["metadata"]
