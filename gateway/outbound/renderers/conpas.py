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

The same answer can come later as a message of its own (CONPAS calls back or drops a file): the pipeline reads it
as JSON with ``"type": "conpas.prematching_answer"``, validates it against the same schema and hands it to
``record_inbound_answer``. Both paths record through ``apply_answer``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import RouteConfig
from gateway.errors import GatewayError, Position
from gateway.formats import json as jsonformat
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


def answer_errors(answer: Any) -> list[jsonschema.ValidationError]:
    """Where a decoded pre-matching answer breaks ``schemas/conpas-answer.schema.json``, in document order."""
    return sorted(validator(ANSWER_SCHEMA_FILE).iter_errors(answer), key=lambda e: list(e.absolute_path))


def answer_problems(answer: Any, container_number: str) -> list[str]:
    """What is wrong with a decoded pre-matching answer to the pre-notification of ``container_number``."""
    problems = [f"{e.json_path}: {e.message}" for e in answer_errors(answer)[:5]]
    if not problems and answer["container_number"] != container_number:
        problems.append(
            f"$.container_number: {answer['container_number']!r} answers a pre-notification for {container_number}"
        )
    return problems


def record_answer(session: Session, delivery: Delivery, answer: bytes, context: RenderContext) -> None:
    """Record CONPAS's pre-matching answer to the pre-notification ``delivery`` sent (the HTTP answer body): the
    container's CONPAS columns (valid answers only) and a ``conpas.answered`` event (always; with ``problems``
    when invalid), naming the outbound message."""
    container = session.get(Container, delivery.container_id) if delivery.container_id else None
    if container is None:
        log.warning("CONPAS answer for a delivery without a container", delivery_id=delivery.id)
        return
    decoded: Any
    try:
        decoded = jsonformat.parse(answer)  # the same limits as inbound JSON: size, depth, numbers, duplicate keys
    except GatewayError as exc:
        decoded = answer[:ANSWER_IN_EVENT].decode("utf-8", errors="replace")
        problems = [f"the answer is not usable JSON: {exc.code} {exc.text}"]
    else:
        problems = answer_problems(decoded, container.number)
    detail = {"delivery_id": delivery.id, "route": delivery.route}
    apply_answer(session, container, decoded, problems, context.routes, message_id=delivery.message_id, detail=detail)


def record_inbound_answer(
    session: Session,
    answer: dict[str, Any],
    routes: Mapping[str, RouteConfig],
    *,
    message_id: int,
    partner: str | None,
    path: str = "$",
) -> None:
    """Record a valid pre-matching answer that came as a message of its own (``pipeline``: JSON with
    ``"type": "conpas.prematching_answer"``), naming the inbound message ``message_id``.

    Its container: the one of the pre-notification it echoes (``pre_notification_id`` = the delivery's
    idempotency key), else the newest container row with its number (a number is reused over the years; the
    newest row is the current use). PER-3 when no container has the number (MAP-3 when the echoed
    pre-notification was for another container); ``path`` is the answer's place in the payload (``$[2]``)."""
    number = answer["container_number"]
    delivery = None
    if answer.get("pre_notification_id"):
        delivery = session.scalar(select(Delivery).where(Delivery.idempotency_key == answer["pre_notification_id"]))
    container = session.get(Container, delivery.container_id) if delivery and delivery.container_id else None
    if container is not None and container.number != number:
        raise GatewayError(
            "MAP-3",
            f"the answer for container {number} echoes pre-notification {answer['pre_notification_id']}, "
            f"which was for container {container.number}",
            Position(path=f"{path}.container_number"),
            step="persist",
        )
    if container is None:
        container = session.scalar(select(Container).where(Container.number == number).order_by(Container.id.desc()))
    if container is None:
        raise GatewayError(
            "PER-3",
            f"the CONPAS answer names container {number}, which the store does not know",
            Position(path=f"{path}.container_number"),
            step="persist",
        )
    detail: dict[str, Any] = {"delivery_id": delivery.id, "route": delivery.route} if delivery else {}
    apply_answer(session, container, answer, [], routes, message_id=message_id, detail=detail, partner=partner)


def apply_answer(
    session: Session,
    container: Container,
    answer: Any,
    problems: list[str],
    routes: Mapping[str, RouteConfig],
    *,
    message_id: int | None,
    detail: dict[str, Any],
    partner: str | None = None,
) -> None:
    """The one place a pre-matching answer is recorded, however it came: a valid one (no ``problems``) sets the
    container's ``conpas_result`` and ``conpas_terminal_check``; valid or not, ``conpas.answered`` goes on the
    deal's timeline with the answer, naming ``message_id`` (the pre-notification for an HTTP answer, the inbound
    message for an answer that came on its own)."""
    detail = {**detail, "answer": answer}
    if problems:
        detail["problems"] = problems
        log.warning("invalid CONPAS pre-matching answer", container=container.number, problems=problems)
    else:
        container.conpas_result = answer["prematching_result"]
        container.conpas_terminal_check = answer["terminal_check"]
        detail.update(
            prematching_result=answer["prematching_result"],
            terminal_check=answer["terminal_check"],
            message=answer.get("message"),
        )
    deal = session.get(Deal, container.deal_id) if container.deal_id else None
    facts = {
        "partner": partner,
        "message_type": "CONPAS-ANSWER",
        "full_empty": container.full_empty,
        "direction": deal.direction if deal else None,
    }
    outbox.emit(
        session,
        "conpas.answered",
        routes,
        facts,
        message_id=message_id,
        deal_id=container.deal_id,
        container_id=container.id,
        detail=detail,
    )
