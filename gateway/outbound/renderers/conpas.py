"""CONPAS gate pre-notification: one JSON document per container, the UL090 data set plus trucking fields.

CONPAS publishes no interface specification (domain.md §1); the field names here are the gateway's own and
match the UL090 form on the deal. Trucking company, driver, plate and slot come from COPINO or the operator,
so they are null until a later message fills them.

Every document is validated against ``schemas/conpas-prenotification.schema.json`` (JSON Schema 2020-12) before
it is stored or sent: an invalid one is a RenderError (the delivery is dead, OUT-1, with the schema's complaint
and the JSON path), never sent.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.model import Container, Delivery, Form
from gateway.outbound.renderers import RenderContext, Rendered, RenderError

SCHEMA = "port-gateway/conpas-prenotification/1"
SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schemas" / "conpas-prenotification.schema.json"


@cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def check(document: dict[str, Any]) -> None:
    """RenderError naming every place ``document`` breaks the pre-notification schema."""
    errors = sorted(validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        where = "; ".join(f"{e.json_path}: {e.message}" for e in errors[:5])
        raise RenderError(f"the CONPAS pre-notification does not match {SCHEMA_FILE.name}: {where}")


def render(session: Session, delivery: Delivery, _context: RenderContext) -> Rendered:
    container = session.get(Container, delivery.container_id) if delivery.container_id else None
    if container is None or container.deal_id is None:
        raise RenderError("a CONPAS pre-notification needs a container on a deal")
    form = session.scalar(
        select(Form).where(
            Form.deal_id == container.deal_id, Form.type_code == "UL090", Form.subject == container.number
        )
    )
    if form is None:
        raise RenderError(f"container {container.number} has no UL090 gate-in slip")
    document = {
        "schema": SCHEMA,
        "pre_notification_id": delivery.idempotency_key,
        **form.payload,
        "trucking_company": None,
        "driver": None,
        "vehicle_plate": None,
        "slot": None,
    }
    check(document)
    payload = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False).encode("utf-8") + b"\n"
    return Rendered(
        payload=payload,
        name=f"{container.number}_{delivery.idempotency_key[:12]}.json",
        content_type="application/json",
        message_type="CONPAS-PRENOTICE",
    )
