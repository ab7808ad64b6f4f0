"""Audit events on the appliance clock, retention pruning with a signed checkpoint, verification
against a key the city holds, and the CLI for both."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from console_fixtures import T0, running_appliance
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance._crypto import FieldCipher, load_or_create_key
from appliance._storage import Store
from appliance._storage.audit import (
    AuditPruneRefused,
    load_public_key,
    prune_audit,
    prune_expired_audit,
    public_key_pem,
    verify_audit,
    verify_database,
)
from appliance.testing import FakeClock

OLD = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


async def open_store(data: Path, clock: FakeClock | None = None) -> Store:
    cipher = FieldCipher(load_or_create_key(data / "master.key"))
    store = await Store.open(data / "alprbox.db", cipher)
    store.clock = clock
    return store


@contextlib.contextmanager
def conn(data: Path) -> Iterator[sqlite3.Connection]:
    """The database straight through sqlite3, as someone with disk access would edit it."""
    c = sqlite3.connect(data / "alprbox.db", isolation_level=None)
    try:
        yield c
    finally:
        c.close()


async def history(data: Path, clock: FakeClock, old: int, recent: int) -> None:
    """``old`` events at OLD, then ``recent`` events 400 days later (where the clock stays)."""
    store = await open_store(data, clock)
    try:
        for i in range(old):
            await store.record_event("search", f"officer{i}", {"n": i, "plate": "OLD1234"})
        clock.advance(400 * 86400)
        for i in range(recent):
            await store.record_event("login", f"user{i}", {"n": i})
    finally:
        await store.close()


async def test_events_are_stamped_by_the_appliance_clock(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    async with running_appliance(tmp_path / "data", "", clock) as appliance:
        assert appliance.store is not None
        [created, *_] = await appliance.store.events(10, oldest_first=True)
        assert created["kind"] == "user.created"
        assert datetime.fromisoformat(created["at"]) == T0
        clock.advance(3600)
        await appliance.store.record_event("config.changed", "admin", {})
        [latest] = await appliance.store.events(1)
        assert datetime.fromisoformat(latest["at"]) == T0 + timedelta(hours=1)


async def test_prune_refuses_records_younger_than_a_year(tmp_path: Path) -> None:
    clock = FakeClock(OLD)
    await history(tmp_path, clock, 4, 2)
    store = await open_store(tmp_path, clock)
    try:
        now = clock.now()
        with pytest.raises(AuditPruneRefused, match="less than 365 days ago"):
            await prune_audit(store, now - timedelta(days=364), actor="ops")
        with pytest.raises(AuditPruneRefused, match="at least 365 days"):
            await prune_audit(store, now - timedelta(days=500), actor="ops", retention_days=90)
        assert len(await store.events(100)) == 6 + 2  # nothing pruned; both refusals recorded
        assert [e["kind"] for e in await store.events(2)] == ["audit.prune_refused"] * 2
        assert (await verify_audit(store)).intact
    finally:
        await store.close()


async def test_prune_leaves_a_signed_checkpoint_the_rest_verifies_from(tmp_path: Path) -> None:
    clock = FakeClock(OLD)
    await history(tmp_path, clock, 5, 3)
    store = await open_store(tmp_path, clock)
    try:
        with conn(tmp_path) as c:
            last_old_hash = c.execute("SELECT hash FROM events WHERE id = 5").fetchone()[0]
        result = await prune_expired_audit(store, actor="retention")
        assert (result.pruned, result.through_id) == (5, 5)
        ids = [e["id"] for e in await store.events(100, oldest_first=True)]
        assert ids == [6, 7, 8, 9]  # the 3 recent records and the audit.pruned record
        [pruned] = await store.events(1)
        assert pruned["kind"] == "audit.pruned" and pruned["actor"] == "retention"
        assert pruned["detail"]["through_id"] == 5
        assert pruned["detail"]["through_hash"] == bytes(last_old_hash).hex()
        report = await verify_audit(store)
        assert report.intact and report.checkpoint_id == 5, report
        assert "checkpoint (records 1..5 pruned)" in report.reason
        # Later events still chain; a second prune finds nothing old enough.
        await store.record_event("logout", "user0", {})
        again = await prune_expired_audit(store)
        assert again.pruned == 0 and (await verify_audit(store)).intact
    finally:
        await store.close()
    # Pruned rows are gone from the file, not just hidden (secure_delete zeroes them).
    with conn(tmp_path) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert b"officer0" not in (tmp_path / "alprbox.db").read_bytes()
    # A replica verifies from the checkpoint too, without the master or signing key.
    assert verify_database(tmp_path / "alprbox.db").intact


async def test_tampering_around_the_checkpoint_is_caught(tmp_path: Path) -> None:
    clock = FakeClock(OLD)
    await history(tmp_path, clock, 5, 3)
    store = await open_store(tmp_path, clock)
    try:
        await prune_expired_audit(store)
    finally:
        await store.close()
    database = tmp_path / "alprbox.db"
    original = database.read_bytes()

    # Deleting the first record after the checkpoint: a gap the checkpoint names.
    with conn(tmp_path) as c:
        c.execute("DELETE FROM events WHERE id = 6")
    report = verify_database(database)
    assert not report.intact and report.first_broken_id == 6 and "missing" in report.reason

    # Moving the checkpoint forward to hide more records: its signature no longer verifies.
    database.write_bytes(original)
    with conn(tmp_path) as c:
        raw = json.loads(c.execute(
            "SELECT value FROM meta WHERE key = 'audit_checkpoint'").fetchone()[0])
        raw["id"] = 6
        c.execute("UPDATE meta SET value = ? WHERE key = 'audit_checkpoint'",
                  (json.dumps(raw).encode(),))
    report = verify_database(database)
    assert not report.intact and "checkpoint" in report.reason

    # Removing the checkpoint: the chain no longer starts at genesis.
    database.write_bytes(original)
    with conn(tmp_path) as c:
        c.execute("DELETE FROM meta WHERE key = 'audit_checkpoint'")
    report = verify_database(database)
    assert not report.intact and report.first_broken_id == 1
    assert "records 1..5 are missing" in report.reason


async def test_prune_refuses_a_chain_that_does_not_verify(tmp_path: Path) -> None:
    clock = FakeClock(OLD)
    await history(tmp_path, clock, 4, 2)
    with conn(tmp_path) as c:
        c.execute("UPDATE events SET actor = 'someone else' WHERE id = 2")
    store = await open_store(tmp_path, clock)
    try:
        with pytest.raises(AuditPruneRefused, match="does not verify"):
            await prune_expired_audit(store)
    finally:
        await store.close()
    with conn(tmp_path) as c:
        assert c.execute("SELECT count(*) FROM events WHERE id <= 4").fetchone()[0] == 4


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ALPRBOX_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "appliance", "audit", *args, "--data-dir", str(data)],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )


async def test_cli_prunes_and_verifies_against_the_citys_key(tmp_path: Path) -> None:
    data = tmp_path / "box"
    clock = FakeClock(OLD)  # two and a half years before the real now: prunable
    store = await open_store(data, clock)
    try:
        for i in range(4):
            await store.record_event("search", f"officer{i}", {"n": i})
    finally:
        await store.close()

    exported = await asyncio.to_thread(cli, data, "public-key")
    assert exported.returncode == 0, exported.stderr
    city_key = tmp_path / "city-audit-key.pem"
    city_key.write_text(exported.stdout)
    assert "BEGIN PUBLIC KEY" in exported.stdout

    too_recent = await asyncio.to_thread(cli, data, "prune", "--before",
                                         datetime.now(UTC).date().isoformat())
    assert too_recent.returncode == 1 and "less than 365 days ago" in too_recent.stderr
    pruned = await asyncio.to_thread(cli, data, "prune", "--before", "2025-01-01")
    assert pruned.returncode == 0, pruned.stderr
    # the refusal above is record 5, stamped now: only the four old records go
    assert "pruned 4 audit record(s) through record 4" in pruned.stdout

    ok = await asyncio.to_thread(cli, data, "verify", "--public-key", str(city_key), "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert report["intact"] and report["checkpoint_id"] == 4
    assert report["key_source"] == f"given key {city_key}"

    # Someone with write access re-signs a doctored trail with their own key and swaps the key
    # stored in the database: it verifies against itself, but not against the city's key.
    forger = Ed25519PrivateKey.generate()
    forged_public = forger.public_key().public_bytes(serialization.Encoding.Raw,
                                                     serialization.PublicFormat.Raw)
    with conn(data) as c:
        last_id, last_hash = c.execute(
            "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1").fetchone()
        head = {"id": last_id, "hash": bytes(last_hash).hex(),
                "signature": forger.sign(b"alprbox audit head v1\x00"
                                         + last_id.to_bytes(8, "big", signed=True)
                                         + bytes(last_hash)).hex()}
        c.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'",
                  (json.dumps(head).encode(),))
        c.execute("UPDATE meta SET value = ? WHERE key = 'audit_public_key'", (forged_public,))
    replica = tmp_path / "replica"
    replica.mkdir()
    (replica / "alprbox.db").write_bytes((data / "alprbox.db").read_bytes())
    assert verify_database(replica / "alprbox.db").intact is False  # checkpoint: other key
    bad = await asyncio.to_thread(cli, replica, "verify", "--public-key", str(city_key))
    assert bad.returncode == 1 and "BROKEN" in bad.stdout

    wrong = tmp_path / "not-a-key.txt"
    wrong.write_text("hello")
    unusable = await asyncio.to_thread(cli, data, "verify", "--public-key", str(wrong))
    assert unusable.returncode == 2 and "not an Ed25519 public key" in unusable.stderr


def test_public_key_files_in_hex_and_pem_read_alike(tmp_path: Path) -> None:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    (tmp_path / "k.hex").write_text(raw.hex() + "\n")
    (tmp_path / "k.pem").write_text(public_key_pem(raw))
    assert load_public_key(tmp_path / "k.hex") == raw == load_public_key(tmp_path / "k.pem")
