"""The deal permission rule (``gateway.store.deals``): staff see every deal and form; a partner user sees only
the deals its partner takes part in and, within one, only the forms its rights make Read or ReadWrite."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.app import Gateway
from gateway.model import Container, Deal, Form, Participation, Partner
from gateway.store import deals


def _seed(s: Session) -> dict[str, int]:
    one = Partner(code="P-ONE", name="One", business_type="ocean_carrier")
    nyk = Partner(code="P-NYK", name="NYK", business_type="ocean_carrier")
    fwd = Partner(code="P-FWD", name="Forwarder", business_type="forwarder")
    shared = Deal(deal_number="DL-SHARED", direction="export", bl_number="BL1", booking_number="BK1")
    theirs = Deal(deal_number="DL-THEIRS", direction="import", bl_number="BL2", booking_number="BK2")
    s.add_all([one, nyk, fwd, shared, theirs])
    s.flush()
    s.add_all(
        [
            Participation(
                partner_id=one.id,
                deal_id=shared.id,
                business_type="ocean_carrier",
                rights={"UL090": "ReadWrite", "UL050": "Read", "UL040": "none"},
            ),
            Participation(partner_id=fwd.id, deal_id=shared.id, business_type="forwarder", rights={}),
            Participation(
                partner_id=nyk.id, deal_id=theirs.id, business_type="ocean_carrier", rights={"UL290": "ReadWrite"}
            ),
            Form(deal_id=shared.id, type_code="UL090", subject="CSQU3054383", payload={"a": 1}),
            Form(deal_id=shared.id, type_code="UL050", subject="", payload={}),
            Form(deal_id=shared.id, type_code="UL040", subject="", payload={}),
            Form(deal_id=shared.id, type_code="UL150", subject="", payload={}),
            Form(deal_id=theirs.id, type_code="UL290", subject="", payload={}),
            Container(number="CSQU3054383", deal_id=shared.id),
            Container(number="MSCU1234566", deal_id=theirs.id),
        ]
    )
    s.flush()
    return {"one": one.id, "nyk": nyk.id, "fwd": fwd.id, "shared": shared.id, "theirs": theirs.id}


def test_readable_form_types_are_read_and_readwrite_only() -> None:
    rights = {"UL090": "ReadWrite", "UL050": "Read", "UL040": "none", "UL150": "bogus"}
    assert deals.readable_form_types(rights) == {"UL090", "UL050"}
    part = Participation(partner_id=7, deal_id=1, business_type="trucker", rights=rights)
    assert deals.can_read_form(None, None, "UL040")  # staff read everything
    assert deals.can_read_form(7, part, "UL090") and deals.can_read_form(7, part, "UL050")
    assert not deals.can_read_form(7, part, "UL040")  # none
    assert not deals.can_read_form(7, part, "UL290")  # not listed = none
    assert not deals.can_read_form(8, part, "UL090")  # someone else's participation
    assert not deals.can_read_form(7, None, "UL090")  # not in the deal


def test_partner_users_see_only_their_deals_and_readable_forms(gateway: Gateway) -> None:
    with gateway.sessions.begin() as s:
        ids = _seed(s)
        visible = set(s.scalars(select(Deal.deal_number).where(deals.visible_deals(ids["one"]))))
        assert visible == {"DL-SHARED"}
        assert set(s.scalars(select(Deal.deal_number).where(deals.visible_deals(None)))) >= {"DL-SHARED", "DL-THEIRS"}

        assert [r["deal_number"] for r in deals.search(s, ids["one"])] == ["DL-SHARED"]
        assert [r["deal_number"] for r in deals.search(s, ids["nyk"])] == ["DL-THEIRS"]
        assert deals.search(s, ids["one"], "MSCU1234566") == []  # NYK's container: not found for ONE
        assert [r["deal_number"] for r in deals.search(s, None, "mscu1234566")] == ["DL-THEIRS"]
        for key in ("DL-SHARED", "BL1", "BK1", "CSQU3054383"):
            assert [r["deal_number"] for r in deals.search(s, ids["one"], key)] == ["DL-SHARED"], key

        assert deals.view(s, ids["theirs"], ids["one"]) is None  # not a participant: no such deal
        mine = deals.view(s, ids["shared"], ids["one"])
        assert mine is not None
        assert sorted(f.type_code for f in mine.forms) == ["UL050", "UL090"]
        assert mine.hidden_forms == 2
        assert [c.number for c in mine.containers] == ["CSQU3054383"]
        assert [p.code for _, p in mine.participants] == ["P-FWD", "P-ONE"]

        fwd = deals.view(s, ids["shared"], ids["fwd"])  # in the deal with no rights: the deal, no forms
        assert fwd is not None and fwd.forms == [] and fwd.hidden_forms == 4

        staff = deals.view(s, ids["shared"], None)
        assert staff is not None and len(staff.forms) == 4 and staff.hidden_forms == 0


def test_keyset_paging(gateway: Gateway) -> None:
    with gateway.sessions.begin() as s:
        s.add_all(Deal(deal_number=f"DL-{i:03}", direction="export") for i in range(7))
        s.flush()
        first = deals.search(s, None, limit=3)
        second = deals.search(s, None, before=first[-1]["id"], limit=3)
        third = deals.search(s, None, before=second[-1]["id"], limit=3)
        names = [r["deal_number"] for r in first + second + third]
        assert names == [f"DL-{i:03}" for i in range(6, -1, -1)]
