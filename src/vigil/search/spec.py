"""``backups.search`` (placeholder until the search adapters land)."""

from vigil.model import SpecModel


class SearchBackupSpec(SpecModel):
    pass
