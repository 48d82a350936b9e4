"""Canonical records: what a mapping produces from one business message, before it is persisted.

These are the JSON shapes that mapping examples are written in (``mappings/**/examples/*.json``), so an analyst
can read what a mapping does without reading Python. ``gateway.store.canonical`` upserts them into the model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway import iso6346


def _container_number(value: str) -> str:
    iso6346.require_valid(value)
    return value


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VesselCallRecord(Record):
    entity: Literal["vessel_call"] = "vessel_call"
    vessel_name: str | None = None
    imo_number: str | None = None
    call_sign: str | None = None
    voyage: str
    carrier_scac: str | None = None
    port_of_loading: str | None = None
    port_of_discharge: str | None = None
    eta: datetime | None = None
    etd: datetime | None = None


class BookingRecord(Record):
    entity: Literal["booking"] = "booking"
    booking_number: str
    carrier_scac: str | None = None


class Seal(Record):
    number: str
    issuer: str | None = None  # CA carrier, SH shipper, CU customs


class OutOfGauge(Record):
    height: float | None = None
    left: float | None = None
    right: float | None = None
    front: float | None = None
    rear: float | None = None


class DangerousGoodsRecord(Record):
    un_number: str = Field(pattern=r"^\d{4}$")
    imdg_class: str | None = None
    packing_group: str | None = None
    flash_point_c: float | None = None


class ContainerRecord(Record):
    entity: Literal["container"] = "container"
    number: Annotated[str, AfterValidator(_container_number)]
    booking_number: str | None = None
    iso_size_type: str | None = None
    full_empty: Literal["full", "empty"] | None = None
    seals: list[Seal] = Field(default=[], max_length=6)
    gross_kg: float | None = None
    tare_kg: float | None = None
    vgm_kg: float | None = None
    cargo_kg: float | None = None
    reefer_temp_c: float | None = None
    oog: OutOfGauge | None = None
    dangerous_goods: list[DangerousGoodsRecord] = []
    commodity: str | None = None
    terminal_code: str | None = None
    delivery_at: datetime | None = None


RECORD_TYPES: dict[str, type[Record]] = {
    "vessel_call": VesselCallRecord,
    "booking": BookingRecord,
    "container": ContainerRecord,
}
AnyRecord = VesselCallRecord | BookingRecord | ContainerRecord


class MappedMessage(BaseModel):
    """The records one business message (one UNH..UNT) maps to."""

    number: int
    reference: str
    type: str
    records: list[AnyRecord]

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
