"""Benchmark: rendering NACCS EDA and IDA declarations (and CONPAS JSON) through the gateway, beside a plain formatter.

Fills a SQLite database (a file in a temporary folder) once with ``--messages`` export deals, each with its own
B/L, shipper, consignee, ``--lines`` goods lines (the declaration lines: HS code, description, quantity,
value, two other-law codes), a kanji remark, a booking on a vessel call of its own, one container and its UL090
form. Three routes of a temporary routes.yaml, ``render: naccs`` with naccs/mappings/EDA.yaml and IDA.yaml
(both on ``shipment.updated``) and ``render: conpas`` (on ``container.announced``), give each deal one EDA, one
IDA and one CONPAS delivery. Then, each business timed over all its deliveries (best of ``--repeat``):

    store    the renderer as the dispatcher calls it (gateway/outbound/renderers/naccs.py and conpas.py), one
             session per delivery: the delivery, deal, container, booking and vessel call read from SQLite, the
             outbound mapping applied (gateway/naccs/outbound.py), the layout filled and checked
             (gateway/naccs/render.py), the common header written (frame.py); CONPAS: the UL090 form read, the
             document checked against its JSON Schema and written. Neither committed nor sent.
    objects  NACCS only: the same mapping, layout and header functions on the same rows already in memory
             (``values_for`` + ``render_message``): the data-driven renderer without the database.
    plain    the peer, the floor: a hand-written formatter for the same layouts from the same rows in memory:
             the values taken by hand from the deal (``details["shipper"]["name"]``...), put into one
             ``str.format`` template per layout (``{exporter_name:<70}`` CRLF..., blank items as literal spaces,
             built once from the layout file as one would type it), one ``encode("euc_jp")`` and an f-string
             header; no checks of any kind. CONPAS: ``json.dumps`` of the form's payload, no schema check.

    .venv/bin/python bench/naccs_render.py [--messages 1000] [--lines 5] [--repeat 3]

Prints messages/s and MB/s of each, the ratio ours / plain, and whether every message the renderer wrote equals
byte for byte what the plain formatter wrote for it (the plain formatter fills the same items the mappings fill,
so they must be identical; a difference is reported with its first differing offset). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import structlog  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from gateway import config as config_mod  # noqa: E402
from gateway import forms, logs  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.iso6346 import check_digit  # noqa: E402
from gateway.model import Booking, Container, Deal, Delivery, Form, VesselCall  # noqa: E402
from gateway.naccs.frame import InputHeader  # noqa: E402
from gateway.naccs.layout import Group, Item, Layout, layout  # noqa: E402
from gateway.naccs.outbound import cached_mapping, values_for  # noqa: E402
from gateway.naccs.render import render_message  # noqa: E402
from gateway.outbound.renderers import RenderContext, renderer  # noqa: E402
from gateway.outbound.renderers.naccs import HANDOVER_LENGTH  # noqa: E402
from gateway.store import outbox  # noqa: E402

JST = timezone(timedelta(hours=9))
KANJI = "精密機械部品"  # a j item: 6 characters, 12 bytes in EUC-JP
USER_CODE, USER_ID, SYSTEM_ID = "ABCDE", "001", "1"
BUSINESSES = ("EDA", "IDA")
ROUTES_YAML = """\
database:
  url: sqlite:///{db}
  auto_migrate: true
routes:
  naccs-eda: {naccs_eda}
  naccs-ida: {naccs_ida}
  conpas-prenotice:
    on: container.announced
    render: conpas
    to: {{type: folder, path: {tmp}/outbox/conpas}}
"""


def naccs_route(business: str, tmp: Path) -> str:
    return json.dumps(
        {
            "on": "shipment.updated",
            "render": "naccs",
            "naccs": {
                "business": business,
                "mapping": str(ROOT / f"naccs/mappings/{business}.yaml"),
                "user_code": USER_CODE,
                "user_id": USER_ID,
                "password_env": "GATEWAY_BENCH_NACCS_PASSWORD",
                "system_id": SYSTEM_ID,
            },
            "to": {"type": "folder", "path": str(tmp / f"outbox/{business.lower()}")},
        }
    )


# ---- the data ---------------------------------------------------------------------------------------------


def goods(n: int, lines: int) -> list[dict[str, Any]]:
    """``lines`` declaration lines of deal ``n``; values end in .5 so that the rounding (half up) is exercised."""
    return [
        {
            "hs_code": f"{847989000 + (n * 7 + i) % 1000:09d}",
            "description": f"machine part {n}-{i}",
            "origin_country": "JP",
            "quantity": 10 + i + n % 90,
            "quantity_unit": "PCE",
            "currency": "JPY",
            "value": 150000.5 + n + i,
            "other_law_codes": ["A1", "B2"],
        }
        for i in range(1, lines + 1)
    ]


def fill(gw: Gateway, deals: int, lines: int) -> None:
    """``deals`` export deals, each with its booking, vessel call, container and UL090 form, and their events."""
    for first in range(1, deals + 1, 500):
        with gw.sessions.begin() as s:
            for n in range(first, min(first + 500, deals + 1)):
                call = VesselCall(
                    natural_key=f"ONEY|{n:04d}E|9999999",
                    vessel_name="ONE APUS",
                    call_sign="JXYZ9",
                    voyage=f"{n:04d}E",
                    carrier_scac="ONEY",
                    port_of_loading="JPTYO",
                    port_of_discharge="USLAX",
                    etd=datetime(2026, 3, 1, 15, 30, tzinfo=UTC) + timedelta(hours=n),
                    eta=datetime(2026, 2, 20, 16, 0, tzinfo=UTC) + timedelta(hours=n),
                )
                deal = Deal(
                    deal_number=f"DL-{n:010d}",
                    direction="export",
                    bl_number=f"ONEYTYOB{n:07d}",
                    booking_number=f"ONEYTYOA{n:07d}",
                    carrier_scac="ONEY",
                    details={
                        "shipper": {"name": f"NIPPON KIKAI {n} KK", "code": f"{n:013d}", "address": f"{n} MINATO"},
                        "consignee": {"name": f"ACME {n} INC", "code": f"US{n:010d}", "address": f"{n} MAIN ST"},
                        "place_of_receipt": "1AW01",
                        "place_of_delivery": "USLAX",
                        "port_of_loading": "JPTYO",
                        "package_count": 100 + n % 900,
                        "package_type": "CT",
                        "gross_kg": 10250.5 + n,
                        "customs_office": "1W",
                        "bonded_area": "1AW02",
                        "remarks_ja": KANJI,
                        "goods": goods(n, lines),
                    },
                )
                booking = Booking(booking_number=deal.booking_number, carrier_scac="ONEY", deal=deal, vessel_call=call)
                first_ten = f"BNCU{n:06d}"
                container = Container(
                    number=f"{first_ten}{check_digit(first_ten)}",
                    deal=deal,
                    booking=booking,
                    iso_size_type="45G1",
                    seals=[{"number": f"SL{n:07d}", "issuer": "CA"}],
                    full_empty="full",
                    gross_kg=24500.0,
                    vgm_kg=28350.0,
                )
                form = Form(
                    deal=deal,
                    type_code="UL090",
                    subject=container.number,
                    payload=forms.ul090(container, booking, call),
                )
                s.add_all([call, deal, booking, container, form])
                s.flush()
                facts = {"direction": "export", "full_empty": "full"}
                outbox.emit(s, "shipment.updated", gw.config.routes, facts, message_id=None, deal_id=deal.id)
                outbox.emit(
                    s,
                    "container.announced",
                    gw.config.routes,
                    facts,
                    message_id=None,
                    deal_id=deal.id,
                    container_id=container.id,
                )


# ---- the peer: a hand-written formatter ---------------------------------------------------------------------


def template(entries: Sequence[Item | Group], filled: Collection[str], group: str | None = None) -> str:
    """A ``str.format`` template of ``entries``: a field for each filled item (a repeating item's occurrences
    are ``id_1``, ``id_2``...), spaces and CRLF for every other item, ``{group}`` for the declaration lines."""
    parts: list[str] = []
    for e in entries:
        if isinstance(e, Group):
            parts.append("{" + e.id + "}" if e.id == group else template(e.items, ()) * e.repeat)
            continue
        for occ in range(1, e.repeat + 1):
            key = e.id if e.repeat == 1 else f"{e.id}_{occ}"
            if key not in filled:
                parts.append(" " * e.length + "\r\n")
            elif e.type == "j":  # characters are 2 bytes: the value comes padded
                parts.append("{" + key + "}\r\n")
            else:
                parts.append("{" + key + (":<" if e.justification == "left" else ":>") + f"{e.length}" + "}\r\n")
    return "".join(parts)


def half_up(value: float) -> int:
    return int(value + 0.5)  # positive values only, as here


def japan_date(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(JST).strftime("%Y%m%d")


def j(text: str, length: int) -> str:
    return text + " " * (length - 2 * len(text))


def eda_values(deal: Deal, call: VesselCall) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    d = deal.details
    top = {
        "declaration_number": deal.declaration_number or "",
        "value_class": "L",
        "declaration_kind": "E",
        "customs_office": d["customs_office"],
        "exporter_code": d["shipper"]["code"],
        "exporter_name": d["shipper"]["name"],
        "exporter_address_3": d["shipper"]["address"],
        "bonded_area": d["place_of_receipt"],
        "consignee_code": d["consignee"]["code"],
        "consignee_name": d["consignee"]["name"],
        "consignee_address_1": d["consignee"]["address"],
        "cargo_reference": deal.bl_number,
        "packages": d["package_count"],
        "package_unit": d["package_type"],
        "gross_weight": f"{d['gross_kg']:.3f}",
        "weight_unit": "KGM",
        "final_destination_code": d["place_of_delivery"],
        "vessel_code": call.call_sign,
        "vessel_name": call.vessel_name,
        "departure_date": japan_date(call.etd) if call.etd else "",
        "shipper_remarks": j(d["remarks_ja"], 70),
        "internal_reference": deal.deal_number,
    }
    lines = []
    for g in d["goods"]:
        codes = g["other_law_codes"] + [""] * (5 - len(g["other_law_codes"]))
        lines.append(
            {
                "hs_code": g["hs_code"],
                "description": g["description"].upper(),
                "quantity_1": half_up(g["quantity"]),
                "quantity_unit_1": g["quantity_unit"],
                "basic_price_currency": g["currency"],
                "basic_price_amount": f"{g['value']:.2f}",
                **{f"other_law_codes_{i}": c for i, c in enumerate(codes, 1)},
            }
        )
    return top, lines


def ida_values(deal: Deal, call: VesselCall) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    d = deal.details
    top = {
        "declaration_number": deal.declaration_number or "",
        "value_class": "L",
        "declaration_kind": "C",
        "customs_office": d["customs_office"],
        "importer_code": d["consignee"]["code"],
        "importer_name": d["consignee"]["name"],
        "importer_address_3": d["consignee"]["address"],
        "bonded_area": d["bonded_area"],
        "bl_numbers_1": deal.bl_number,
        "packages": d["package_count"],
        "package_unit": d["package_type"],
        "gross_weight": f"{d['gross_kg']:.3f}",
        "weight_unit": "KGM",
        "vessel_code": call.call_sign,
        "vessel_name": call.vessel_name,
        "arrival_date": japan_date(call.eta) if call.eta else "",
        "discharge_port_code": call.port_of_discharge,
        "loading_port_code": d["port_of_loading"],
        "consignor_name": d["shipper"]["name"],
        "importer_remarks": j(d["remarks_ja"], 70),
        "internal_reference": deal.deal_number,
    }
    lines = []
    for g in d["goods"]:
        codes = g["other_law_codes"] + [""] * (5 - len(g["other_law_codes"]))
        lines.append(
            {
                "hs_code": g["hs_code"],
                "description": g["description"].upper(),
                "origin_country": g["origin_country"],
                "quantity_1": half_up(g["quantity"]),
                "quantity_unit_1": g["quantity_unit"],
                "dutiable_value": half_up(g["value"]),
                **{f"other_law_codes_{i}": c for i, c in enumerate(codes, 1)},
            }
        )
    return top, lines


@dataclass(frozen=True)
class Plain:
    """One layout as the hand-written formatter has it: the templates and the value taker."""

    business: str
    top: str
    line: str
    blank_line: str
    repeat: int
    values: Callable[[Deal, VesselCall], tuple[dict[str, Any], list[dict[str, Any]]]]

    @classmethod
    def of(cls, business: str, values: Callable[..., tuple[dict[str, Any], list[dict[str, Any]]]]) -> Plain:
        lay: Layout = layout(business)
        deal = Deal(deal_number="X", declaration_number=None, bl_number="X", details=_SAMPLE_DETAILS)
        call = VesselCall(call_sign="X", vessel_name="X", port_of_discharge="X", etd=None, eta=None)
        top, lines = values(deal, call)
        group = next(e for e in lay.items if isinstance(e, Group) and e.id == "lines")  # the declaration lines
        return cls(
            business,
            template(lay.items, top, group.id),
            template(group.items, lines[0]),
            template(group.items, ()),
            group.repeat,
            values,
        )

    def render(self, deal: Deal, call: VesselCall, handover: str) -> bytes:
        top, lines = self.values(deal, call)
        text = "".join(self.line.format(**line) for line in lines) + self.blank_line * (self.repeat - len(lines))
        business = self.top.format(lines=text, **top).encode("euc_jp")
        header = (
            f"{'':3}{self.business:<5}{'':21}{USER_CODE:<5}{USER_ID:<3}{'':8}{'':174}{handover:<26}{'':8}{'':10}"
            f"{'':100}{'':1}{SYSTEM_ID:<1}{'':27}{400 + len(business):06d}\r\n"
        )
        return header.encode("ascii") + business


_SAMPLE_DETAILS: dict[str, Any] = {
    "shipper": {"name": "", "code": "", "address": ""},
    "consignee": {"name": "", "code": "", "address": ""},
    **dict.fromkeys(("customs_office", "place_of_receipt", "place_of_delivery", "port_of_loading", "package_type"), ""),
    "bonded_area": "",
    "package_count": 0,
    "gross_kg": 0.0,
    "remarks_ja": "",
    "goods": goods(0, 1),
}


def plain_conpas(form: Form, key: str) -> bytes:
    document = {
        "schema": "port-gateway/conpas-prenotification/1",
        "pre_notification_id": key,
        **form.payload,
        "trucking_company": None,
        "driver": None,
        "vehicle_plate": None,
        "slot": None,
    }
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


# ---- the runs ---------------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """One delivery's rows, loaded once for the in-memory runs."""

    delivery_id: int
    key: str
    roots: dict[str, Any]
    form: Form | None


def load(session: Session, route: str) -> list[Loaded]:
    out = []
    for d in session.scalars(select(Delivery).where(Delivery.route == route).order_by(Delivery.id)):
        deal = session.get_one(Deal, d.deal_id)
        container = session.get(Container, d.container_id) if d.container_id else None
        booking = container.booking if container else None
        if booking is None:  # as the renderer: the deal's first booking
            booking = session.scalars(select(Booking).where(Booking.deal_id == deal.id).order_by(Booking.id)).one()
        _ = deal.details, deal.containers, booking.vessel_call  # loaded now, not in the timed loop
        form = None
        if container is not None:
            form = session.scalar(select(Form).where(Form.deal_id == deal.id, Form.subject == container.number))
            _ = form and form.payload
        roots = {"deal": deal, "container": container, "booking": booking, "vessel_call": booking.vessel_call}
        out.append(Loaded(d.id, d.idempotency_key, roots, form))
    return out


def best(repeat: int, run: Callable[[], list[bytes]]) -> tuple[float, list[bytes]]:
    """The fastest of ``repeat`` runs: (seconds, what the last run wrote)."""
    times = []
    out: list[bytes] = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return min(times), out


def first_difference(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=1000, help="deals: messages of each business rendered")
    parser.add_argument("--lines", type=int, default=5, help="declaration lines (goods) per deal")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the fastest is printed")
    args = parser.parse_args()
    os.environ.pop(config_mod.ENV_DATABASE_URL, None)  # the database is this benchmark's own
    logs.configure("INFO", json_lines=True)  # as in service, into /dev/null
    devnull = open(os.devnull, "w")  # noqa: SIM115
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(devnull))
    n = args.messages

    with tempfile.TemporaryDirectory(prefix="gateway-bench-naccs-") as tmp_:
        tmp = Path(tmp_)
        routes = tmp / "routes.yaml"
        routes.write_text(
            ROUTES_YAML.format(
                db=tmp / "gateway.db", tmp=tmp, naccs_eda=naccs_route("EDA", tmp), naccs_ida=naccs_route("IDA", tmp)
            ),
            encoding="utf-8",
        )
        gw = Gateway(config_mod.load(routes))
        try:
            start = time.perf_counter()
            fill(gw, n, args.lines)
            print(
                f"input: {n} export deals in SQLite ({time.perf_counter() - start:.1f} s to fill), each with "
                f"{args.lines} goods lines, one container, its UL090 form;"
            )
            print(f"       {n} EDA, {n} IDA and {n} CONPAS deliveries, each rendered from its own deal\n")
            context = RenderContext(routes=gw.config.routes)
            plains = {"EDA": Plain.of("EDA", eda_values), "IDA": Plain.of("IDA", ida_values)}
            rows: list[tuple[str, float, int, int]] = []  # (label, seconds, messages, bytes)
            checks: list[str] = []
            for business in (*BUSINESSES, "CONPAS"):
                route = "conpas-prenotice" if business == "CONPAS" else f"naccs-{business.lower()}"
                render = renderer("conpas" if business == "CONPAS" else "naccs")
                with gw.sessions() as s:
                    ids = list(s.scalars(select(Delivery.id).where(Delivery.route == route).order_by(Delivery.id)))

                def from_store(render: Any = render, ids: list[int] = ids) -> list[bytes]:
                    out = []
                    for delivery_id in ids:
                        with gw.sessions() as s:
                            out.append(render(s, s.get_one(Delivery, delivery_id), context).payload)
                    return out

                from_store()  # warm-up: definitions, schema, statement caches
                store_s, ours = best(args.repeat, from_store)
                rows.append((f"{business} store (renderer)", store_s, len(ours), sum(map(len, ours))))
                with gw.sessions() as s:
                    loaded = load(s, route)

                    peer = plains.get(business)

                    def plain_run(loaded: list[Loaded] = loaded, plain: Plain | None = peer) -> list[bytes]:
                        if plain is None:  # CONPAS
                            return [plain_conpas(x.form, x.key) for x in loaded if x.form is not None]
                        return [plain.render(x.roots["deal"], x.roots["vessel_call"], x.key[:26]) for x in loaded]

                    if business != "CONPAS":
                        options = gw.config.routes[route].naccs
                        assert options is not None
                        mapping = cached_mapping(options.mapping)
                        lay = layout(mapping.layout_name)

                        def from_objects(
                            loaded: list[Loaded] = loaded, mapping: Any = mapping, lay: Layout = lay, b: str = business
                        ) -> list[bytes]:
                            out = []
                            for x in loaded:
                                handover = x.key[:HANDOVER_LENGTH]
                                header = InputHeader(b, USER_CODE, USER_ID, "", handover, system_id=SYSTEM_ID)
                                out.append(render_message(lay, values_for(mapping, x.roots), header))
                            return out

                        from_objects()
                        objects_s, mine = best(args.repeat, from_objects)
                        rows.append((f"{business} objects (mapping+layout)", objects_s, len(mine), sum(map(len, mine))))
                        if mine != ours:
                            checks.append(f"{business}: the renderer from objects differs from the store's")
                    plain_run()
                    plain_s, theirs = best(args.repeat, plain_run)
                    rows.append((f"{business} plain (hand-written)", plain_s, len(theirs), sum(map(len, theirs))))
                same = sum(a == b for a, b in zip(ours, theirs, strict=False))
                note = f"{business}: {same} of {len(ours)} messages identical byte for byte to the plain formatter's"
                if len(ours) != len(theirs) or same != len(ours):
                    i = next(k for k, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b)
                    note += (
                        f"; first difference: message {i + 1} at byte {first_difference(ours[i], theirs[i])} "
                        f"(lengths {len(ours[i])} and {len(theirs[i])})"
                    )
                checks.append(note)
        finally:
            gw.close()

        w = 36
        print(f"{'':{w}} {'seconds':>8} {'messages/s':>11} {'MB/s':>7} {'bytes/msg':>10} {'ours/plain':>11}")
        plain_rate = {label.split()[0]: m / s for label, s, m, _ in rows if "plain" in label}
        for label, seconds, messages, size in rows:
            rate = messages / seconds
            ratio = rate / plain_rate[label.split()[0]]
            print(
                f"{label:{w}} {seconds:8.3f} {rate:11.0f} {size / seconds / 1e6:7.1f} {size / messages:10.0f} "
                f"{ratio:10.3f}x"
            )
        for label, seconds, messages, _ in rows:
            if "plain" not in label:
                factor = plain_rate[label.split()[0]] / (messages / seconds)
                print(f"  {label}: the plain formatter is {factor:.1f}x faster")
        for note in checks:
            print(note)


if __name__ == "__main__":
    main()
