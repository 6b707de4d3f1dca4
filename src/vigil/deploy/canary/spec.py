"""The ``canary:`` section of the spec (placeholder until canary analysis lands)."""

from vigil.model import SpecModel


class CanarySpec(SpecModel):
    pass
