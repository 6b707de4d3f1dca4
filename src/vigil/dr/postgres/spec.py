"""``backups.postgres`` (placeholder until pgBackRest backups land)."""

from vigil.model import SpecModel


class PostgresBackupSpec(SpecModel):
    pass
