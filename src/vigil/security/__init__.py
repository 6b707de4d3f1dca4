"""Security gates: secret scanning, a findings ledger fed by SARIF, and the fix gate.

The public surface other capabilities use (the deploy gate) is small and loads lazily, so loading
a spec (which imports :mod:`vigil.security.spec`) loads neither the scanner nor the store:

* :func:`read_ledger` (adapter): what the fix gate reads for one release;
* :func:`decide_security` (pure): the security blocks of a deploy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["read_ledger", "decide_security"]


def __getattr__(name: str) -> Any:
    if name == "read_ledger":
        from vigil.security.ledger import read_ledger

        return read_ledger
    if name == "decide_security":
        from vigil.security.fixgate import decide_security

        return decide_security
    raise AttributeError(name)
