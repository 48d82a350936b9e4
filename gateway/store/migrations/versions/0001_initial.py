"""initial schema

Revision ID: 0001
Revises: (none)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# 64-bit ids on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deal",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("deal_number", sa.String(length=32), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("bl_number", sa.String(length=35), nullable=True),
        sa.Column("booking_number", sa.String(length=35), nullable=True),
        sa.Column("carrier_scac", sa.String(length=17), nullable=True),
        sa.Column("internal_reference", sa.String(length=64), nullable=True),
        sa.Column("customs_status", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bl_number"),
        sa.UniqueConstraint("deal_number"),
    )
    with op.batch_alter_table("deal", schema=None) as batch_op:
        batch_op.create_index("ix_deal_booking", ["booking_number", "carrier_scac"], unique=False)
        batch_op.create_index("ix_deal_internal_reference", ["internal_reference"], unique=False)

    op.create_table(
        "partner",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("business_type", sa.String(length=32), nullable=False),
        sa.Column("edifact_ids", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("api_key_hashes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "vessel_call",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("natural_key", sa.String(length=200), nullable=False),
        sa.Column("vessel_name", sa.String(length=70), nullable=True),
        sa.Column("imo_number", sa.String(length=10), nullable=True),
        sa.Column("call_sign", sa.String(length=17), nullable=True),
        sa.Column("voyage", sa.String(length=17), nullable=False),
        sa.Column("carrier_scac", sa.String(length=17), nullable=True),
        sa.Column("port_of_loading", sa.String(length=5), nullable=True),
        sa.Column("port_of_discharge", sa.String(length=5), nullable=True),
        sa.Column("eta", sa.DateTime(timezone=True), nullable=True),
        sa.Column("etd", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("natural_key"),
    )
    op.create_table(
        "booking",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("booking_number", sa.String(length=35), nullable=False),
        sa.Column("carrier_scac", sa.String(length=17), nullable=False),
        sa.Column("deal_id", BIG_ID, nullable=True),
        sa.Column("vessel_call_id", BIG_ID, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deal.id"],
        ),
        sa.ForeignKeyConstraint(
            ["vessel_call_id"],
            ["vessel_call.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("booking_number", "carrier_scac"),
    )
    op.create_table(
        "form",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("deal_id", BIG_ID, nullable=False),
        sa.Column("type_code", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deal.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deal_id", "type_code", "subject"),
    )
    op.create_table(
        "message",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("partner_id", BIG_ID, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("filename", sa.String(length=512), nullable=True),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=True),
        sa.Column("duplicate_of_id", BIG_ID, nullable=True),
        sa.Column("format", sa.String(length=16), nullable=True),
        sa.Column("message_type", sa.String(length=32), nullable=True),
        sa.Column("interchange_ref", sa.String(length=35), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=16), nullable=True),
        sa.Column("error_text", sa.Text(), nullable=True),
        sa.Column("error_step", sa.String(length=16), nullable=True),
        sa.Column("error_position", sa.JSON(), nullable=True),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["duplicate_of_id"],
            ["message.id"],
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partner.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key"),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_received_at", ["received_at"], unique=False)
        batch_op.create_index("ix_message_status", ["status", "id"], unique=False)

    op.create_table(
        "participation",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("partner_id", BIG_ID, nullable=False),
        sa.Column("deal_id", BIG_ID, nullable=False),
        sa.Column("business_type", sa.String(length=32), nullable=False),
        sa.Column("rights", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deal.id"],
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partner.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("partner_id", "deal_id"),
    )
    op.create_table(
        "container",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("number", sa.String(length=11), nullable=False),
        sa.Column("deal_id", BIG_ID, nullable=True),
        sa.Column("booking_id", BIG_ID, nullable=True),
        sa.Column("iso_size_type", sa.String(length=4), nullable=True),
        sa.Column("full_empty", sa.String(length=5), nullable=True),
        sa.Column("seals", sa.JSON(), nullable=False),
        sa.Column("gross_kg", sa.Float(), nullable=True),
        sa.Column("tare_kg", sa.Float(), nullable=True),
        sa.Column("vgm_kg", sa.Float(), nullable=True),
        sa.Column("cargo_kg", sa.Float(), nullable=True),
        sa.Column("reefer_temp_c", sa.Float(), nullable=True),
        sa.Column("oog", sa.JSON(), nullable=True),
        sa.Column("commodity", sa.String(length=350), nullable=True),
        sa.Column("terminal_code", sa.String(length=17), nullable=True),
        sa.Column("delivery_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("customs_status", sa.String(length=32), nullable=True),
        sa.Column("conpas_result", sa.Integer(), nullable=True),
        sa.Column("conpas_terminal_check", sa.Integer(), nullable=True),
        sa.Column("last_message_id", BIG_ID, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["booking.id"],
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deal.id"],
        ),
        sa.ForeignKeyConstraint(
            ["last_message_id"],
            ["message.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deal_id", "number"),
    )
    with op.batch_alter_table("container", schema=None) as batch_op:
        batch_op.create_index("ix_container_number", ["number"], unique=False)

    op.create_table(
        "dangerous_goods",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("container_id", BIG_ID, nullable=False),
        sa.Column("un_number", sa.String(length=4), nullable=False),
        sa.Column("imdg_class", sa.String(length=7), nullable=True),
        sa.Column("packing_group", sa.String(length=3), nullable=True),
        sa.Column("flash_point_c", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["container.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "event",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("deal_id", BIG_ID, nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", BIG_ID, nullable=True),
        sa.Column("container_id", BIG_ID, nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["container.id"],
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deal.id"],
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index("ix_event_deal", ["deal_id", "id"], unique=False)

    op.create_table(
        "delivery",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("event_id", BIG_ID, nullable=True),
        sa.Column("deal_id", BIG_ID, nullable=True),
        sa.Column("container_id", BIG_ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("message_id", BIG_ID, nullable=True),
        sa.Column("last_error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["container_id"],
            ["container.id"],
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deal.id"],
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["event.id"],
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index("ix_delivery_due", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "delivery_attempt",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("delivery_id", BIG_ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["delivery.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id", "number"),
    )


def downgrade() -> None:
    op.drop_table("delivery_attempt")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_due")

    op.drop_table("delivery")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_deal")

    op.drop_table("event")
    op.drop_table("dangerous_goods")
    with op.batch_alter_table("container", schema=None) as batch_op:
        batch_op.drop_index("ix_container_number")

    op.drop_table("container")
    op.drop_table("participation")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_status")
        batch_op.drop_index("ix_message_received_at")

    op.drop_table("message")
    op.drop_table("form")
    op.drop_table("booking")
    op.drop_table("vessel_call")
    op.drop_table("partner")
    with op.batch_alter_table("deal", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_internal_reference")
        batch_op.drop_index("ix_deal_booking")

    op.drop_table("deal")
