"""NACCS EDI messages for ``render: naccs`` routes: the route's outbound mapping fills its business layout.

- **Values.** ``naccs/mappings/<business>.yaml`` (:mod:`gateway.naccs.outbound`) names the canonical field of
  each layout item; the roots are the delivery's deal, its container, the container's booking (else the deal's
  first) and that booking's vessel call.
- **Hand-over information** (input header 219:26, echoed in every reply) is the first 26 characters of the
  delivery's idempotency key (32 hex digits, random): unique per delivery, the same on every retry, and stored
  already (``delivery.idempotency_key``), so a reply finds its delivery by prefix (:func:`delivery_for_handover`).
- **Password.** The stored outbound message (the rendered bytes of the ``message`` row) has the password field
  blank. :func:`with_password` writes it, from the route's ``password_env``, into the bytes being sent; the
  dispatcher calls it right before the sink. So the password is never in the database, a log or a dead letter.
- **Errors.** A value that does not fit (OUT-10..15) or a bad header field (OUT-16) is a :class:`RenderError`
  with that code: the delivery goes dead before anything is sent; nothing is ever truncated.
"""

from __future__ import annotations

import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import NaccsRoute, RouteConfig
from gateway.errors import GatewayError
from gateway.model import Booking, Container, Deal, Delivery
from gateway.naccs.frame import InputHeader, set_password
from gateway.naccs.layout import layout
from gateway.naccs.outbound import cached_mapping, values_for
from gateway.naccs.render import render_message
from gateway.outbound.renderers import RenderContext, Rendered, RenderError, SendPreparer
from gateway.outbound.sinks import SinkError

HANDOVER_LENGTH = 26


def handover_for(delivery: Delivery) -> str:
    return delivery.idempotency_key[:HANDOVER_LENGTH]


def delivery_for_handover(session: Session, handover: str) -> Delivery | None:
    """The delivery whose NACCS message carried ``handover`` (None when no delivery did)."""
    handover = handover.strip()
    if len(handover) != HANDOVER_LENGTH or not all(c in "0123456789abcdef" for c in handover):
        return None
    return session.scalars(select(Delivery).where(Delivery.idempotency_key.startswith(handover)).limit(1)).first()


def route_options(route: RouteConfig | None, name: str) -> NaccsRoute:
    if route is None or route.naccs is None:
        raise RenderError(f"route {name!r} has no naccs section (or the dispatcher did not pass the routes)")
    return route.naccs


def render(session: Session, delivery: Delivery, context: RenderContext) -> Rendered:
    options = route_options(context.routes.get(delivery.route), delivery.route)
    deal = session.get(Deal, delivery.deal_id) if delivery.deal_id else None
    if deal is None:
        raise RenderError("a NACCS message needs a deal")
    container = session.get(Container, delivery.container_id) if delivery.container_id else None
    booking = container.booking if container and container.booking else None
    if booking is None:
        booking = session.scalars(select(Booking).where(Booking.deal_id == deal.id).order_by(Booking.id)).first()
    roots = {"deal": deal, "container": container, "booking": booking, "vessel_call": booking and booking.vessel_call}
    mapping = cached_mapping(options.mapping)
    try:
        values = values_for(mapping, roots)
    except ValueError as exc:
        raise RenderError(str(exc), code="OUT-12") from None
    header = InputHeader(
        business_code=options.business,
        user_code=options.user_code,
        user_id=options.user_id,
        password="",  # written at send time by with_password, never stored
        handover=handover_for(delivery),
        system_id=options.system_id,
    )
    try:
        payload = render_message(layout(options.layout or mapping.layout_name), values, header, options.encoding)
    except GatewayError as exc:
        raise RenderError(exc.text, code=exc.code) from None
    subject = container.number if container else (deal.bl_number or deal.deal_number)
    return Rendered(
        payload=payload,
        name=f"{options.business}_{subject}_{delivery.idempotency_key[:12]}.naccs",
        content_type=f"application/x-naccs-edi; charset={options.encoding}",
        message_type=f"NACCS-{options.business}",
    )


def password_writer(route: RouteConfig) -> SendPreparer | None:
    """Writes the password from the route's ``password_env`` into each payload at send time, so it is never in
    the database, a log or a dead letter. An unset variable, or a password that does not fit the header, is a
    permanent send error naming the variable (the value is never shown), not a blank password sent."""
    if route.naccs is None:
        return None
    variable = route.naccs.password_env

    def write(payload: bytes) -> bytes:
        password = os.environ.get(variable)
        if not password:
            raise SinkError(f"the NACCS password variable {variable} is not set", retryable=False)
        try:
            return set_password(payload, password)
        except GatewayError as exc:
            raise SinkError(f"{exc.code}: {exc.text}", retryable=False) from None

    return write
