"""CONPAS gate pre-notification: one JSON document per container, the UL090 data set plus trucking fields.

CONPAS publishes no interface specification (domain.md §1); the field names here are the gateway's own and
match the UL090 form on the deal. Trucking company, driver, plate and slot come from COPINO or the operator,
so they are null until a later message fills them.

Every document is validated against ``schemas/conpas-prenotification.schema.json`` (JSON Schema 2020-12) before
it is stored or sent: an invalid one is a RenderError (the delivery is dead, OUT-1, with the schema's complaint
and the JSON path), never sent.

The HTTP peer's answer to a pre-notification is its pre-matching answer (``record_answer``): JSON per
``schemas/conpas-answer.schema.json``, e.g. ``{"container_number": "MSCU1234566", "prematching_result": 0,
"terminal_check": 1, "message": "..."}``. A valid one sets the container's ``conpas_result`` and
``conpas_terminal_check``; valid or not, a ``conpas.answered`` event goes on the deal's timeline, an invalid one
with its ``problems`` (the delivery stays done: CONPAS has the pre-notification).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.model import Container, Deal, Delivery, Form
from gateway.outbound.renderers import RenderContext, Rendered, RenderError
from gateway.store import outbox

log = structlog.get_logger("gateway.dispatch")

SCHEMA = "port-gateway/conpas-prenotification/1"
SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schemas" / "conpas-prenotification.schema.json"
ANSWER_SCHEMA_FILE = SCHEMA_FILE.with_name("conpas-answer.schema.json")
ANSWER_IN_EVENT = 2000  # characters of an answer that is not JSON kept on the event


@cache
def validator(path: Path = SCHEMA_FILE) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
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


def answer_problems(answer: Any, container_number: str) -> list[str]:
    """What is wrong with a decoded pre-matching answer to the pre-notification of ``container_number``."""
    errors = sorted(validator(ANSWER_SCHEMA_FILE).iter_errors(answer), key=lambda e: list(e.absolute_path))
    problems = [f"{e.json_path}: {e.message}" for e in errors[:5]]
    if not problems and answer["container_number"] != container_number:
        problems.append(
            f"$.container_number: {answer['container_number']!r} answers a pre-notification for {container_number}"
        )
    return problems


def record_answer(session: Session, delivery: Delivery, answer: bytes, context: RenderContext) -> None:
    """Record CONPAS's pre-matching answer to the pre-notification ``delivery`` sent: the container's CONPAS
    columns (valid answers only) and a ``conpas.answered`` event (always; with ``problems`` when invalid)."""
    container = session.get(Container, delivery.container_id) if delivery.container_id else None
    if container is None:
        log.warning("CONPAS answer for a delivery without a container", delivery_id=delivery.id)
        return
    detail: dict[str, Any] = {"delivery_id": delivery.id, "route": delivery.route}
    try:
        decoded: Any = json.loads(answer)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        detail["answer"] = answer[:ANSWER_IN_EVENT].decode("utf-8", errors="replace")
        problems = [f"the answer is not JSON: {exc}"]
    else:
        detail["answer"] = decoded
        problems = answer_problems(decoded, container.number)
    if problems:
        detail["problems"] = problems
        log.warning("invalid CONPAS pre-matching answer", container=container.number, problems=problems)
    else:
        container.conpas_result = decoded["prematching_result"]
        container.conpas_terminal_check = decoded["terminal_check"]
        detail.update(
            prematching_result=decoded["prematching_result"],
            terminal_check=decoded["terminal_check"],
            message=decoded.get("message"),
        )
    deal = session.get(Deal, container.deal_id) if container.deal_id else None
    facts = {
        "partner": None,
        "message_type": "CONPAS-ANSWER",
        "full_empty": container.full_empty,
        "direction": deal.direction if deal else None,
    }
    outbox.emit(
        session,
        "conpas.answered",
        context.routes,
        facts,
        message_id=delivery.message_id,
        deal_id=container.deal_id,
        container_id=container.id,
        detail=detail,
    )
