"""The ``drills:`` section (placeholder until DR drills land)."""

from vigil.model import SpecModel


class DrillSpec(SpecModel):
    pass
