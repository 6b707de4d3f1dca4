"""The ``migrations:`` section of the spec (placeholder until migration safety lands)."""

from vigil.model import SpecModel


class MigrationsSpec(SpecModel):
    pass
