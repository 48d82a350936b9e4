"""``/dashboard/messages``: failed (and any other) messages with filters, one message in detail, and the actions.

Actions (POST, operator role, CSRF token, each audited in the transaction that does it):

- ``/dashboard/messages/{id}/reprocess``: a failed inbound message back to ``received`` and processed again
  from its raw bytes (after a mapping or partner fix; the gateway reads mappings at start, so a mapping fix
  needs a restart first);
- ``/dashboard/messages/{id}/resubmit``: an edited copy of the raw text stored as a new inbound message
  (``resubmitted_from_id`` = the original, which stays as it was), processed at once; the audit row holds a diff
  summary;
- ``/dashboard/messages/{id}/discard``: a failed message ``discarded``, with the reason;
- ``/dashboard/messages/bulk``: reprocess or discard every message of the current filter (at most
  ``BULK_MAX``), after a confirmation page. Bulk reprocess reopens the messages and wakes the worker, which
  processes them (one request never processes 500 messages itself).

A partner user sees and acts on its partner's messages only; another message is answered 404.

No ``from __future__ import annotations``: FastAPI reads the dependency annotations at run time.
"""

import difflib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.model import Container, Deal, Delivery, Event, Message, MessageStatus, Partner, Role
from gateway.store import audit, messages
from gateway.store.messages import MessageFilter
from gateway.web.dashboard.web import Before, RowId, SessionUser, Web, confirmed

PAGE = 50
BULK_MAX = 500  # messages one bulk request acts on
SHOW_MAX = 1_000_000  # bytes of payload shown as segments, a tree or a table; larger ones as plain text
FILTER_KEYS = ("status", "direction", "channel", "partner", "type", "error", "ref", "q", "from", "to")
STATUSES = [s.value for s in MessageStatus]


# ---- filters ----------------------------------------------------------------------------------------------


def _date(text: str, *, end: bool = False) -> datetime | None:
    """``YYYY-MM-DD`` as the start of that day in UTC (the day after, for the end of a range)."""
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return day + timedelta(days=1) if end else day


def read_filter(s: Session, user: SessionUser, params: dict[str, str]) -> tuple[MessageFilter, dict[str, str]]:
    """The filter from the query or form fields (``status`` defaults to failed, ``all`` = any status); a
    partner user is always held to its partner. Returns the filter and the fields as given (for links)."""
    given = {k: params.get(k, "").strip() for k in FILTER_KEYS}
    given["status"] = given["status"] or MessageStatus.FAILED.value
    partner_id: int | None = user.partner_id
    if partner_id is None and given["partner"]:
        partner_id = s.scalar(select(Partner.id).where(Partner.code == given["partner"])) or -1
    f = MessageFilter(
        status=None if given["status"] == "all" else given["status"],
        direction=given["direction"] if given["direction"] in ("in", "out") else None,
        channel=given["channel"] or None,
        partner_id=partner_id,
        message_type=given["type"].upper() or None,
        error_code=given["error"].upper() or None,
        received_from=_date(given["from"]),
        received_to=_date(given["to"], end=True),
        reference=given["ref"] or None,
        search=given["q"] or None,
    )
    return f, given


def _query(given: dict[str, str], **extra: Any) -> str:
    return urlencode({**{k: v for k, v in given.items() if v}, **{k: v for k, v in extra.items() if v is not None}})


def _visible(s: Session, user: SessionUser, message_id: int) -> Message:
    msg = s.get(Message, message_id)
    if msg is None or (user.partner_id is not None and msg.partner_id != user.partner_id):
        raise HTTPException(404)
    return msg


# ---- the payload for people -------------------------------------------------------------------------------


@dataclass
class Shown:
    kind: str  # edifact | xml | naccs | csv | json | text
    lines: list[dict[str, Any]] | None = None  # edifact: number, tag, parts, bad, bad_element
    text: str | None = None  # xml, json, text
    header: list[tuple[str, Any]] | None = None  # naccs
    items: list[str] | None = None  # naccs body lines
    table: dict[str, Any] | None = None  # csv: headers, rows [(line, cells)], bad_row
    note: str | None = None  # why the payload is shown as plain text (an i18n key)


def decode(raw: bytes) -> tuple[str, str]:
    """The raw bytes as text and the encoding that read them (UTF-8, Shift_JIS, EUC-JP, else Latin-1)."""
    for codec in ("utf-8", "cp932", "euc_jp"):
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1"), "latin-1"


def show(msg: Message) -> Shown:
    raw = msg.raw
    if len(raw) > SHOW_MAX:
        return Shown("text", text=decode(raw[:SHOW_MAX])[0], note="msg.payload_cut")
    try:
        if msg.format == "edifact" or (msg.format is None and raw.lstrip()[:3] in (b"UNA", b"UNB", b"UNH")):
            return _edifact(msg)
        if msg.format == "xml":
            return _xml(raw)
        if msg.format == "naccs":
            return _naccs(raw)
        if msg.format == "csv":
            return _csv(msg)
        if msg.format == "json":
            from gateway.formats import json as json_format

            return Shown("json", text=json.dumps(json_format.parse(raw), indent=2, ensure_ascii=False))
    except Exception:  # a payload that cannot be read is shown as text
        return Shown("text", text=decode(raw)[0], note="msg.payload_unreadable")
    return Shown("text", text=decode(raw)[0])


def _edifact(msg: Message) -> Shown:
    """One line per segment from the EDIFACT tokenizer, the failing segment and element marked."""
    from gateway.edifact.tokenizer import Tokenizer

    pos = msg.error_position or {}
    bad_segment, bad_element = pos.get("segment_number"), pos.get("element")
    tokens = Tokenizer.from_bytes(msg.raw, check_repertoire=False)
    lines = []
    for seg in tokens:
        d = tokens.delimiters
        parts = []
        for element in seg.elements:
            values = element if isinstance(element, list) else [element]
            parts.append(d.component.join(v if isinstance(v, str) else d.component.join(v) for v in values))
        bad = seg.number == bad_segment
        lines.append(
            {
                "number": seg.number,
                "tag": seg.tag,
                "parts": parts,
                "sep": d.element,
                "end": d.segment,
                "bad": bad,
                "bad_element": bad_element if bad else None,
            }
        )
    return Shown("edifact", lines=lines)


def _xml(raw: bytes) -> Shown:
    from lxml import etree

    from gateway.formats.xml import parse

    root = parse(raw)  # the hardened parser: no DTD, no entities, no network, bounded depth
    etree.indent(root, space="  ")
    return Shown("xml", text=etree.tostring(root, encoding="unicode"))


def _naccs(raw: bytes) -> Shown:
    from gateway.naccs.frame import DEFAULT_ENCODING
    from gateway.naccs.reply import parse_part

    part = parse_part(raw)
    body = part.body.decode(DEFAULT_ENCODING, errors="replace")
    return Shown("naccs", header=list(asdict(part.header).items()), items=body.split("\r\n"))


def _csv(msg: Message) -> Shown:
    from gateway.formats.csv import read

    table = read(msg.raw)
    path = (msg.error_position or {}).get("path") or ""
    bad_row = None
    if path.startswith("row "):
        digits = path[4:].split(",")[0].strip()
        bad_row = int(digits) if digits.isdigit() else None
    rows = [(line, [cells.get(k, "") for k in cells]) for line, cells in table.rows]
    return Shown("csv", table={"headers": table.headers, "rows": rows, "bad_row": bad_row})


# ---- what the message touched and its lineage -------------------------------------------------------------


def related(s: Session, msg: Message) -> dict[str, Any]:
    events = list(s.scalars(select(Event).where(Event.message_id == msg.id).order_by(Event.id)))
    event_ids = [e.id for e in events]
    caused = (
        list(s.scalars(select(Delivery).where(Delivery.event_id.in_(event_ids)).order_by(Delivery.id)))
        if event_ids
        else []
    )
    sent_by = list(s.scalars(select(Delivery).where(Delivery.message_id == msg.id).order_by(Delivery.id)))
    deal_ids = sorted({e.deal_id for e in events if e.deal_id} | {d.deal_id for d in sent_by if d.deal_id})
    container_ids = sorted(
        {e.container_id for e in events if e.container_id} | {d.container_id for d in sent_by if d.container_id}
    )
    deals = list(s.scalars(select(Deal).where(Deal.id.in_(deal_ids)))) if deal_ids else []
    containers = list(s.scalars(select(Container).where(Container.id.in_(container_ids)))) if container_ids else []
    deliveries = {d.id: d for d in caused + sent_by}
    return {
        "events": events,
        "deliveries": list(deliveries.values()),
        "deals": deals,
        "containers": containers,
        "duplicates": list(s.scalars(select(Message.id).where(Message.duplicate_of_id == msg.id).limit(100))),
        "resubmissions": [
            (m.id, m.status)
            for m in s.scalars(
                select(Message).where(Message.resubmitted_from_id == msg.id).order_by(Message.id).limit(100)
            )
        ],
        "reprocessed": [step for step in msg.steps if step.get("step") == "reprocess"],
        "audit": [audit.as_dict(a) for a in audit_of(s, "message", msg.id)],
    }


def audit_of(s: Session, kind: str, target_id: int) -> list[Any]:
    from gateway.model import Audit

    return list(
        s.scalars(
            select(Audit)
            .where(Audit.target_kind == kind, Audit.target_id == str(target_id))
            .order_by(Audit.id)
            .limit(100)
        )
    )


# ---- routes -----------------------------------------------------------------------------------------------


def diff_summary(before: str, after: str) -> dict[str, Any]:
    """What an edit changed: lines added and removed, and the start of the unified diff (bounded)."""
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), "original", "edited", lineterm="", n=0))
    added = sum(1 for line in diff if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff if line.startswith("-") and not line.startswith("---"))
    shown = "\n".join(diff[:40])
    return {"lines_added": added, "lines_removed": removed, "diff": shown[:4000]}


def routes(web: Web) -> APIRouter:
    router = APIRouter()
    gw = web.gateway
    Viewer = Annotated[SessionUser, Depends(web.require(Role.VIEWER))]
    Operator = Annotated[SessionUser, Depends(web.action(Role.OPERATOR))]

    @router.get("/dashboard/messages", response_class=HTMLResponse)
    def message_list(request: Request, user: Viewer, before: Before = None) -> HTMLResponse:
        with gw.sessions() as s:
            f, given = read_filter(s, user, dict(request.query_params))
            found = messages.find_messages(s, f, before_id=before, limit=PAGE)
            rows = [messages.summary(m) for m in found.rows]
            partners = [] if user.partner_id else list(s.scalars(select(Partner.code).order_by(Partner.code)))
        return web.render(
            request,
            "messages.html",
            user,
            nav="messages",
            rows=rows,
            given=given,
            statuses=STATUSES,
            partners=partners,
            channels=sorted(gw.config.channels),
            older=_query(given, before=found.older) if found.older else None,
            searched=found.searched,
            window=messages.SEARCH_WINDOW,
            bulk_max=BULK_MAX,
        )

    @router.get("/dashboard/messages/{message_id}", response_class=HTMLResponse)
    def message_detail(request: Request, user: Viewer, message_id: RowId) -> HTMLResponse:
        with gw.sessions() as s:
            msg = _visible(s, user, message_id)
            data = messages.summary(msg)
            data["resubmitted_from"] = msg.resubmitted_from_id
            shown = show(msg)
            more = related(s, msg)
            if user.partner_id is not None:  # the audit log (staff names, discard reasons) is for staff only
                more["audit"] = []
            deliveries = [
                {**delivery_row(d), "attempt_log": [_attempt(a) for a in d.attempt_log]} for d in more["deliveries"]
            ]
            text, codec = decode(msg.raw) if msg.direction == "in" and msg.size <= SHOW_MAX else ("", "")
        return web.render(
            request,
            "message.html",
            user,
            nav="messages",
            m=data,
            shown=shown,
            more=more,
            deliveries=deliveries,
            edit_text=text,
            edit_codec=codec,
        )

    @router.post("/dashboard/messages/{message_id}/reprocess")
    def reprocess(user: Operator, message_id: RowId) -> Response:
        with gw.sessions.begin() as s:
            _visible(s, user, message_id)
            try:
                messages.reopen(s, message_id)
            except (LookupError, ValueError) as exc:
                raise HTTPException(409, str(exc)) from None
            audit.record(s, user, "message.reprocess", ("message", message_id))
        gw.process(message_id)
        return RedirectResponse(f"/dashboard/messages/{message_id}", status_code=303)

    @router.post("/dashboard/messages/{message_id}/discard")
    async def discard(request: Request, user: Operator, message_id: RowId) -> Response:
        reason = str((await request.form()).get("reason") or "").strip()
        if not reason:
            raise HTTPException(422, "a reason is required")
        with gw.sessions.begin() as s:
            _visible(s, user, message_id)
            try:
                messages.discard(s, message_id, reason[:500], user.login)
            except (LookupError, ValueError) as exc:
                raise HTTPException(409, str(exc)) from None
            audit.record(s, user, "message.discard", ("message", message_id), {"reason": reason[:500]})
        return RedirectResponse(f"/dashboard/messages/{message_id}", status_code=303)

    @router.post("/dashboard/messages/{message_id}/resubmit")
    async def resubmit(request: Request, user: Operator, message_id: RowId) -> Response:
        form = await request.form()
        edited = str(form.get("raw") or "")
        with gw.sessions() as s:
            msg = _visible(s, user, message_id)
            if msg.direction != "in" or msg.status not in (MessageStatus.FAILED.value, MessageStatus.DISCARDED.value):
                raise HTTPException(
                    409, f"message {message_id} is {msg.status}; only failed or discarded messages are resubmitted"
                )
            before, codec = decode(msg.raw)
            if "\r\n" not in before:  # browsers send a textarea's line breaks as CRLF
                edited = edited.replace("\r\n", "\n")
            try:
                raw = edited.encode(codec)
            except UnicodeEncodeError:
                raise HTTPException(422, f"the edited text cannot be written in {codec}") from None
            if raw == msg.raw:
                raise HTTPException(422, "the text is unchanged; reprocess the message instead")
            channel, partner, filename = msg.channel, msg.partner.code if msg.partner else None, msg.filename
        receipt = gw.receive(raw, channel=channel, partner=partner, filename=filename, resubmitted_from=message_id)
        with gw.sessions.begin() as s:
            detail = {"new_message": receipt.message_id, "encoding": codec, **diff_summary(before, edited)}
            if receipt.duplicate:
                detail["duplicate_of"] = receipt.duplicate_of
            audit.record(s, user, "message.resubmit", ("message", message_id), detail)
        if not receipt.duplicate:
            gw.process(receipt.message_id)
        return RedirectResponse(f"/dashboard/messages/{receipt.message_id}", status_code=303)

    @router.post("/dashboard/messages/bulk", response_class=HTMLResponse)
    async def bulk(request: Request, user: Operator) -> Response:
        form = await request.form()
        params = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        action = params.get("action", "")
        if action not in ("reprocess", "discard"):
            raise HTTPException(422, "unknown action")
        reason = params.get("reason", "").strip()[:500]
        if action == "discard" and not reason:
            raise HTTPException(422, "a reason is required")
        with gw.sessions() as s:
            f, given = read_filter(s, user, params)
            # only failed messages are acted on, whatever status the list showed
            f = MessageFilter(**{**asdict(f), "status": MessageStatus.FAILED.value})
            if action == "reprocess":
                f = MessageFilter(**{**asdict(f), "direction": "in"})
            ids = messages.matching_ids(s, f, BULK_MAX)
        if params.get("confirm") != "yes":
            return web.render(
                request,
                "bulk_confirm.html",
                user,
                nav="messages",
                action=action,
                kind="messages",
                count=len(ids),
                ids=ids,
                reason=reason,
                given=given,
                bulk_max=BULK_MAX,
                post_to="/dashboard/messages/bulk",
                back=f"/dashboard/messages?{_query(given)}",
            )
        ids = confirmed(form, ids)
        done: list[int] = []
        with gw.sessions.begin() as s:
            for message_id in ids:
                try:
                    if action == "reprocess":
                        messages.reopen(s, message_id)
                    else:
                        messages.discard(s, message_id, reason, user.login)
                except (LookupError, ValueError):
                    continue
                done.append(message_id)
                detail = {"bulk": True, **({"reason": reason} if reason else {})}
                audit.record(s, user, f"message.{action}", ("message", message_id), detail)
        if action == "reprocess":
            gw.wake_workers(done)  # the workers process the reopened messages
        return RedirectResponse(f"/dashboard/messages?{_query(given, done=len(done), did=action)}", status_code=303)

    return router


def delivery_row(d: Delivery) -> dict[str, Any]:
    return {
        "id": d.id,
        "route": d.route,
        "status": d.status,
        "attempts": d.attempts,
        "deal_id": d.deal_id,
        "container_id": d.container_id,
        "message_id": d.message_id,
        "replay_of": d.replay_of_id,
        "last_error": d.last_error,
        "created_at": d.created_at.isoformat(),
    }


def _attempt(a: Any) -> dict[str, Any]:
    return {"number": a.number, "outcome": a.outcome, "error": a.error, "at": a.started_at.isoformat()}
