"""dashboard paging at 1,000,000 messages: received_at in ix_message_status, indexes for the B/L filter

Measured with bench/dashboard_paging.py: the failed list over a date range in the past walked the primary key
from the newest message (90 ms); with received_at in (status, id) the walk stays in the index (3 ms). The
B/L / container filter read event, container and delivery whole (33-48 ms); with these indexes, 3 ms.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_INDEXES = {
    "event": {"ix_event_container": ["container_id"]},
    "container": {"ix_container_bl_number": ["bl_number"]},
    "delivery": {"ix_delivery_deal": ["deal_id"], "ix_delivery_container": ["container_id"]},
}


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_index("ix_message_status")
        batch.create_index("ix_message_status", ["status", "id", "received_at"], unique=False)
    for table, indexes in NEW_INDEXES.items():
        with op.batch_alter_table(table) as batch:
            for name, columns in indexes.items():
                batch.create_index(name, columns, unique=False)


def downgrade() -> None:
    for table, indexes in reversed(NEW_INDEXES.items()):
        with op.batch_alter_table(table) as batch:
            for name in reversed(indexes):
                batch.drop_index(name)
    with op.batch_alter_table("message") as batch:
        batch.drop_index("ix_message_status")
        batch.create_index("ix_message_status", ["status", "id"], unique=False)
