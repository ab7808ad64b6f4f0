"""The alert verification lifecycle and locally entered BOLOs with approval."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from pydantic import ValidationError

from appliance import PlateCandidate, PlateRead
from appliance._auth import hash_password
from appliance._hotlist.alerts import AlertState, AlertTransitionError
from appliance._hotlist.bolo import BoloError, BoloInput
from appliance._storage import User
from appliance.testing import FakeClock


def read(text: str, box: Any, **kw: Any) -> PlateRead:
    now = box.clock.now()
    return PlateRead(
        camera="gate",
        text=text,
        confidence=0.9,
        first_seen=now,
        last_seen=now,
        box=(0, 0, 10, 5),
        candidates=(PlateCandidate(text, 0.9),),
        crop_jpeg=b"\xff\xd8x",
        **kw,
    )


async def user(box: Any, name: str, role: str) -> User:
    await box.store.create_user(name, hash_password("irrelevant-pw"), role, "Vallejo PD")
    found = await box.store.get_user(name)
    assert found is not None
    return found


def bolo(**overrides: Any) -> BoloInput:
    data = {
        "plate": "7AB*123",
        "state": "CA",
        "category": "major crime (partial plate)",
        "case_number": "26-004512",
        "synopsis": "Grey sedan seen leaving armed robbery at 5th and Main",
        "expires": "2026-01-20",
        **overrides,
    }
    return BoloInput.model_validate(data)


@pytest.fixture
async def box(appliance_host: Any):  # type: ignore[no-untyped-def]
    async with appliance_host(clock=FakeClock()) as running:
        yield running


async def approved_bolo(box: Any, **overrides: Any) -> str:
    officer = await user(box, "officer", "operator")
    sergeant = await user(box, "sergeant", "supervisor")
    bolo_id = await box.bolos.create(bolo(**overrides), officer)
    await box.bolos.decide(bolo_id, "approve", sergeant)
    return str(bolo_id)


# -- BOLOs ---------------------------------------------------------------------------------


async def test_a_bolo_is_inactive_until_someone_else_approves_it(box: Any) -> None:
    officer = await user(box, "officer", "operator")
    sergeant = await user(box, "sergeant", "supervisor")
    bolo_id = await box.bolos.create(bolo(), officer)
    assert box.hotlists.match("7ABX123", "CA") == []  # pending: no alerts
    with pytest.raises(BoloError, match="only a supervisor or administrator"):
        await box.bolos.decide(bolo_id, "approve", officer)
    self_approver = await user(box, "lt", "supervisor")
    own = await box.bolos.create(bolo(case_number="26-000001"), self_approver)
    with pytest.raises(BoloError, match="someone other than its author"):
        await box.bolos.decide(own, "approve", self_approver)
    await box.bolos.decide(bolo_id, "approve", sergeant)
    [hit] = box.hotlists.match("7ABX123", "CA")
    assert hit.hit.kind == "wildcard" and hit.hit.listed.entry.reference == "26-004512"
    assert hit.hit.listed.entry.agency == "officer"  # the entering member
    kinds = [e["kind"] for e in await box.store.events()]
    assert "bolo.created" in kinds and "bolo.approve" in kinds


async def test_an_edit_needs_approval_again(box: Any) -> None:
    bolo_id = await approved_bolo(box)
    officer = await box.store.get_user("officer")
    await box.bolos.edit(
        bolo_id, bolo(synopsis="Grey sedan, partial plate, dent on the left"), officer
    )
    assert box.hotlists.match("7ABX123", "CA") == []
    assert (await box.store.bolos.get(bolo_id)).status == "pending"


async def test_an_expired_bolo_stops_matching(box: Any) -> None:
    await approved_bolo(box, expires="2026-01-02")
    assert box.hotlists.match("7ABX123", "CA")
    box.clock.advance(2 * 86400)
    await box.hotlists.reload_bolos()
    assert box.hotlists.match("7ABX123", "CA") == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("plate", "<script>alert(1)</script>", "at most 16 characters"),
        ("plate", "<b>12", "only letters, digits"),
        ("plate", "****12", "at least three must be known"),
        ("case_number", "investigation", "case number"),
        ("synopsis", "suspect", "at least 10 characters"),
        ("category", "immigration enforcement", "category must be one of"),
        ("state", "California", "pattern"),
    ],
)
def test_bolo_input_is_validated(field: str, value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        bolo(**{field: value})


async def test_expiry_is_bounded(box: Any) -> None:
    officer = await user(box, "officer", "operator")
    with pytest.raises(BoloError, match="in the past"):
        await box.bolos.create(bolo(expires="2025-12-31"), officer)
    with pytest.raises(BoloError, match="at most 90 days"):
        await box.bolos.create(bolo(expires="2026-06-01"), officer)


async def test_retro_search_needs_a_purpose_and_is_audited(box: Any) -> None:
    await box._on_read(read("7ABQ123", box))  # seen before the BOLO existed
    box.clock.advance(3600)
    bolo_id = await approved_bolo(box)
    sergeant = await box.store.get_user("sergeant")
    with pytest.raises(BoloError, match="purpose"):
        await box.bolos.retro_search(bolo_id, sergeant, purpose="", days=7)
    alerts = await box.bolos.retro_search(
        bolo_id, sergeant, purpose="Armed robbery 26-004512: find the car's route", days=7
    )
    assert len(alerts) == 1
    [event] = [e for e in await box.store.events() if e["kind"] == "bolo.retro_search"]
    assert event["actor"] == "sergeant"
    assert event["detail"]["purpose"].startswith("Armed robbery")
    assert event["detail"]["hits"] == 1 and event["detail"]["reads_searched"] == 1


# -- alerts --------------------------------------------------------------------------------


async def an_alert(box: Any) -> str:
    await approved_bolo(box, plate="7ABC123")
    await box._on_read(read("7ABC123", box))
    [alert] = await box.store.alerts.recent()
    return str(alert.id)


async def test_reads_and_alerts_keep_the_plate_out_of_the_log_even_at_debug(
    box: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await an_alert(box)  # a read that matches a BOLO and raises an alert
    await box._on_read(read("8XYZ999", box))  # and one that matches nothing
    assert any("stored" in r.getMessage() for r in caplog.records)
    assert "7ABC123" not in caplog.text and "8XYZ999" not in caplog.text


async def test_alert_walks_the_verification_tiers(box: Any) -> None:
    alert_id = await an_alert(box)
    alerts = box.store.alerts
    with pytest.raises(AlertTransitionError, match="characters, the state and the vehicle"):
        await alerts.transition(alert_id, "op", AlertState.TENTATIVE, verified_characters=True)
    with pytest.raises(AlertTransitionError, match="can only move to tentative"):
        await alerts.transition(alert_id, "op", AlertState.CONFIRMED)
    await alerts.transition(
        alert_id,
        "op",
        AlertState.TENTATIVE,
        verified_characters=True,
        verified_state=True,
        verified_vehicle=True,
    )
    await alerts.transition(alert_id, "op", AlertState.VALIDATED, note="CLETS: record active")
    await alerts.transition(alert_id, "sgt", AlertState.CONFIRMED, note="Vallejo PD confirmed")
    with pytest.raises(AlertTransitionError, match="disposition"):
        await alerts.transition(alert_id, "op", AlertState.CLOSED, disposition="whatever")
    await alerts.transition(alert_id, "op", AlertState.CLOSED, disposition="vehicle recovered")
    with pytest.raises(AlertTransitionError, match="already closed"):
        await alerts.transition(alert_id, "op", AlertState.REJECTED, reason="state mismatch")
    alert = await alerts.get(alert_id)
    assert alert.state is AlertState.CLOSED
    assert [(e.actor, e.to_state.value) for e in alert.events] == [
        ("op", "tentative"),
        ("op", "validated"),
        ("sgt", "confirmed"),
        ("op", "closed"),
    ]
    assert alert.events[-1].detail["disposition"] == "vehicle recovered"


async def test_rejection_needs_a_listed_reason(box: Any) -> None:
    alert_id = await an_alert(box)
    with pytest.raises(AlertTransitionError, match="listed reasons"):
        await box.store.alerts.transition(alert_id, "op", AlertState.REJECTED, reason="meh")
    await box.store.alerts.transition(
        alert_id, "op", AlertState.REJECTED, reason="misread (characters do not match)"
    )
    assert (await box.store.alerts.get(alert_id)).state is AlertState.REJECTED


async def test_two_operators_cannot_both_move_one_alert(box: Any) -> None:
    alert_id = await an_alert(box)
    checks = {"verified_characters": True, "verified_state": True, "verified_vehicle": True}
    results = await asyncio.gather(
        box.store.alerts.transition(alert_id, "a", AlertState.TENTATIVE, **checks),
        box.store.alerts.transition(alert_id, "b", AlertState.TENTATIVE, **checks),
        return_exceptions=True,
    )
    assert sum(isinstance(r, AlertTransitionError) for r in results) == 1
    assert len((await box.store.alerts.get(alert_id)).events) == 1


async def test_covert_alerts_are_hidden_unless_asked_for(box: Any) -> None:
    await approved_bolo(box, plate="7ABC123", covert=True)
    await box._on_read(read("7ABC123", box))
    assert await box.store.alerts.recent() == []
    [alert] = await box.store.alerts.recent(include_covert=True)
    assert alert.covert
    assert await box.store.alerts.get(alert.id) is None
    assert await box.store.alerts.get(alert.id, include_covert=True) is not None
