"""Cyber Port form payloads built from the canonical model.

UL090, the container gate-in slip (搬入票), is also the CONPAS pre-notification data set (domain.md §3): the
persist step keeps the form current on the deal, and the CONPAS renderer sends what the form says.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")  # CONPAS slots are in terminal local time


# What the forms read, so that the model's rows and the persist step's plain rows (gateway/store/canonical.py)
# both fill them.
class DangerousGoodsLike(Protocol):
    @property
    def un_number(self) -> str: ...
    @property
    def imdg_class(self) -> str | None: ...
    @property
    def packing_group(self) -> str | None: ...
    @property
    def flash_point_c(self) -> float | None: ...


class ContainerLike(Protocol):
    @property
    def number(self) -> str: ...
    @property
    def iso_size_type(self) -> str | None: ...
    @property
    def full_empty(self) -> str | None: ...
    @property
    def seals(self) -> list[Any]: ...
    @property
    def gross_kg(self) -> float | None: ...
    @property
    def tare_kg(self) -> float | None: ...
    @property
    def vgm_kg(self) -> float | None: ...
    @property
    def cargo_kg(self) -> float | None: ...
    @property
    def reefer_temp_c(self) -> float | None: ...
    @property
    def oog(self) -> dict[str, Any] | None: ...
    @property
    def commodity(self) -> str | None: ...
    @property
    def terminal_code(self) -> str | None: ...
    @property
    def delivery_at(self) -> datetime | None: ...
    @property
    def vgm_method(self) -> str | None: ...
    @property
    def vgm_party(self) -> str | None: ...
    @property
    def dangerous_goods(self) -> Sequence[DangerousGoodsLike] | None: ...


class BookingLike(Protocol):
    @property
    def booking_number(self) -> str: ...


class VesselCallLike(Protocol):
    @property
    def vessel_name(self) -> str | None: ...
    @property
    def voyage(self) -> str: ...


class DealLike(Protocol):
    @property
    def deal_number(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def bl_number(self) -> str | None: ...
    @property
    def booking_number(self) -> str | None: ...
    @property
    def carrier_scac(self) -> str | None: ...
    @property
    def details(self) -> dict[str, Any]: ...


def ul090(container: ContainerLike, booking: BookingLike | None, vessel_call: VesselCallLike | None) -> dict[str, Any]:
    """The gate-in slip of one container; keys follow the UL090 data set, units are kg, °C and cm."""
    size_type = container.iso_size_type or ""
    local = container.delivery_at.astimezone(JST) if container.delivery_at else None
    reefer = None
    if container.reefer_temp_c is not None:
        reefer = {"temperature": container.reefer_temp_c, "unit": "CEL"}
    return {
        "booking_number": booking.booking_number if booking else None,
        "vessel_name": vessel_call.vessel_name if vessel_call else None,
        "voyage": vessel_call.voyage if vessel_call else None,
        "container_number": container.number,
        "seal_numbers": [s["number"] for s in container.seals],
        "size_type": size_type or None,
        "length_code": size_type[:1] or None,
        "height_code": size_type[1:2] or None,
        "type_code": size_type[2:4] or None,
        "gross_weight_kg": container.gross_kg,
        "tare_kg": container.tare_kg,
        "vgm_kg": container.vgm_kg,
        "full_empty": container.full_empty,
        "out_of_gauge": container.oog,
        "dangerous_goods": [
            {"un_number": dg.un_number, "class": dg.imdg_class, "packing_group": dg.packing_group}
            for dg in container.dangerous_goods or ()
        ],
        "reefer": reefer,
        "cargo_weight_kg": container.cargo_kg,
        "commodity": container.commodity,
        "delivery_date": local.strftime("%Y%m%d") if local else None,
        "delivery_time": local.strftime("%H%M") if local else None,
        "terminal_code": container.terminal_code,
    }


def shipment(deal: DealLike, containers: Sequence[str]) -> dict[str, Any]:
    """A deal-level form (UL040 S/I, UL050 booking confirmation, UL150 B/L, UL290 arrival notice): the deal's
    keys and its shipment details, with the numbers of its containers known so far."""
    return {
        "deal_number": deal.deal_number,
        "direction": deal.direction,
        "bl_number": deal.bl_number,
        "booking_number": deal.booking_number,
        "carrier_scac": deal.carrier_scac,
        **deal.details,
        "containers": sorted(containers),
    }


def container_form(type_code: str, container: ContainerLike) -> dict[str, Any]:
    """A container-level form other than UL090: the VGM declaration or the dangerous-goods declaration."""
    if type_code == "VGM":
        return {
            "container_number": container.number,
            "vgm_kg": container.vgm_kg,
            "method": container.vgm_method,
            "responsible_party": container.vgm_party,
        }
    if type_code == "DG":
        return {
            "container_number": container.number,
            "dangerous_goods": [
                {
                    "un_number": dg.un_number,
                    "class": dg.imdg_class,
                    "packing_group": dg.packing_group,
                    "flash_point_c": dg.flash_point_c,
                }
                for dg in container.dangerous_goods or ()
            ],
        }
    return {"container_number": container.number}
