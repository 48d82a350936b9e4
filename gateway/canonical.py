"""Canonical records: what a mapping produces from one business message, before it is persisted.

These are the JSON shapes that mapping examples are written in (``mappings/**/examples/*.json``), so an analyst
can read what a mapping does without reading Python. ``gateway.store.canonical`` upserts them into the model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from gateway import iso6346


def _container_number(value: str) -> str:
    iso6346.require_valid(value)
    return value


ContainerNumber = Annotated[str, AfterValidator(_container_number)]


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


class Party(Record):
    """A shipper, consignee, notify party or forwarder as the message names it."""

    name: str | None = None
    code: str | None = None  # the sender's code for the party (NAD 2.1)
    address: str | None = None


class GoodsItem(Record):
    """One goods item (declaration line): what ``deal.details.goods`` lists and the NACCS EDA/IDA lines read.

    EDIFACT: a GID group (GID packages, PIA HS code, FTX+AAA description, MEA+WT gross, LOC+27 origin).
    """

    item_number: str | None = None  # the sender's line number (GID 1)
    hs_code: str | None = None  # HS / statistical code
    description: str | None = None
    origin_country: str | None = None  # ISO 3166 alpha-2
    packages: int | None = None
    package_type: str | None = None  # package type code (CT, PK, ...)
    gross_kg: float | None = None
    volume_m3: float | None = None
    quantity: float | None = None  # the statistical quantity, in quantity_unit
    quantity_unit: str | None = None
    value: float | None = None  # the declared value, in currency
    currency: str | None = None
    other_law_codes: list[str] | None = None  # NACCS 他法令コード, at most 5


class Equipment(Record):
    """Requested or used equipment by type: what ``deal.details.equipment`` lists and NACCS BKR reads."""

    size_type: str  # ISO 6346 size-type, e.g. 45G1
    quantity: int = 1
    full_empty: Literal["full", "empty"] | None = None


# The Cyber Port forms (帳票) a message may fill; see gateway.model.FORM_TYPES.
FormCode = Literal["UL040", "UL050", "UL090", "UL100", "UL150", "UL290", "DG", "VGM"]


class ShipmentRecord(Record):
    """The consignment a deal is about: one per B/L (or per booking until the B/L number is known).

    ``form`` names the Cyber Port form the message fills for the deal: IFTMBC gives UL050 (booking
    confirmation), IFTMIN UL040 (shipping instruction), IFTMCS UL150 (B/L), IFTMAN UL290 (arrival notice).
    """

    entity: Literal["shipment"] = "shipment"
    bl_number: str | None = None
    booking_number: str | None = None
    carrier_scac: str | None = None
    direction: Literal["export", "import"] | None = None
    form: FormCode | None = None
    shipper: Party | None = None
    consignee: Party | None = None
    notify_party: Party | None = None
    forwarder: Party | None = None
    place_of_receipt: str | None = None
    port_of_loading: str | None = None
    port_of_discharge: str | None = None
    place_of_delivery: str | None = None
    package_count: int | None = None
    package_type: str | None = None
    gross_kg: float | None = None
    volume_m3: float | None = None
    description: str | None = None
    customs_declaration: str | None = None
    customs_office: str | None = None  # the customs office code of the declaration (NACCS 官署コード)
    bonded_area: str | None = None  # where the goods are stored (NACCS 蔵置場コード)
    remarks_ja: str | None = None  # free remarks, kanji allowed
    # a whole list: a newer message replaces it, an older one leaves it (deal.details.goods / .equipment)
    goods: list[GoodsItem] | None = None
    equipment: list[Equipment] | None = None

    @model_validator(mode="after")
    def _keyed(self) -> ShipmentRecord:
        if not (self.bl_number or self.booking_number):
            raise ValueError("a shipment needs bl_number or booking_number")
        return self


class _ShipmentPart(Record):
    """A part of a shipment the mapping language produces with its own ``each`` (one per EDIFACT group).

    :class:`MappedMessage` moves it into the ``goods`` (``equipment``) list of the shipment record of the same
    message it names by ``bl_number`` or ``booking_number``, else of the message's only shipment; it is never
    stored on its own.
    """

    bl_number: str | None = None
    booking_number: str | None = None


class GoodsItemRecord(_ShipmentPart, GoodsItem):
    entity: Literal["goods_item"] = "goods_item"


class EquipmentRecord(_ShipmentPart, Equipment):
    entity: Literal["equipment"] = "equipment"


class ContainerRecord(Record):
    entity: Literal["container"] = "container"
    number: ContainerNumber
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
    bl_number: str | None = None  # the B/L it travels under (import deals, IFTMCS/IFTMAN, CUSCAR)
    vgm_method: Literal["SM1", "SM2"] | None = None  # SOLAS method 1 (weighed) or 2 (calculated)
    vgm_party: str | None = None  # who is responsible for the VGM (VERMAS NAD+SPC)
    form: FormCode | None = None  # a form this container fills besides the UL090 of export containers


# What happened to a container; each becomes a timeline event ``container.<kind>``.
EventKind = Literal["gate_in", "gate_out", "loaded", "discharged", "released", "stuffed", "stripped", "status"]


class ContainerEventRecord(Record):
    """Something that happened to a container at a time: gate-in/out (CODECO), load/discharge (COARRI),
    release (COREOR), a status (IFTSTA). An older event arriving late goes on the timeline without changing
    the container's current status."""

    entity: Literal["container_event"] = "container_event"
    container: ContainerNumber
    kind: EventKind
    occurred_at: datetime
    location: str | None = None  # UN/LOCODE
    facility: str | None = None  # terminal or depot code
    full_empty: Literal["full", "empty"] | None = None
    booking_number: str | None = None
    bl_number: str | None = None
    status_code: str | None = None  # the sender's status code (IFTSTA 4405, COREOR release type)
    description: str | None = None


# A deal's customs status, as NACCS or the customs response (CUSRES) states it.
CustomsStatus = Literal["accepted", "rejected", "held", "inspection", "export_permitted", "import_permitted"]


class CustomsStatusRecord(Record):
    """Customs' answer about a declaration or a B/L (CUSRES); sets the deal's and its containers' status."""

    entity: Literal["customs_status"] = "customs_status"
    status: CustomsStatus
    bl_number: str | None = None
    booking_number: str | None = None
    declaration_number: str | None = None
    containers: list[ContainerNumber] = []  # the containers concerned; all of the deal's when empty
    occurred_at: datetime | None = None
    response_code: str | None = None  # customs' own code, kept for people
    text: str | None = None

    @model_validator(mode="after")
    def _keyed(self) -> CustomsStatusRecord:
        if not (self.bl_number or self.booking_number or self.declaration_number):
            raise ValueError("a customs status needs bl_number, booking_number or declaration_number")
        return self


class AckError(Record):
    code: str | None = None
    text: str | None = None


class AcknowledgementRecord(Record):
    """A partner's application acknowledgement (APERAK) of a message we sent: accepted, or rejected with errors.
    It goes on the timeline of the deal it names (by B/L or booking) or, without one, stands alone."""

    entity: Literal["acknowledgement"] = "acknowledgement"
    of_reference: str  # the reference of the acknowledged document or message
    of_type: str | None = None  # its document type (BGM 1001 or the message type)
    accepted: bool
    errors: list[AckError] = []
    bl_number: str | None = None
    booking_number: str | None = None
    container: ContainerNumber | None = None
    occurred_at: datetime | None = None


RECORD_TYPES: dict[str, type[Record]] = {
    "vessel_call": VesselCallRecord,
    "booking": BookingRecord,
    "shipment": ShipmentRecord,
    "goods_item": GoodsItemRecord,
    "equipment": EquipmentRecord,
    "container": ContainerRecord,
    "container_event": ContainerEventRecord,
    "customs_status": CustomsStatusRecord,
    "acknowledgement": AcknowledgementRecord,
}
AnyRecord = Annotated[
    VesselCallRecord
    | BookingRecord
    | ShipmentRecord
    | GoodsItemRecord  # only until MappedMessage has moved it into its shipment
    | EquipmentRecord  # the same
    | ContainerRecord
    | ContainerEventRecord
    | CustomsStatusRecord
    | AcknowledgementRecord,
    Field(discriminator="entity"),
]


class MappedMessage(BaseModel):
    """The records one business message (one UNH..UNT, one XML document, one CSV row) maps to.

    ``issued_at`` orders messages about the same things: a field set by a message issued later is not
    overwritten by one issued earlier that arrives late. It comes from the mapping's ``issued_at`` (the
    document date), else the interchange's preparation time, else the time of receipt.
    """

    number: int
    reference: str
    type: str
    issued_at: datetime | None = None
    records: list[AnyRecord]

    @model_validator(mode="before")
    @classmethod
    def _parts_into_shipments(cls, data: Any) -> Any:
        """Goods items and equipment go into the lists of their shipment (see :class:`_ShipmentPart`)."""
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            return data
        records = [
            RECORD_TYPES[r["entity"]].model_validate(r) if isinstance(r, dict) and r.get("entity") in _PARTS else r
            for r in data["records"]
        ]
        if not any(isinstance(r, _ShipmentPart) for r in records):
            return data
        records = [RECORD_TYPES["shipment"].model_validate(r) if _is_shipment(r) else r for r in records]
        shipments = [r for r in records if isinstance(r, ShipmentRecord)]
        kept: list[Any] = []
        for record in records:
            if not isinstance(record, GoodsItemRecord | EquipmentRecord):
                kept.append(record)
                continue
            shipment = _shipment_of(record, shipments)
            if isinstance(record, GoodsItemRecord):
                item = GoodsItem.model_validate(record.model_dump(include=set(GoodsItem.model_fields)))
                shipment.goods = [*(shipment.goods or []), item]
            else:
                shipment.equipment = _add_equipment(shipment.equipment or [], record)
        return {**data, "records": kept}

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


_PARTS = ("goods_item", "equipment")


def _is_shipment(record: Any) -> bool:
    return isinstance(record, dict) and record.get("entity") == "shipment"


def _shipment_of(part: _ShipmentPart, shipments: list[ShipmentRecord]) -> ShipmentRecord:
    for shipment in shipments:
        if (part.bl_number and part.bl_number == shipment.bl_number) or (
            part.booking_number and part.booking_number == shipment.booking_number
        ):
            return shipment
    if len(shipments) == 1 and not (part.bl_number or part.booking_number):
        return shipments[0]
    named = part.bl_number or part.booking_number
    which = f"the shipment {named!r}" if named else "exactly one shipment"
    raise ValueError(f"a {part.entity} record needs {which} in the same message")  # type: ignore[attr-defined]


def _add_equipment(listed: list[Equipment], record: EquipmentRecord) -> list[Equipment]:
    """Equipment of the same size-type and full/empty is one entry with the quantities added up."""
    for entry in listed:
        if (entry.size_type, entry.full_empty) == (record.size_type, record.full_empty):
            entry.quantity += record.quantity
            return listed
    return [*listed, Equipment(size_type=record.size_type, quantity=record.quantity, full_empty=record.full_empty)]
