"""The policy gate (issue 7): the adversarial share table, the denylist's false positives, the
registry refusing what config tries to approve, the audit chain stopping all sharing, and
replication targets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance._config import RootConfig, parse_config
from appliance._crypto import FieldCipher, load_or_create_key
from appliance._plugins import create_plugin_host
from appliance._policy import denylist
from appliance._policy.gate import (
    DECISION_EVENT,
    PolicyGate,
    Recipient,
    ShareRequest,
    ShareScope,
    share_request_from_dict,
)
from appliance._storage import Store
from appliance.errors import ConfigError
from appliance.testing import FAKES, FakeClock

TABLE = yaml.safe_load((Path(__file__).parent / "data" / "share_attempts.yaml").read_text())
TODAY: date = TABLE["today"]
NOW = datetime(TODAY.year, TODAY.month, TODAY.day, 17, 0, tzinfo=UTC)


def request_for(row: dict[str, Any]) -> ShareRequest:
    """The table's base request with the row's changes (null removes a field)."""
    data = {**TABLE["base"], **{k: v for k, v in row.items() if k not in ("note", "expect")}}
    data["recipients"] = [{k: v for k, v in r.items()} for r in data.get("recipients") or []]
    return share_request_from_dict({k: v for k, v in data.items() if v is not None})


def root(sharing: dict[str, Any] | None = None, **extra: Any) -> RootConfig:
    return RootConfig.model_validate(
        {"sharing": TABLE["registry"] if sharing is None else sharing, **extra}
    )


async def open_store(data: Path) -> Store:
    cipher = FieldCipher(load_or_create_key(data / "master.key"))
    return await Store.open(data / "alprbox.db", cipher)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(tmp_path)
    yield store
    await store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def gate(store: Store, clock: FakeClock) -> PolicyGate:
    return PolicyGate(store, root(), clock)


def test_the_table_is_big_enough_and_every_row_says_what_must_catch_it() -> None:
    assert len(TABLE["denied"]) >= 200
    assert all(row.get("expect") for row in TABLE["denied"])
    assert len(TABLE["allowed"]) >= 10


async def test_every_adversarial_attempt_is_denied_and_audited_with_what_matched(
    gate: PolicyGate, store: Store
) -> None:
    slipped, wrong_rule = [], []
    decisions = []
    for row in TABLE["denied"]:
        decision = await gate.check(request_for(row), "tester", via="test")
        decisions.append(decision)
        if decision.allowed:
            slipped.append(row["note"])
        elif not any(m.startswith(row["expect"]) for m in decision.matched):
            wrong_rule.append((row["note"], row["expect"], decision.matched))
    assert slipped == [], f"{len(slipped)} attempts were allowed: {slipped}"
    assert wrong_rule == []
    events = await store.events(10_000, kind=DECISION_EVENT, oldest_first=True)
    assert len(events) == len(decisions)
    for event, decision in zip(events, decisions, strict=True):
        assert event["actor"] == "tester"
        assert event["detail"]["allowed"] is False
        assert event["detail"]["matched"] == decision.matched
        assert event["detail"]["reasons"] == decision.reasons
        assert event["detail"]["policy_version"] == gate.policy_version


async def test_approved_california_agencies_pass(gate: PolicyGate, store: Store) -> None:
    refused = []
    for row in TABLE["allowed"]:
        decision = await gate.check(request_for(row), "tester", via="test")
        if not decision.allowed:
            refused.append((row["note"], decision.reasons))
        else:
            assert any(m.startswith("registry:agency:CA") for m in decision.matched)
    assert refused == []
    events = await store.events(100, kind=DECISION_EVENT)
    assert len(events) == len(TABLE["allowed"])
    assert all(e["detail"]["allowed"] for e in events)


@pytest.mark.parametrize("name", [
    "Rice County Sheriff's Office", "Office of Emergency Services", "Police Department",
    "California Department of Justice", "Justice Center", "Venice Division", "Alice Springs",
    "San Diego Harbor Police", "El Centro Police Department", "Calexico Police Department",
    "Pacifica Police Department", "Service Center", "Eros Street Station", "Hero Way",
    "Amoco station", "Customer Service", "Border Street", "Dice Road", "Price Avenue",
    "Alameda County Social Services Agency", "CDCR Office of Internal Affairs", "Visalia Police",
    "Office of Inspector General", "Berkeley PD, Community Services Bureau",
])  # fmt: skip
def test_look_alike_legitimate_names_are_not_denylisted(name: str) -> None:
    assert denylist.match_text(name, "agency") == []


def test_denylist_domains_and_oris() -> None:
    for address in ("a@ice.dhs.gov", "https://x.cbp.gov/in", "sub.dhs.gov", "ICE.GOV",
                    "a@uscis.gov"):
        assert denylist.match_domain(address, "email"), address
    for address in ("a@oaklandca.gov", "https://police.berkeleyca.gov/x", "rice.edu", "office.com"):
        assert denylist.match_domain(address, "email") == [], address
    assert denylist.match_ori("VTINS07S0", "ori")[0].label.startswith("ICE")
    assert denylist.match_ori("CA0010900", "ori") == []


# -- configuration cannot weaken the denylist --------------------------------------------------

AGENCY = """\
recognition: {{type: fake}}
sharing:
  enabled: true
  agencies:
    - name: Berkeley Police Department
      ori: CA0010300
      kind: city police
      approved_by: Lt. M. Ortiz
      approved_on: 2026-01-02
      expires: 2026-12-31
    - name: {name}
      ori: {ori}
      kind: {kind}
      email_domains: [{domain}]
      approved_by: Lt. M. Ortiz
      approved_on: 2026-01-02
      expires: 2026-12-31
"""
GOOD = {"name": "Oakland Police Department", "ori": "CA0010900", "kind": "city police",
        "domain": "oaklandca.gov"}


def load(**changes: str) -> None:
    text = AGENCY.format(**{**GOOD, **changes})
    parse_config(text, "site.yaml", create_plugin_host(discover=False, plugins=[FAKES]))


def test_a_registry_of_california_agencies_loads() -> None:
    load()


@pytest.mark.parametrize(("changes", "line", "field", "words"), [
    ({"name": "U.S. Immigration and Customs Enforcement"}, 11, "name", "denylist"),
    ({"name": "I.C.E. liaison unit"}, 11, "name", "denylist"),
    ({"name": "\u0406\u0421\u0415 San Francisco"}, 11, "name", "denylist"),
    ({"name": "Border Patrol El Centro Sector"}, 11, "name", "denylist"),
    ({"name": "Federal Bureau of Investigation"}, 11, "name", "federal"),
    ({"name": "O\u0430kland Police Department"}, 11, "name", "different scripts"),
    ({"ori": "VTINS07S0"}, 12, "ori", "denylist"),
    ({"ori": "CAINS0000"}, 12, "ori", "denylist"),
    ({"ori": "NV0020000"}, 12, "ori", "not a California ORI"),
    ({"ori": "CAFBISF00"}, 12, "ori", "federal"),
    ({"kind": "federal agency"}, 13, "kind", "not a kind of California public agency"),
    ({"domain": "ice.dhs.gov"}, 14, "email_domains", "denylist"),
    ({"domain": "cbp.gov"}, 14, "email_domains", "denylist"),
    ({"domain": "fbi.gov"}, 14, "email_domains", "federal"),
])  # fmt: skip
def test_config_refuses_a_registry_entry_that_is_not_a_california_agency(
    changes: dict[str, str], line: int, field: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(**changes)
    problems = caught.value.problems
    assert any(
        p.startswith(f"site.yaml:{line}: sharing.agencies[1].{field}:") and words in p
        for p in problems
    ), problems


def test_config_cannot_list_an_ori_twice_or_expire_before_approval() -> None:
    with pytest.raises(ConfigError, match="listed twice"):
        load(ori="CA0010300")
    text = AGENCY.format(**GOOD).replace("expires: 2026-12-31\n", "expires: 2025-12-31\n")
    with pytest.raises(ConfigError, match="before approved_on"):
        parse_config(text, "site.yaml", create_plugin_host(discover=False, plugins=[FAKES]))


async def test_sharing_is_off_by_default(store: Store, clock: FakeClock) -> None:
    assert RootConfig().sharing.enabled is False
    gate = PolicyGate(store, root({**TABLE["registry"], "enabled": False}), clock)
    decision = await gate.check(request_for(TABLE["allowed"][0]), "tester")
    assert not decision.allowed
    assert "config:sharing.enabled:false" in decision.matched


async def test_an_expired_registry_approval_stops_sharing(store: Store, clock: FakeClock) -> None:
    gate = PolicyGate(store, root(), clock)
    legit = request_for(TABLE["allowed"][0])
    assert (await gate.check(legit, "tester")).allowed
    clock.advance(250 * 86400)  # past the registry entry's expiry (2026-12-31)
    decision = await gate.check(legit, "tester")
    assert not decision.allowed
    assert any("expired" in r for r in decision.reasons)


# -- the audit chain ---------------------------------------------------------------------------

async def tamper(store: Store, sql: str) -> None:
    await store.write(lambda c: c.execute(sql))


async def test_the_gate_refuses_while_an_audit_record_is_altered(
    store: Store, clock: FakeClock
) -> None:
    gate = PolicyGate(store, root(), clock, full_verify_seconds=600)
    legit = request_for(TABLE["allowed"][0])
    for _ in range(3):
        assert (await gate.check(legit, "tester")).allowed
    assert gate.chain.full_runs == 1  # later checks verified only what was appended
    await tamper(store, "UPDATE events SET actor = 'nobody' WHERE id = 1")
    # An older record edited in place: this gate notices at its next full verification...
    clock.advance(601)
    decision = await gate.check(legit, "tester")
    assert not decision.allowed
    assert "audit:chain:broken:1" in decision.matched
    assert any("audit trail does not verify" in r for r in decision.reasons)
    # ...and the denial itself is on the (broken) trail, with what matched.
    last = (await store.events(1, kind=DECISION_EVENT))[0]
    assert last["detail"]["allowed"] is False
    assert "audit:chain:broken:1" in last["detail"]["matched"]
    # A fresh gate (a restart) refuses at once, and keeps refusing.
    fresh = PolicyGate(store, root(), clock)
    assert not (await fresh.check(legit, "tester")).allowed
    assert not (await fresh.check(legit, "tester")).allowed


async def test_the_gate_notices_at_once_when_the_newest_records_are_deleted_or_edited(
    store: Store, clock: FakeClock
) -> None:
    gate = PolicyGate(store, root(), clock)
    legit = request_for(TABLE["allowed"][0])
    assert (await gate.check(legit, "tester")).allowed
    assert (await gate.check(legit, "tester")).allowed
    await tamper(store, "DELETE FROM events WHERE id = (SELECT max(id) FROM events)")
    assert not (await gate.check(legit, "tester")).allowed

    other = await open_store(store.path.parent / "second")
    try:
        gate2 = PolicyGate(other, root(), clock)
        assert (await gate2.check(legit, "tester")).allowed
        await tamper(other, "UPDATE events SET kind = 'x' WHERE id = (SELECT max(id) FROM events)")
        assert not (await gate2.check(legit, "tester")).allowed
    finally:
        await other.close()


# -- replication targets -----------------------------------------------------------------------

@pytest.mark.parametrize(("url", "allowed"), [
    ("s3://city-alpr-backups/site-1", True),
    ("file:///var/lib/alprbox/replica", True),
    ("/mnt/replica", True),
    ("s3://127.0.0.1:9000/bucket", True),
    ("https://ice.dhs.gov/replica", False),
    ("s3://bucket.s3.cbp.gov/x", False),
    ("s3://share-with-ice/site-1", False),
    ("sftp://backup.dhs.gov/alpr", False),
])  # fmt: skip
async def test_replication_targets(
    gate: PolicyGate, store: Store, url: str, allowed: bool
) -> None:
    decision = await gate.check_replication_target(url)
    assert decision.allowed is allowed, decision.reasons
    event = (await store.events(1, kind=DECISION_EVENT))[0]
    assert event["detail"]["channel"] == "replication"
    assert event["detail"]["request"]["replica"] == url


async def test_replication_only_to_the_citys_storage_when_it_is_named(
    store: Store, clock: FakeClock
) -> None:
    sharing = {**TABLE["registry"], "storage_domains": ["storage.oaklandca.gov"]}
    gate = PolicyGate(store, root(sharing), clock)
    assert (await gate.check_replication_target("https://minio.storage.oaklandca.gov/b")).allowed
    decision = await gate.check_replication_target("https://s3.us-west-2.amazonaws.com/b")
    assert not decision.allowed
    assert "replication:host:not-city-storage:s3.us-west-2.amazonaws.com" in decision.matched


async def test_a_request_round_trips_through_its_dict() -> None:
    request = ShareRequest(
        agency="Oakland PD", ori="CA0010900", person="Sgt. A", email="a@oaklandca.gov",
        purpose="robbery", case_number="26-1", on_behalf_of=("Berkeley Police Department",),
        recipients=(Recipient(name="Oakland PD", url="https://api.oaklandca.gov/x"),),
        channel="webhook",
        scope=ShareScope(plates=("7ABC123",), start=NOW, end=NOW, description="one plate"),
    )
    assert share_request_from_dict(request.as_dict()) == request


def test_the_search_checks_fold_look_alikes_too() -> None:
    from appliance._config import IMMIGRATION_TEXT_TERMS, immigration_term

    assert immigration_term("\u0406\u0421\u0415 asked for it", IMMIGRATION_TEXT_TERMS) == "ice"
    assert immigration_term("Ｄｅｐｏｒｔａｔｉｏｎ") == "deportation"
    assert immigration_term("Office of Emergency Services, police report") is None


TASK_FORCE = {"name": "Alameda County Regional Auto Theft Task Force", "ori": "CA0019900",
              "kind": "task force", "primary_purpose": "stolen vehicle",
              "approved_by": "Lt. M. Ortiz", "approved_on": "2026-01-02", "expires": "2026-12-31"}


@pytest.mark.parametrize(("changes", "words"), [
    ({"primary_purpose": None}, "needs its primary purpose"),
    ({"primary_purpose": "immigration enforcement"}, "immigration enforcement"),
    ({"primary_purpose": "general crime suppression"}, "unknown purpose"),
    ({"kind": "city police"}, "only a task force has a primary purpose"),
])  # fmt: skip
def test_a_task_force_needs_a_non_immigration_primary_purpose(
    changes: dict[str, Any], words: str
) -> None:
    entry = {k: v for k, v in {**TASK_FORCE, **changes}.items() if v is not None}
    text = yaml.safe_dump({"sharing": {"enabled": True, "agencies": [entry]}})
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.yaml", create_plugin_host(discover=False, plugins=[FAKES]))
    assert any(p.startswith("site.yaml:") and words in p for p in caught.value.problems), (
        caught.value.problems
    )


async def test_a_task_force_receives_data_only_for_its_primary_purpose(
    store: Store, clock: FakeClock
) -> None:
    sharing = {**TABLE["registry"], "agencies": [*TABLE["registry"]["agencies"], TASK_FORCE]}
    gate = PolicyGate(store, root(sharing), clock)
    theft = ShareRequest(agency=TASK_FORCE["name"], ori="CA0019900", person="Det. K. Lee",
                         purpose="stolen vehicle", case_number="26-004417")
    assert (await gate.check(theft, "tester")).allowed
    other = await gate.check(
        ShareRequest(agency=TASK_FORCE["name"], ori="CA0019900", person="Det. K. Lee",
                     purpose="homicide", case_number="26-004417"), "tester")
    assert not other.allowed
    assert "registry:agency:task-force-purpose:CA0019900" in other.matched
    via = await gate.check(
        replace(request_for(TABLE["allowed"][0]), purpose="robbery",
                on_behalf_of=(f"{TASK_FORCE['name']} (CA0019900)",)), "tester")
    assert not via.allowed
    assert "registry:on_behalf_of[0]:task-force-purpose:CA0019900" in via.matched
