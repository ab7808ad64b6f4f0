"""Audited detection browsing: the closed purpose list, case numbers, reasons, windows, the access
record of every search and refusal, and the ``alprbox audit sample`` memo."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from appliance._config import PURPOSE_CATALOGUE, PolicySettings, parse_config
from appliance._crypto import FieldCipher, load_or_create_key
from appliance._plugins import create_plugin_host
from appliance._search import (
    SearchRefused,
    SearchRequest,
    plate_matches,
    record_view,
    search_reads,
)
from appliance._storage import Store, User
from appliance.errors import ConfigError
from appliance.models import PlateRead
from appliance.testing import FAKES

NOW = datetime.now(UTC).replace(microsecond=0)
GOOD = {
    "purpose": "stolen vehicle",
    "case_number": "26-001234",
    "reason": "Stolen Honda Civic reported by owner, last seen Maple St",
}
IMMIGRATION_SYNONYMS = [
    "immigration enforcement",
    "ICE",
    "ice detainer",
    "CBP",
    "HSI",
    "ERO",
    "USBP",
    "deportation",
    "removal proceedings",
    "civil immigration",
    "border enforcement",
    "Homeland Security",
    "undocumented person",
    "287(g)",
]
ACCESS_FIELDS = ("username", "organization", "purpose", "query", "case_number", "reason")


async def open_store(data: Path) -> Store:
    cipher = FieldCipher(load_or_create_key(data / "master.key"))
    return await Store.open(data / "alprbox.db", cipher)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await open_store(tmp_path)
    try:
        yield s
    finally:
        await s.close()


async def make_user(store: Store, name: str = "jdoe", org: str = "Vallejo PD") -> User:
    await store.create_user(name, "x", "operator", org)
    user = await store.get_user(name)
    assert user is not None
    return user


def read(text: str, ago: timedelta, camera: str = "gate") -> PlateRead:
    seen = NOW - ago
    return PlateRead(
        camera=camera, text=text, confidence=0.9, first_seen=seen, last_seen=seen, box=(0, 0, 1, 1)
    )


def check_access_record(event: dict[str, Any], user: User) -> None:
    """Civil Code 1798.90.52(a): date and time, data queried, username AND organization,
    purpose — all present and non-empty."""
    assert event["at"] and datetime.fromisoformat(event["at"])
    assert event["actor"] == user.username
    detail = event["detail"]
    for field in ACCESS_FIELDS:
        assert detail.get(field), f"{field} missing in {detail}"
    assert detail["username"] == user.username
    assert detail["organization"] == user.organization


# -- policy in the config --------------------------------------------------------------------


def test_policy_defaults_keep_old_configs_valid() -> None:
    host = create_plugin_host(discover=False, plugins=[FAKES])
    config = parse_config("recognition: {type: fake}\n", "site.yaml", host)
    assert config.root.policy.purposes == tuple(PURPOSE_CATALOGUE)
    assert config.root.policy.search_max_days == 30
    assert not any("immigra" in p.lower() for p in PURPOSE_CATALOGUE)


@pytest.mark.parametrize("purpose", IMMIGRATION_SYNONYMS)
def test_config_refuses_immigration_purposes_naming_the_statute(purpose: str) -> None:
    host = create_plugin_host(discover=False, plugins=[FAKES])
    text = f"recognition: {{type: fake}}\npolicy:\n  purposes: [stolen vehicle, {purpose!r}]\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, "site.yaml", host)
    message = " ".join(err.value.problems)
    assert "7284.6" in message and "site.yaml:3" in message


def test_config_refuses_unknown_purposes_and_keys() -> None:
    host = create_plugin_host(discover=False, plugins=[FAKES])
    with pytest.raises(ConfigError) as err:
        parse_config("policy:\n  purposes: [parking]\n  colour: red\n", "site.yaml", host)
    message = " ".join(err.value.problems)
    assert "unknown purpose 'parking'" in message and "policy.colour" in message


def test_config_narrows_purposes_and_checks_the_pattern() -> None:
    policy = PolicySettings(purposes=("amber ALERT", "homicide"))
    assert policy.purposes == ("AMBER alert", "homicide")
    with pytest.raises(ValidationError, match="regular expression"):
        PolicySettings(case_number_pattern="([A-Z")


# -- the request -----------------------------------------------------------------------------


def validate(policy: PolicySettings | None = None, **changes: Any) -> SearchRequest:
    data = {**GOOD, "plate": "7ABC123", **changes}
    return SearchRequest.model_validate(data, context={"policy": policy or PolicySettings()})


@pytest.mark.parametrize("purpose", ["curiosity", "parking", "", *IMMIGRATION_SYNONYMS])
def test_purpose_must_be_on_the_closed_list(purpose: str) -> None:
    with pytest.raises(ValidationError) as err:
        validate(purpose=purpose)
    if purpose in IMMIGRATION_SYNONYMS:
        assert "7284.6" in str(err.value)


def test_purpose_outside_a_narrowed_policy_is_refused() -> None:
    policy = PolicySettings(purposes=("homicide",))
    assert validate(policy, purpose="Homicide").purpose == "homicide"
    with pytest.raises(ValidationError, match="purpose must be one of: homicide"):
        validate(policy, purpose="stolen vehicle")


@pytest.mark.parametrize(
    "reason",
    ["investigation", "INV", "n/a", "Test", "other", "general", "misc", "follow up", "short one",
     "Follow-Up.", "   "],
)  # fmt: skip
def test_vague_reasons_are_refused(reason: str) -> None:
    with pytest.raises(ValidationError, match="reason"):
        validate(reason=reason)


def test_reason_mentioning_immigration_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"7284\.6"):
        validate(reason="ICE asked us to locate this vehicle for a removal")
    with pytest.raises(ValidationError, match=r"7284\.6"):
        validate(on_behalf_of="U.S. Immigration and Customs Enforcement")


@pytest.mark.parametrize("case", ["", "INVESTIGATION", "12", "26 001234!", "x" * 30])
def test_case_number_must_match_the_pattern(case: str) -> None:
    with pytest.raises(ValidationError, match="case"):
        validate(case_number=case)
    assert validate(case_number=" 26-001234 ").case_number == "26-001234"
    custom = PolicySettings(case_number_pattern=r"^VPD\d{6}$")
    assert validate(custom, case_number="vpd123456").case_number == "VPD123456"
    with pytest.raises(ValidationError, match="case"):
        validate(custom, case_number="26-001234")


def test_request_shape() -> None:
    assert validate().mode == "exact"
    assert validate(plate="7AB*12*").mode == "partial"
    with pytest.raises(ValidationError, match="three must be known"):
        validate(plate="7****")
    with pytest.raises(ValidationError, match="camera search needs"):
        validate(plate=None, camera="gate")
    with pytest.raises(ValidationError, match="a plate"):
        validate(plate=None)


def test_partial_matching_uses_the_hotlist_normalization() -> None:
    assert plate_matches("7AB*123", "7ab-x12 3")
    assert plate_matches("ABC*", "АВС1")  # Cyrillic look-alikes
    assert not plate_matches("7AB*123", "7ABX1234")
    assert not plate_matches("7AB*123", "8ABX123")


# -- searching, and the access record --------------------------------------------------------


async def test_exact_search_returns_the_plates_reads_in_the_window(store: Store) -> None:
    user = await make_user(store)
    inside = read("7ABC123", timedelta(days=2))
    for r in (inside, read("7ABC124", timedelta(days=1)), read("7ABC123", timedelta(days=45))):
        await store.add_read(r)
    result = await search_reads(store, user, {**GOOD, "plate": "7abc-123"}, NOW)
    assert [r.id for r in result.reads] == [inside.id]
    [event] = await store.events(10)
    assert event["kind"] == "search"
    check_access_record(event, user)
    detail = event["detail"]
    assert detail["query"] == {"mode": "exact", "plate": "7ABC123"}
    assert detail["purpose"] == "stolen vehicle" and detail["case_number"] == "26-001234"
    assert detail["results"] == 1 and detail["policy_version"] == PolicySettings().version()


async def test_partial_and_camera_searches(store: Store) -> None:
    user = await make_user(store)
    a = read("7ABX123", timedelta(hours=5), "gate")
    b = read("7ABY123", timedelta(hours=3), "lot")
    c = read("7ABY1234", timedelta(hours=2), "gate")
    old = read("7ABZ123", timedelta(days=31), "gate")
    for r in (a, b, c, old):
        await store.add_read(r)
    partial = await search_reads(store, user, {**GOOD, "plate": "7AB*123"}, NOW)
    assert [r.id for r in partial.reads] == [b.id, a.id]
    window = {"start": NOW - timedelta(hours=6), "end": NOW - timedelta(hours=1)}
    camera = await search_reads(store, user, {**GOOD, "camera": "gate", **window}, NOW)
    assert [r.id for r in camera.reads] == [c.id, a.id]
    events = await store.events(10)
    assert [e["kind"] for e in events] == ["search", "search"]
    for event in events:
        check_access_record(event, user)
    assert events[0]["detail"]["query"]["mode"] == "camera"
    assert events[0]["detail"]["query"]["camera"] == "gate"


async def test_windows_past_search_max_days_are_refused_and_audited(store: Store) -> None:
    user = await make_user(store)
    policy = PolicySettings(search_max_days=7)
    too_far = {**GOOD, "plate": "7ABC123", "start": NOW - timedelta(days=8)}
    with pytest.raises(SearchRefused, match="policy allows 7"):
        await search_reads(store, user, too_far, NOW, policy=policy)
    ok = {**too_far, "start": NOW - timedelta(days=6)}
    await search_reads(store, user, ok, NOW, policy=policy)
    refused, allowed = reversed(await store.events(10))
    assert refused["kind"] == "search.refused" and "policy allows 7" in refused["detail"]["why"]
    assert allowed["kind"] == "search"
    # A plate search with no window only reaches back search_max_days.
    await store.add_read(read("7ABC123", timedelta(days=10)))
    result = await search_reads(store, user, {**GOOD, "plate": "7ABC123"}, NOW, policy=policy)
    assert result.reads == () and result.start == NOW - timedelta(days=7)


@pytest.mark.parametrize(
    "changes",
    [
        {"purpose": "ICE"},
        {"purpose": "curiosity"},
        {"purpose": None},
        {"reason": "investigation"},
        {"case_number": "N/A"},
        {"plate": None, "camera": "gate"},
    ],
)
async def test_every_refusal_writes_one_complete_access_record(
    store: Store, changes: dict[str, Any]
) -> None:
    user = await make_user(store)
    request = {k: v for k, v in {**GOOD, "plate": "7ABC123", **changes}.items() if v is not None}
    with pytest.raises(SearchRefused) as err:
        await search_reads(store, user, request, NOW)
    [event] = await store.events(10)
    assert event["kind"] == "search.refused"
    check_access_record(event, user)
    assert event["detail"]["why"] == str(err.value)
    assert event["detail"]["results"] == 0


async def test_user_without_organization_is_refused(store: Store) -> None:
    user = await make_user(store, "nobody", org=" ")
    with pytest.raises(SearchRefused, match="organization"):
        await search_reads(store, user, {**GOOD, "plate": "7ABC123"}, NOW)
    [event] = await store.events(10)
    assert event["kind"] == "search.refused" and event["detail"]["organization"]


async def test_record_view_is_audited(store: Store) -> None:
    user = await make_user(store)
    r = read("7ABC123", timedelta(hours=1))
    await store.add_read(r)
    seen = await record_view(store, user, r.id, "homicide", "26-000777")
    assert seen is not None and seen.text == "7ABC123"
    with pytest.raises(SearchRefused, match=r"7284\.6"):
        await record_view(store, user, r.id, "deportation", "26-000777")
    refused, viewed = await store.events(10)
    assert viewed["kind"] == "record.view"
    assert viewed["detail"]["query"] == {"read_id": r.id, "plate": "7ABC123"}
    for event in (viewed, refused):
        assert event["detail"]["username"] == user.username
        assert event["detail"]["organization"] == user.organization
        assert event["detail"]["purpose"] and event["detail"]["query"]
    assert refused["kind"] == "search.refused" and refused["detail"]["action"] == "record.view"


# -- alprbox audit sample --------------------------------------------------------------------


def sample_cli(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALPRBOX_LOG_LEVEL": "WARNING"}
    env.pop("ALPRBOX_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "sample", "--data-dir", str(data), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


async def fill_searches(data: Path, good: int, bad: int) -> set[str]:
    """``good`` compliant searches, ``bad`` non-compliant ones written straight to the trail
    (as a tampered or pre-policy client would have); returns the bad case numbers."""
    store = await open_store(data)
    try:
        user = await make_user(store)
        await store.add_read(read("7ABC123", timedelta(days=200)))
        for i in range(good):
            await search_reads(
                store, user, {**GOOD, "plate": "7ABC123", "case_number": f"26-{i:06d}"}, NOW
            )
        bad_cases = set()
        for i in range(bad):
            case = f"BAD-{i:04d}"
            bad_cases.add(case)
            detail = {
                "username": user.username,
                "organization": user.organization,
                "query": {"mode": "exact", "plate": "7ABC123"},
                "purpose": ["stolen vehicle", "curiosity", "stolen vehicle"][i % 3],
                "case_number": case,
                "reason": ["investigation", "Stolen car from the Safeway lot", "n/a"][i % 3],
                "results": 0,
            }
            await store.record_event("search", user.username, detail)
        return bad_cases
    finally:
        await store.close()


def sampled_rows(memo: str) -> list[list[str]]:
    rows = [line for line in memo.splitlines() if line.startswith("| ") and "Event" not in line]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


async def test_audit_sample_draws_ten_marks_the_bad_and_records_the_memo(tmp_path: Path) -> None:
    bad_cases = await fill_searches(tmp_path, good=24, bad=6)
    memo_path = tmp_path / "memo.md"
    run = await asyncio.to_thread(sample_cli, tmp_path, "--seed", "7", "--out", str(memo_path))
    assert run.returncode == 0, run.stderr
    memo = memo_path.read_text()
    assert "Chief of Police" in memo and "seed 7" in memo and "Inquiries (searches)" in memo
    assert "in the period: 30" in memo
    rows = sampled_rows(memo)
    assert len(rows) == 10
    for row in rows:
        case, verdict = row[6], row[8]
        assert row[3] == "jdoe" and row[4] == "Vallejo PD"
        assert ("NOT COMPLIANT" in verdict) == (case in bad_cases), row
    bad_sampled = sum(1 for row in rows if row[6] in bad_cases)
    assert f"{10 - bad_sampled} compliant, {bad_sampled} not compliant" in memo
    assert "1 plate read(s) older than 183 days" in memo and "no retention purge yet" in memo

    # The same seed draws the same inquiries.
    again = await asyncio.to_thread(sample_cli, tmp_path, "--seed", "7")
    assert again.returncode == 0, again.stderr
    assert [r[1] for r in sampled_rows(again.stdout)] == [r[1] for r in rows]

    store = await open_store(tmp_path)
    try:
        events = [e for e in await store.events(100) if e["kind"] == "audit.sample"]
    finally:
        await store.close()
    assert len(events) == 2
    first = events[-1]["detail"]
    assert first["sha256"] == hashlib.sha256(memo.encode()).hexdigest()
    assert first["seed"] == 7 and first["inquiries"] == 30 and len(first["sampled_event_ids"]) == 10
    assert first["non_compliant"] == bad_sampled


async def test_audit_sample_with_fewer_than_count_audits_all_and_says_so(tmp_path: Path) -> None:
    bad_cases = await fill_searches(tmp_path, good=4, bad=3)
    run = await asyncio.to_thread(sample_cli, tmp_path, "--seed", "1")
    assert run.returncode == 0, run.stderr
    assert "Fewer than 10 inquiries were available (7): **all 7 were audited**" in run.stdout
    assert "only 7 search(es)" in run.stderr
    rows = sampled_rows(run.stdout)
    assert len(rows) == 7
    assert {r[6] for r in rows if "NOT COMPLIANT" in r[8]} == bad_cases
    assert "4 compliant, 3 not compliant" in run.stdout


def test_audit_sample_without_a_store_says_so(tmp_path: Path) -> None:
    result = sample_cli(tmp_path / "nothing")
    assert result.returncode == 2 and "no store at" in result.stderr
