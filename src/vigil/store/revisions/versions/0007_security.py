"""Security findings: the imports (one per SARIF file per service and release), the findings
ledger (one row per service, release and fingerprint) and the waivers (per service and
fingerprint, with reason, owner, expiry and the actor).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "security_imports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("release", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("window", sa.String(128), nullable=True),
        sa.Column("retest", sa.Boolean, nullable=False),
        sa.Column("found_at", sa.String(40), nullable=False),
        sa.Column("imported_at", sa.String(40), nullable=False),
        sa.Column("actor", sa.Text, nullable=True),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("file_name", sa.Text, nullable=True),
        sa.Column("results", sa.Integer, nullable=False),
        sa.Column("new_findings", sa.Integer, nullable=False),
        sa.UniqueConstraint("service", "release", "file_sha256", name="uq_security_imports_file"),
    )
    op.create_index("ix_security_imports_release", "security_imports", ["service", "release", "id"])
    op.create_table(
        "security_findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("release", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("tool", sa.String(200), nullable=False),
        sa.Column("rule_id", sa.String(255), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=True),
        sa.Column("line", sa.Integer, nullable=True),
        sa.Column("window", sa.String(128), nullable=True),
        sa.Column("first_seen", sa.String(40), nullable=False),
        sa.Column("import_id", sa.Integer, nullable=False),
        sa.Column("fixed_at", sa.String(40), nullable=True),
        sa.Column("details", sa.Text, nullable=False),
        sa.UniqueConstraint("service", "release", "fingerprint", name="uq_security_findings_key"),
    )
    op.create_index("ix_security_findings_fp", "security_findings", ["service", "fingerprint"])
    op.create_table(
        "security_waivers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("service", sa.String(128), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("expires", sa.String(40), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("actor", sa.Text, nullable=True),
    )
    op.create_index("ix_security_waivers_fp", "security_waivers", ["service", "fingerprint", "id"])


def downgrade() -> None:
    op.drop_index("ix_security_waivers_fp", "security_waivers")
    op.drop_table("security_waivers")
    op.drop_index("ix_security_findings_fp", "security_findings")
    op.drop_table("security_findings")
    op.drop_index("ix_security_imports_release", "security_imports")
    op.drop_table("security_imports")
