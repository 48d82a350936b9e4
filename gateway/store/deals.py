"""Deals as the dashboard reads them, and the one rule of who may see what of a deal.

The rule (domain.md §1, Cyber Port's permissions):

- a staff user (no partner) sees every deal and every form;
- a partner user sees only the deals its partner takes part in (a ``participation`` row), and within such a
  deal only the forms whose type its participation grants ``Read`` or ``ReadWrite``; ``none`` (or a form type
  not listed) hides the form. A deal it does not take part in does not exist for it (the page answers 404).

:func:`visible_deals` (the deal filter) and :func:`readable_form_types` (the form filter) are that rule; every
query below goes through them, so no page can forget it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session

from gateway.model import Container, Deal, Event, Form, Message, Participation, Partner, Right

PAGE = 50
READABLE = frozenset({Right.READ.value, Right.READ_WRITE.value})


# ---- the rule


def visible_deals(partner_id: int | None) -> ColumnElement[bool]:
    """Where-clause on ``Deal``: every deal for staff (``partner_id`` None), else the partner's deals."""
    if partner_id is None:
        return true()
    return Deal.id.in_(select(Participation.deal_id).where(Participation.partner_id == partner_id))


def readable_form_types(rights: dict[str, Any]) -> frozenset[str]:
    """The form types a participation's rights let its partner read (Read or ReadWrite; none hides)."""
    return frozenset(form_type for form_type, right in rights.items() if right in READABLE)


def can_read_form(partner_id: int | None, participation: Participation | None, form_type: str) -> bool:
    """Whether a user of ``partner_id`` (None: staff) may read a form of this type on a deal where its
    partner's participation is ``participation`` (None: it does not take part)."""
    if partner_id is None:
        return True
    if participation is None or participation.partner_id != partner_id:
        return False
    return form_type in readable_form_types(participation.rights)


# ---- queries


def search(
    s: Session, partner_id: int | None, text: str | None = None, *, before: int | None = None, limit: int = PAGE
) -> list[dict[str, Any]]:
    """Deals newest first (keyset on ``id``: ``before`` is the last id of the previous page), filtered by the
    rule and by ``text``: an exact deal number, B/L, booking or container number (each an indexed column)."""
    q = select(Deal).where(visible_deals(partner_id)).order_by(Deal.id.desc()).limit(limit)
    if before is not None:
        q = q.where(Deal.id < before)
    wanted = (text or "").strip().upper()
    if wanted:
        q = q.where(
            or_(
                Deal.deal_number == wanted,
                Deal.bl_number == wanted,
                Deal.booking_number == wanted,
                Deal.id.in_(select(Container.deal_id).where(Container.number == wanted)),
            )
        )
    deals = list(s.scalars(q))
    ids = [d.id for d in deals]
    containers: dict[int, int] = {}
    if ids:
        rows = s.execute(
            select(Container.deal_id, func.count()).where(Container.deal_id.in_(ids)).group_by(Container.deal_id)
        )
        containers = {deal_id: n for deal_id, n in rows if deal_id is not None}
    return [
        {
            "id": d.id,
            "deal_number": d.deal_number,
            "direction": d.direction,
            "bl_number": d.bl_number,
            "booking_number": d.booking_number,
            "carrier_scac": d.carrier_scac,
            "customs_status": d.customs_status,
            "containers": containers.get(d.id, 0),
            "updated_at": d.updated_at,
        }
        for d in deals
    ]


@dataclass
class DealView:
    """One deal as a user may see it: forms already filtered by the rule."""

    deal: Deal
    forms: list[Form]
    hidden_forms: int  # forms of the deal this user may not read (staff: 0)
    containers: list[Container]
    events: Sequence[tuple[Event, Message | None]]
    participants: list[tuple[Participation, Partner]]
    form_types: list[str] = field(default_factory=list)  # columns of the participants' rights table


def view(s: Session, deal_id: int, partner_id: int | None) -> DealView | None:
    """The deal for a user of ``partner_id`` (None: staff), or None when it does not exist for that user."""
    deal = s.scalar(select(Deal).where(Deal.id == deal_id, visible_deals(partner_id)))
    if deal is None:
        return None
    participants = [
        (part, partner)
        for part, partner in s.execute(
            select(Participation, Partner)
            .join(Partner, Partner.id == Participation.partner_id)
            .where(Participation.deal_id == deal.id)
            .order_by(Partner.code)
        )
    ]
    mine = next((p for p, _ in participants if p.partner_id == partner_id), None)
    all_forms = list(s.scalars(select(Form).where(Form.deal_id == deal.id).order_by(Form.type_code, Form.subject)))
    forms = [f for f in all_forms if can_read_form(partner_id, mine, f.type_code)]
    containers = list(s.scalars(select(Container).where(Container.deal_id == deal.id).order_by(Container.number)))
    events = [
        (event, message)
        for event, message in s.execute(
            select(Event, Message)
            .outerjoin(Message, Message.id == Event.message_id)
            .where(Event.deal_id == deal.id)
            .order_by(Event.id)
        )
    ]
    form_types = sorted({f.type_code for f in all_forms} | {t for p, _ in participants for t in p.rights})
    return DealView(
        deal=deal,
        forms=forms,
        hidden_forms=len(all_forms) - len(forms),
        containers=containers,
        events=events,
        participants=participants,
        form_types=form_types,
    )


def summary(payload: dict[str, Any], limit: int = 6) -> list[tuple[str, str]]:
    """A few scalar fields of a form's payload, for a table cell (lists and objects shown as their size)."""
    out: list[tuple[str, str]] = []
    for key, value in payload.items():
        if value is None or value == "" or value == [] or value == {}:
            continue
        if isinstance(value, list):
            text = f"[{len(value)}]"
        elif isinstance(value, dict):
            text = "{…}"
        else:
            text = str(value)
        out.append((key, text if len(text) <= 40 else text[:39] + "…"))
        if len(out) == limit:
            break
    return out
