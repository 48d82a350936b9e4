"""deliveries: replay of a dead delivery (replay_of_id), indexes for ordering per container or deal

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("replay_of_id", BIG_ID, nullable=True))
        batch.create_foreign_key("fk_delivery_replay_of_id_delivery", "delivery", ["replay_of_id"], ["id"])
        batch.create_index("ix_delivery_route_container", ["route", "container_id", "id"], unique=False)
        batch.create_index("ix_delivery_route_deal", ["route", "deal_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.drop_index("ix_delivery_route_deal")
        batch.drop_index("ix_delivery_route_container")
        batch.drop_constraint("fk_delivery_replay_of_id_delivery", type_="foreignkey")
        batch.drop_column("replay_of_id")
