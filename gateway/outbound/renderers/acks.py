"""Acknowledgements back to the sender: CONTRL (syntax) and APERAK (application errors), as EDIFACT.

Both are rendered from the stored raw input of the message the event names, so they say exactly what the
gateway saw. The acknowledgement's own interchange reference is taken from the delivery's idempotency key,
so a resend after a crash repeats the same reference.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.edifact import contrl, writer
from gateway.edifact.envelope import Interchange, read_all
from gateway.edifact.validator import validate
from gateway.errors import GatewayError
from gateway.model import Delivery, Event, Message, utcnow
from gateway.outbound.renderers import RenderContext, Rendered, RenderError


def _source(session: Session, delivery: Delivery) -> tuple[Event, Message]:
    event = session.get(Event, delivery.event_id) if delivery.event_id else None
    message = session.get(Message, event.message_id) if event and event.message_id else None
    if event is None or message is None:
        raise RenderError("an acknowledgement needs the inbound message it answers")
    return event, message


def _reference(delivery: Delivery) -> str:
    return delivery.idempotency_key[:14].upper()


def render_contrl(session: Session, delivery: Delivery, context: RenderContext) -> Rendered:
    _, message = _source(session, delivery)
    try:
        interchanges, messages = read_all(message.raw)
    except GatewayError as err:
        raise RenderError(f"no CONTRL: the interchange cannot be read far enough to answer ({err})") from None
    partner = context.partners.get(message.partner.code) if message.partner else None
    agreed = partner.edifact_versions if partner and partner.edifact_versions else None
    reports = [contrl.MessageReport(m, validate(m, agreed_versions=agreed) or []) for m in messages]
    now = utcnow()
    payload = b"".join(
        contrl.build(i, [r for r in reports if r.message.interchange is i], reference=_reference(delivery), now=now)
        for i in interchanges
    )
    return Rendered(payload, f"CONTRL_{_reference(delivery)}.edi", "application/edifact", "CONTRL")


def render_aperak(session: Session, delivery: Delivery, _context: RenderContext) -> Rendered:
    """One APERAK (D.95B) for the message the application refused: its reference, the error code and text."""
    event, message = _source(session, delivery)
    error = (event.detail or {}).get("error") or {}
    try:
        interchanges, messages = read_all(message.raw)
    except GatewayError as err:
        raise RenderError(f"no APERAK: the interchange cannot be read ({err})") from None
    number = (error.get("position") or {}).get("message_number") or 1
    refused = next((m for m in messages if m.number == number), messages[0] if messages else None)
    if refused is None or not interchanges:
        raise RenderError("no APERAK: the payload holds no message")
    inter: Interchange = refused.interchange
    now = utcnow()
    text = str(error.get("text") or "refused")
    lines = [text[i : i + 70] for i in range(0, min(len(text), 350), 70)] or ["refused"]
    body: list[list[object]] = [
        ["BGM", "305", refused.reference, "27"],  # application error report, message not accepted
        ["DTM", ["137", now.strftime("%Y%m%d%H%M"), "203"]],
        ["RFF", ["ACW", refused.reference]],  # the message answered
        ["ERC", str(error.get("code") or "INT-1")],
        ["FTX", "AAO", "", "", lines],
    ]
    h = inter.header
    recipient = [h.element(2, 1), h.element(2, 2)]  # the sender of what we answer
    sender = [h.element(3, 1), h.element(3, 2)]
    unb = [
        "UNB",
        ["UNOC", "3"],
        sender,
        recipient,
        [now.strftime("%y%m%d"), now.strftime("%H%M")],
        _reference(delivery),
    ]
    payload = writer.interchange(unb, [(["UNH", "1", ["APERAK", "D", "95B", "UN"]], body)])
    return Rendered(payload, f"APERAK_{_reference(delivery)}.edi", "application/edifact", "APERAK")
