"""The audit trail: hash chain, signed head, tamper detection, the CLI, and the signing key file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance._crypto import FieldCipher, load_or_create_key
from appliance._storage import Store, migrations
from appliance._storage.audit import (
    GENESIS,
    AuditKeyError,
    AuditReport,
    head_message,
    record_hash,
    verify_audit,
    verify_database,
)

PLATE = "ZZTOP42"


def cipher_for(data: Path) -> FieldCipher:
    return FieldCipher(load_or_create_key(data / "master.key"))


@contextlib.contextmanager
def db(data: Path) -> Iterator[sqlite3.Connection]:
    """The database file straight through sqlite3, as someone with disk access would edit it."""
    conn = sqlite3.connect(data / "alprbox.db", isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


async def open_store(data: Path) -> Store:
    return await Store.open(data / "alprbox.db", cipher_for(data))


async def verify(data: Path) -> AuditReport:
    store = await open_store(data)
    try:
        return await verify_audit(store)
    finally:
        await store.close()


async def fill(data: Path, count: int) -> None:
    store = await open_store(data)
    try:
        for i in range(count):
            await store.record_event("search", f"officer{i}", {"plate": PLATE, "n": i})
    finally:
        await store.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path


def head(data: Path) -> dict[str, Any]:
    with db(data) as conn:
        raw = conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()[0]
    return dict(json.loads(raw))


# -- an intact chain -------------------------------------------------------------------------


async def test_chain_verifies_after_many_events_including_concurrent(data: Path) -> None:
    store = await open_store(data)
    try:
        assert (await verify_audit(store)).reason == "no audit records yet"
        for i in range(30):
            await store.record_event("login", f"user{i}", {"i": i})
        await asyncio.gather(
            *(store.record_event("search", f"user{i}", {"i": i}) for i in range(200))
        )
        report = await verify_audit(store)
        assert report.intact, report.reason
        assert report.records == 230 and report.head_id == 230 and report.first_broken_id is None
        assert report.key_source == "key file"
        events = await store.events(limit=1000)
        assert len(events) == 230 and sorted(e["detail"]["i"] for e in events[:200]) == list(
            range(200)
        )
    finally:
        await store.close()
    # Each record chains from the one before it, the first from genesis.
    with db(data) as conn:
        rows = conn.execute(
            "SELECT id, at, kind, actor, detail, prev_hash, hash FROM events ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == list(range(1, 231))
    prev = GENESIS
    for record_id, at, kind, actor, detail, prev_hash, digest in rows:
        assert prev_hash == prev
        assert digest == record_hash(record_id, at, kind, actor, detail, prev_hash)
        prev = digest
    assert head(data)["hash"] == prev.hex()


async def test_rows_from_before_the_migration_are_chained_by_the_next_event(data: Path) -> None:
    with db(data) as conn:
        for number, sql in migrations():
            if number < 4:
                for statement in sql.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        conn.executemany(
            "INSERT INTO events (at, kind, actor, detail) VALUES (?, ?, ?, ?)",
            [(f"2026-05-01T08:0{i}:00+00:00", "login", "ada", b"\x01old") for i in range(3)],
        )
    report = await verify(data)  # migrated to 4, not chained yet: not claimed intact
    assert not report.intact and report.first_broken_id == 1 and "not chained" in report.reason
    await fill(data, 1)
    report = await verify(data)
    assert report.intact, report.reason
    assert report.records == 4 and report.head_id == 4


# -- tampering with records ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("detail", None),  # one ciphertext byte flipped
        ("kind", "login"),
        ("actor", "somebody-else"),
        ("at", "2026-01-01T00:00:00.000000+00:00"),
    ],
)
async def test_changing_a_record_names_it(data: Path, column: str, value: str | None) -> None:
    await fill(data, 12)
    with db(data) as conn:
        if value is None:
            blob = bytearray(conn.execute("SELECT detail FROM events WHERE id = 7").fetchone()[0])
            blob[-1] ^= 1
            conn.execute("UPDATE events SET detail = ? WHERE id = 7", (bytes(blob),))
        else:
            conn.execute(f"UPDATE events SET {column} = ? WHERE id = 7", (value,))
    report = await verify(data)
    assert not report.intact
    assert report.first_broken_id == 7 and "record 7 was altered" in report.reason
    assert report.records == 12


async def test_rehashing_a_changed_record_breaks_the_link_to_the_next(data: Path) -> None:
    await fill(data, 5)
    with db(data) as conn:
        at, kind, detail, prev = conn.execute(
            "SELECT at, kind, detail, prev_hash FROM events WHERE id = 3"
        ).fetchone()
        digest = record_hash(3, at, kind, "nobody", detail, prev)
        conn.execute("UPDATE events SET actor = 'nobody', hash = ? WHERE id = 3", (digest,))
    report = await verify(data)
    assert not report.intact and report.first_broken_id == 4
    assert "does not follow record 3" in report.reason


async def test_deleting_a_middle_record_is_detected(data: Path) -> None:
    await fill(data, 10)
    with db(data) as conn:
        conn.execute("DELETE FROM events WHERE id = 5")
    report = await verify(data)
    assert not report.intact and report.records == 9
    assert report.first_broken_id == 5 and "record 5 is missing" in report.reason


async def test_deleting_the_first_record_is_detected(data: Path) -> None:
    await fill(data, 4)
    with db(data) as conn:
        conn.execute("DELETE FROM events WHERE id = 1")
    report = await verify(data)
    assert not report.intact and report.first_broken_id == 1 and "genesis" in report.reason


async def test_truncation_is_detected_by_the_signed_head(data: Path) -> None:
    await fill(data, 10)
    with db(data) as conn:
        conn.execute("DELETE FROM events WHERE id > 7")
    report = await verify(data)
    assert not report.intact and report.records == 7 and report.head_id == 10
    assert report.first_broken_id == 8
    assert "records 8..10 are missing" in report.reason and "truncated" in report.reason
    # A later append chains from the signed head, not the last row, so the gap stays visible.
    await fill(data, 1)
    report = await verify(data)
    assert not report.intact and report.first_broken_id == 8 and report.records == 8
    with db(data) as conn:
        assert conn.execute("SELECT max(id) FROM events").fetchone()[0] == 11


async def test_records_added_without_the_key_are_detected(data: Path) -> None:
    await fill(data, 3)
    with db(data) as conn:
        prev = conn.execute("SELECT hash FROM events WHERE id = 3").fetchone()[0]
        digest = record_hash(4, "2026-05-01T00:00:00+00:00", "login", "eve", b"x", prev)
        conn.execute(
            "INSERT INTO events (id, at, kind, actor, detail, prev_hash, hash)"
            " VALUES (4, '2026-05-01T00:00:00+00:00', 'login', 'eve', ?, ?, ?)",
            (b"x", prev, digest),
        )
    report = await verify(data)
    assert not report.intact and report.first_broken_id == 4
    assert "after the signed head" in report.reason


# -- tampering with the head -----------------------------------------------------------------


async def test_forged_head_signature_is_detected(data: Path) -> None:
    await fill(data, 6)
    forged = head(data)
    forged["signature"] = bytes(64).hex()
    with db(data) as conn:
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'audit_head'", (json.dumps(forged).encode(),)
        )
    report = await verify(data)
    assert not report.intact and "signature" in report.reason
    # The writer does not launder it: the next event chains as a visible break.
    await fill(data, 1)
    report = await verify(data)
    assert not report.intact and report.first_broken_id == 7 and "tampered" in report.reason


async def test_rewritten_chain_signed_with_another_key_is_detected(data: Path) -> None:
    """Someone rewrites a record, recomputes every hash and re-signs with a key of their own."""
    await fill(data, 4)
    box_key = (await verify(data)).public_key
    assert box_key is not None
    theirs = Ed25519PrivateKey.generate()
    with db(data) as conn:
        conn.execute("UPDATE events SET actor = 'nobody' WHERE id = 2")
        prev = GENESIS
        rows = conn.execute("SELECT id, at, kind, actor, detail FROM events ORDER BY id")
        for record_id, at, kind, actor, detail in rows.fetchall():
            digest = record_hash(record_id, at, kind, actor, detail, prev)
            conn.execute(
                "UPDATE events SET prev_hash = ?, hash = ? WHERE id = ?", (prev, digest, record_id)
            )
            prev = digest
        signed = {
            "id": 4,
            "hash": prev.hex(),
            "signature": theirs.sign(head_message(4, prev)).hex(),
        }
        public = theirs.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        conn.execute(
            "UPDATE meta SET value = ? WHERE key = 'audit_head'", (json.dumps(signed).encode(),)
        )
        conn.execute("UPDATE meta SET value = ? WHERE key = 'audit_public_key'", (public,))
    report = await verify(data)  # on the box: checked against the signing key file
    assert not report.intact and "not this box's signing key" in report.reason
    # A replica alone trusts the key stored in it; given the box's published key, it catches it.
    assert verify_database(data / "alprbox.db").intact
    replica = verify_database(data / "alprbox.db", bytes.fromhex(box_key))
    assert not replica.intact and "not this box's signing key" in replica.reason


# -- the CLI ---------------------------------------------------------------------------------


def audit_cli(data: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ALPRBOX_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "appliance", "audit", "verify", "--data-dir", str(data), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


async def test_cli_on_intact_and_tampered_stores(data: Path) -> None:
    await fill(data, 5)
    ok = await asyncio.to_thread(audit_cli, data)
    assert ok.returncode == 0, ok.stderr
    assert "audit trail intact" in ok.stdout and "5 record(s)" in ok.stdout
    # The check itself was audited, and chained.
    report = await verify(data)
    assert report.intact and report.records == 6

    with db(data) as conn:
        conn.execute("UPDATE events SET kind = 'nothing' WHERE id = 3")
    broken = await asyncio.to_thread(audit_cli, data, "--json")
    assert broken.returncode == 1
    result = json.loads(broken.stdout)
    assert result["intact"] is False and result["first_broken_id"] == 3
    text = await asyncio.to_thread(audit_cli, data)
    assert text.returncode == 1 and "BROKEN at record 3" in text.stdout


async def test_cli_verifies_a_replica_without_keys(data: Path, tmp_path_factory: Any) -> None:
    await fill(data, 3)
    replica = tmp_path_factory.mktemp("replica")
    (replica / "alprbox.db").write_bytes((data / "alprbox.db").read_bytes())
    result = await asyncio.to_thread(audit_cli, replica, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["intact"] and report["records"] == 3 and report["key_source"] == "database"
    # No key was created beside the replica (it would make the next check trust itself).
    assert not (replica / "master.key").exists() and not (replica / "audit-signing.key").exists()
    with db(replica) as conn:
        conn.execute("DELETE FROM events WHERE id = 3")
    truncated = await asyncio.to_thread(audit_cli, replica)
    assert truncated.returncode == 1 and "BROKEN at record 3" in truncated.stdout


def test_cli_without_a_store_says_so(tmp_path: Path) -> None:
    result = audit_cli(tmp_path / "nothing")
    assert result.returncode == 2 and "no store at" in result.stderr


# -- the signing key and the disk ------------------------------------------------------------


async def test_signing_key_file_is_private_and_checked(data: Path) -> None:
    await fill(data, 1)
    key = data / "audit-signing.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    key.chmod(0o644)
    store = await open_store(data)
    try:
        with pytest.raises(AuditKeyError, match=r"readable by others \(mode 644\); chmod 600"):
            await store.record_event("login", "ada", {})
        with pytest.raises(AuditKeyError, match="chmod 600"):
            await verify_audit(store)
    finally:
        await store.close()
    result = await asyncio.to_thread(audit_cli, data)
    assert result.returncode == 2 and "chmod 600" in result.stderr
    key.chmod(0o600)
    assert (await verify(data)).intact  # the refused event was not written


async def test_nothing_in_clear_on_disk(data: Path) -> None:
    store = await open_store(data)
    try:
        await store.record_event("search", "officer", {"plate": PLATE, "purpose": "stolen"})
        [event] = await store.events()
        assert event["detail"]["plate"] == PLATE  # readable with the key...
    finally:
        await store.close()
    for path in data.iterdir():  # ...but not on disk: database, WAL, keys
        if path.is_file():
            content = path.read_bytes()
            assert PLATE.encode() not in content, f"plate in clear in {path.name}"
            assert b"stolen" not in content, f"detail in clear in {path.name}"
