"""dashboard messages: resubmitted_from_id, indexes for the message filters, events and deliveries of a message

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

MESSAGE_INDEXES = {
    "ix_message_channel": ["channel", "id"],
    "ix_message_partner": ["partner_id", "id"],
    "ix_message_type": ["message_type", "id"],
    "ix_message_error_code": ["error_code", "id"],
    "ix_message_duplicate_of": ["duplicate_of_id"],
    "ix_message_resubmitted_from": ["resubmitted_from_id"],
}


def upgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("resubmitted_from_id", BIG_ID, nullable=True))
        batch.create_foreign_key("fk_message_resubmitted_from_id_message", "message", ["resubmitted_from_id"], ["id"])
        for name, columns in MESSAGE_INDEXES.items():
            batch.create_index(name, columns, unique=False)
    with op.batch_alter_table("event") as batch:
        batch.create_index("ix_event_message", ["message_id"], unique=False)
    with op.batch_alter_table("delivery") as batch:
        batch.create_index("ix_delivery_event", ["event_id"], unique=False)
        batch.create_index("ix_delivery_status_id", ["status", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_status_id")
        batch.drop_index("ix_delivery_event")
    with op.batch_alter_table("event") as batch:
        batch.drop_index("ix_event_message")
    with op.batch_alter_table("message") as batch:
        for name in reversed(MESSAGE_INDEXES):
            batch.drop_index(name)
        batch.drop_constraint("fk_message_resubmitted_from_id_message", type_="foreignkey")
        batch.drop_column("resubmitted_from_id")
