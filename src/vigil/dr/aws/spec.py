"""``backups.aurora`` and ``backups.s3`` (placeholders until the AWS engines land)."""

from vigil.model import SpecModel


class AuroraBackupSpec(SpecModel):
    pass


class S3PolicySpec(SpecModel):
    pass
