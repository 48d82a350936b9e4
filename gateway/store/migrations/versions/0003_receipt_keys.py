"""receipt keys for channels: HTTP idempotency keys, interchange references, duplicate reasons

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("duplicate_reason", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("interchange_key", sa.String(length=200), nullable=True))
        batch.create_index("ux_message_idempotency_key", ["idempotency_key"], unique=True)
        batch.create_index("ux_message_interchange_key", ["interchange_key"], unique=True)
    op.execute("UPDATE message SET duplicate_reason = 'same bytes' WHERE status = 'duplicate'")


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_index("ux_message_interchange_key")
        batch.drop_index("ux_message_idempotency_key")
        batch.drop_column("interchange_key")
        batch.drop_column("idempotency_key")
        batch.drop_column("duplicate_reason")
