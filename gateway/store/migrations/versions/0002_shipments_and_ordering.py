"""shipment details on deals, container status and VGM, per-field issue times, message problems

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# server defaults fill the existing rows; the models set the same values for new ones
EMPTY_OBJECT = sa.text("'{}'")
EMPTY_LIST = sa.text("'[]'")


def upgrade() -> None:
    with op.batch_alter_table("deal") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT))
        batch.add_column(sa.Column("as_of", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT))
        batch.add_column(sa.Column("declaration_number", sa.String(length=35), nullable=True))
        batch.create_index("ix_deal_declaration_number", ["declaration_number"], unique=False)
    with op.batch_alter_table("vessel_call") as batch:
        batch.add_column(sa.Column("as_of", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT))
    with op.batch_alter_table("container") as batch:
        batch.add_column(sa.Column("bl_number", sa.String(length=35), nullable=True))
        batch.add_column(sa.Column("vgm_method", sa.String(length=3), nullable=True))
        batch.add_column(sa.Column("vgm_party", sa.String(length=70), nullable=True))
        batch.add_column(sa.Column("status", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("status_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("location", sa.String(length=17), nullable=True))
        batch.add_column(sa.Column("facility", sa.String(length=35), nullable=True))
        batch.add_column(sa.Column("as_of", sa.JSON(), nullable=False, server_default=EMPTY_OBJECT))
    with op.batch_alter_table("message") as batch:
        batch.add_column(sa.Column("problems", sa.JSON(), nullable=False, server_default=EMPTY_LIST))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:
        batch.drop_column("problems")
    with op.batch_alter_table("container") as batch:
        for name in ("as_of", "facility", "location", "status_at", "status", "vgm_party", "vgm_method", "bl_number"):
            batch.drop_column(name)
    with op.batch_alter_table("vessel_call") as batch:
        batch.drop_column("as_of")
    with op.batch_alter_table("deal") as batch:
        batch.drop_index("ix_deal_declaration_number")
        batch.drop_column("declaration_number")
        batch.drop_column("as_of")
        batch.drop_column("details")
