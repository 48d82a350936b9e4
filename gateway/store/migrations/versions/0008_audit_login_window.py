"""the failed-login limit read from the audit log: index (action, at)

The limit was a moving window in each web process's memory; with several web processes (issue 8, roles) an
attacker got the limit once per process. Counting the audit log's ``login.failed`` rows of the window holds
across processes; this index keeps that count to the window's rows.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.create_index("ix_audit_action_at", ["action", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.drop_index("ix_audit_action_at")
