"""Written sharing requests and standing approvals (issue 7; Vallejo 426.8, Emeryville 429.7,
Oakland 430.8): filing, the gate's pre-check, review by the chief's designee with TOTP re-entry,
expiry, revocation, and deliveries authorized only under a current approval."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from test_policy_gate import NOW, TABLE, open_store, request_for, root

from appliance._auth import hash_password
from appliance._policy.gate import PolicyGate, Recipient
from appliance._policy.requests import SharingError, SharingService
from appliance._storage import Store, User
from appliance.testing import FakeClock

LEGIT = request_for(TABLE["allowed"][0])
ICE_CHAIN = replace(LEGIT, on_behalf_of=("Immigration and Customs Enforcement",))
#: nobody signs in here: one hash serves every user (argon2 is slow on purpose)
PASSWORD_HASH = hash_password("correct horse 42")


class People:
    """Users of each role; the approvers are enrolled in TOTP."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.secrets: dict[str, str] = {}
        self.users: dict[str, User] = {}

    async def add(self, name: str, role: str) -> User:
        await self.store.create_user(name, PASSWORD_HASH, role, "Test City")
        secret = pyotp.random_base32()
        await self.store.identity.enrol(name, secret, 0, [])
        self.secrets[name] = secret
        user = await self.store.get_user(name)
        assert user is not None
        self.users[name] = user
        return user

    def code(self, name: str) -> str:
        """A fresh code: the clock moves to the next 30 s step so no code is reused."""
        self.clock.advance(30)
        return pyotp.TOTP(self.secrets[name]).at(self.clock.now())


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(tmp_path)
    yield store
    await store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def service_for(store: Store, clock: FakeClock, **sharing: Any) -> SharingService:
    return SharingService(PolicyGate(store, root({**TABLE["registry"], **sharing}), clock))


@pytest.fixture
async def people(store: Store, clock: FakeClock) -> People:
    people = People(store, clock)
    await people.add("op", "operator")
    await people.add("analyst", "analyst")
    await people.add("sup", "supervisor")
    await people.add("admin", "administrator")
    await people.add("aud", "auditor")
    return people


async def kinds(store: Store) -> list[str]:
    return [e["kind"] for e in await store.events(1000, oldest_first=True)]


async def test_a_request_is_filed_reviewed_with_mfa_and_kept_on_file(
    store: Store, clock: FakeClock, people: People
) -> None:
    service = service_for(store, clock)
    record, decision = await service.file(LEGIT, ("export", "webhook"), people.users["op"],
                                          attested=True)
    assert decision.allowed and record.status == "pending"
    assert record.request.agency == LEGIT.agency and record.channels == ("export", "webhook")
    # Nothing may go out before approval.
    pending = await service.gate.authorize_delivery(record.id, "export")
    assert not pending.allowed and f"approval:{record.id}:pending" in pending.matched

    approved = await service.decide(record.id, "approve", people.users["sup"], people.code("sup"),
                                    "Verified by phone with the requesting sergeant")
    assert approved.status == "approved" and approved.decided_by == "sup"
    assert approved.expires_at == clock.now() + timedelta(days=30)
    assert approved.note == "Verified by phone with the requesting sergeant"
    delivery = await service.gate.authorize_delivery(record.id, "export", "csv-export")
    assert delivery.allowed and delivery.approval_id == record.id

    kept = await service.get(record.id)
    assert kept is not None and kept.status == "approved"
    events = await kinds(store)
    assert events.count("share.request_filed") == 1
    assert events.count("share.request_approved") == 1
    # pre-check, the re-check at approval, the delivery: each decision audited
    assert events.count("share.decision") == 4
    approval = (await store.events(1, kind="share.request_approved"))[0]
    assert approval["detail"]["mfa"] == "totp" and approval["detail"]["request_id"] == record.id


async def test_the_details_are_encrypted_on_disk(
    store: Store, clock: FakeClock, people: People
) -> None:
    service = service_for(store, clock)
    await service.file(LEGIT, ("export",), people.users["op"], attested=True)
    raw = await store.query(lambda c: c.execute("SELECT payload FROM sharing_requests").fetchone())
    for clear in (b"Oakland", b"CA0010900", b"26-004417", b"Rivera", b"stolen vehicle"):
        assert clear not in bytes(raw[0])


async def test_a_request_the_gate_refuses_is_kept_on_file_as_denied(
    store: Store, clock: FakeClock, people: People
) -> None:
    service = service_for(store, clock)
    record, decision = await service.file(ICE_CHAIN, ("export",), people.users["analyst"],
                                          attested=True)
    assert not decision.allowed
    assert record.status == "denied" and record.decided_by == "policy-gate"
    assert "denylist" in record.note
    with pytest.raises(SharingError, match="only a pending request"):
        await service.decide(record.id, "approve", people.users["sup"], people.code("sup"))
    filed = (await store.events(1, kind="share.request_filed"))[0]["detail"]
    assert filed["precheck_allowed"] is False
    assert any(m.startswith("denylist:on_behalf_of[0]") for m in filed["matched"])


async def test_who_may_file_and_decide(store: Store, clock: FakeClock, people: People) -> None:
    service = service_for(store, clock)
    with pytest.raises(SharingError, match="auditor role may not file"):
        await service.file(LEGIT, ("export",), people.users["aud"], attested=True)
    record, _ = await service.file(LEGIT, ("export",), people.users["sup"], attested=True)
    with pytest.raises(SharingError, match="operator role may not approve"):
        await service.decide(record.id, "approve", people.users["op"], people.code("op"))
    with pytest.raises(SharingError, match="someone other than its filer"):
        await service.decide(record.id, "approve", people.users["sup"], people.code("sup"))
    denied = await service.decide(record.id, "deny", people.users["admin"], people.code("admin"),
                                  "No case connection")
    assert denied.status == "denied" and denied.decided_by == "admin"
    with pytest.raises(SharingError, match="unknown channel"):
        await service.file(LEGIT, ("carrier pigeon",), people.users["op"], attested=True)
    with pytest.raises(SharingError, match="hosting by the city"):
        await service.file(LEGIT, ("replication",), people.users["op"], attested=True)
    with pytest.raises(SharingError, match="must attest"):
        await service.file(LEGIT, ("export",), people.users["op"])


async def test_approval_needs_a_current_unused_totp_code(
    store: Store, clock: FakeClock, people: People
) -> None:
    service = service_for(store, clock)
    record, _ = await service.file(LEGIT, ("export",), people.users["op"], attested=True)
    for bad in ("000000", "", "12345", people.code("admin")):  # the last: someone else's code
        with pytest.raises(SharingError, match="verification code"):
            await service.decide(record.id, "approve", people.users["sup"], bad)
    old = pyotp.TOTP(people.secrets["sup"]).at(clock.now() - timedelta(minutes=5))
    with pytest.raises(SharingError, match="verification code"):
        await service.decide(record.id, "approve", people.users["sup"], old)
    still = await service.get(record.id)
    assert still is not None and still.status == "pending"
    failures = await store.events(10, kind="share.mfa_failed")
    assert len(failures) == 5 and all(f["actor"] == "sup" for f in failures)
    assert all(people.secrets["sup"] not in str(f["detail"]) for f in failures)
    # Five wrong codes lock the account like five wrong sign-ins: even a right code waits.
    with pytest.raises(SharingError, match="locked"):
        await service.decide(record.id, "approve", people.users["sup"], people.code("sup"))
    assert (await store.events(1, kind="account.locked"))[0]["actor"] == "sup"
    clock.advance(15 * 60)

    code = people.code("sup")
    await service.decide(record.id, "approve", people.users["sup"], code)
    # The same code cannot approve a second request (replay).
    second, _ = await service.file(LEGIT, ("export",), people.users["op"], attested=True)
    with pytest.raises(SharingError, match="already used"):
        await service.decide(second.id, "approve", people.users["sup"], code)


async def test_approvals_expire(store: Store, clock: FakeClock, people: People) -> None:
    service = service_for(store, clock, approval_days=7)
    record, _ = await service.file(LEGIT, ("export",), people.users["op"], attested=True)
    approved = await service.decide(record.id, "approve", people.users["sup"], people.code("sup"))
    assert approved.expires_at == clock.now() + timedelta(days=7)
    clock.advance(6 * 86400)
    assert (await service.gate.authorize_delivery(record.id, "export")).allowed
    clock.advance(86400 + 1)
    expired = await service.gate.authorize_delivery(record.id, "export")
    assert not expired.allowed and f"approval:{record.id}:expired" in expired.matched
    kept = await service.get(record.id)
    assert kept is not None and kept.status == "approved" and not kept.current(clock.now())


async def test_a_delivery_is_checked_again_in_full(
    store: Store, clock: FakeClock, people: People
) -> None:
    service = service_for(store, clock)
    record, _ = await service.file(LEGIT, ("export",), people.users["op"], attested=True)
    await service.decide(record.id, "approve", people.users["sup"], people.code("sup"))
    gate = service.gate
    webhook = await gate.authorize_delivery(record.id, "webhook")
    assert not webhook.allowed and f"approval:{record.id}:channel:webhook" in webhook.matched
    other = await gate.authorize_delivery(
        record.id, "export", recipient=Recipient(name="Berkeley Police Department")
    )
    assert not other.allowed and f"approval:{record.id}:recipient-not-approved" in other.matched
    to_ice = await gate.authorize_delivery(
        record.id, "export", recipient=Recipient(email="drop@ice.dhs.gov")
    )
    assert not to_ice.allowed
    assert any(m.startswith("denylist:recipients[0].email") for m in to_ice.matched)
    own = await gate.authorize_delivery(
        record.id, "export", recipient=Recipient(url="https://api.oaklandca.gov/in")
    )
    assert own.allowed
    # The city takes the agency out of its registry: deliveries stop at once.
    registry = {**TABLE["registry"], "agencies": [
        a for a in TABLE["registry"]["agencies"] if a["ori"] != "CA0010900"
    ]}
    later = PolicyGate(store, root(registry), clock)
    removed = await later.authorize_delivery(record.id, "export")
    assert not removed.allowed
    assert "registry:agency:not-approved:CA0010900" in removed.matched
    missing = await gate.authorize_delivery("ffffffffffff", "export")
    assert not missing.allowed and "approval:ffffffffffff:missing" in missing.matched
    assert (await store.events(1, kind="share.decision"))[0]["detail"]["approval_id"] == (
        "ffffffffffff"
    )


async def test_standing_approvals(store: Store, clock: FakeClock, people: People) -> None:
    service = service_for(store, clock, standing_max_days=90)
    until = clock.now().date() + timedelta(days=60)
    standing = replace(LEGIT, purpose="stolen vehicle", case_number="26-000001")
    with pytest.raises(SharingError, match="operator role may not"):
        await service.create_standing(standing, ("partner_query",), until, people.users["op"],
                                      people.code("op"), attested=True)
    with pytest.raises(SharingError, match="at most 90 days"):
        await service.create_standing(standing, ("partner_query",),
                                      until + timedelta(days=60), people.users["sup"],
                                      people.code("sup"), attested=True)
    with pytest.raises(SharingError, match="verification code"):
        await service.create_standing(standing, ("partner_query",), until, people.users["sup"],
                                      "123456", attested=True)
    with pytest.raises(SharingError, match="policy gate refuses"):
        await service.create_standing(replace(standing, on_behalf_of=("ICE",)),
                                      ("partner_query",), until, people.users["sup"],
                                      people.code("sup"), attested=True)
    record = await service.create_standing(standing, ("partner_query", "webhook"), until,
                                           people.users["sup"], people.code("sup"), attested=True)
    assert record.kind == "standing" and record.status == "approved"
    assert (await service.gate.authorize_delivery(record.id, "partner_query")).allowed
    assert (await service.gate.authorize_delivery(record.id, "webhook")).allowed
    assert not (await service.gate.authorize_delivery(record.id, "export")).allowed

    revoked = await service.revoke(record.id, people.users["admin"], people.code("admin"),
                                   "Partner MOU ended")
    assert revoked.status == "revoked"
    after = await service.gate.authorize_delivery(record.id, "partner_query")
    assert not after.allowed and f"approval:{record.id}:revoked" in after.matched
    assert "share.standing_approved" in await kinds(store)
    assert "share.approval_revoked" in await kinds(store)


async def test_the_standing_approval_lapses_after_its_last_day(
    store: Store, clock: FakeClock, people: People
) -> None:
    service = service_for(store, clock)
    until = clock.now().date() + timedelta(days=2)
    record = await service.create_standing(LEGIT, ("export",), until, people.users["admin"],
                                           people.code("admin"), attested=True)
    clock.advance(2 * 86400)
    assert (await service.gate.authorize_delivery(record.id, "export")).allowed
    clock.advance(86400)
    assert not (await service.gate.authorize_delivery(record.id, "export")).allowed


async def test_a_check_under_an_approval_must_be_covered_by_it(
    store: Store, clock: FakeClock, people: People
) -> None:
    service = service_for(store, clock)
    record, _ = await service.file(LEGIT, ("evidence",), people.users["op"], attested=True)
    gate = service.gate
    evidence = replace(LEGIT, channel="evidence")
    pending = await gate.check(evidence, "op", approval_id=record.id)
    assert not pending.allowed and f"approval:{record.id}:pending" in pending.matched
    await service.decide(record.id, "approve", people.users["sup"], people.code("sup"))
    covered = await gate.check(evidence, "op", approval_id=record.id)
    assert covered.allowed and covered.approval_id == record.id
    berkeley = replace(evidence, agency="Berkeley Police Department", ori="CA0010300",
                       email=None)
    assert (await gate.check(berkeley, "op")).allowed  # fine on its own...
    other = await gate.check(berkeley, "op", approval_id=record.id)
    assert not other.allowed  # ...but not under Oakland's approval
    assert f"approval:{record.id}:agency-not-approved" in other.matched
    export = await gate.check(LEGIT, "op", approval_id=record.id)
    assert not export.allowed and f"approval:{record.id}:channel:export" in export.matched
    missing = await gate.check(evidence, "op", approval_id="0123456789ab")
    assert not missing.allowed and "approval:0123456789ab:missing" in missing.matched
