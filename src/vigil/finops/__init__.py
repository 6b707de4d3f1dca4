"""FinOps (issue 13): cost data in FOCUS, budgets and anomalies by {env, service}, unit cost per
request and per SLO, Aurora rightsizing held back while an SLO burns, cost policies and exports.

The small public surface other packages may use is re-exported here; everything heavy loads inside
the functions that need it.
"""

from vigil.finops.spec import Budget, CostsSpec

__all__ = ["Budget", "CostsSpec"]
