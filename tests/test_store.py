"""The store: WAL, one writer, migrations, and no plate in clear anywhere on disk."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import PlateCandidate, PlateRead
from appliance._crypto import FieldCipher, MasterKeyError, load_or_create_key
from appliance._storage import Store, migrate, migrations

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def a_read(text: str = "7ABC123", camera: str = "gate", **kw: object) -> PlateRead:
    return PlateRead(
        camera=camera,
        text=text,
        confidence=0.91,
        first_seen=kw.pop("first_seen", T0),  # type: ignore[arg-type]
        last_seen=T0 + timedelta(seconds=2),
        box=(10, 20, 120, 40),
        candidates=(PlateCandidate(text, 0.91), PlateCandidate("7A8C123", 0.4)),
        frames=5,
        crop_jpeg=b"\xff\xd8fake-jpeg-with-" + text.encode() + b"\xff\xd9",
        vehicle_jpeg=b"\xff\xd8fake-vehicle-of-" + text.encode() + b"\xff\xd9",
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    cipher = FieldCipher(load_or_create_key(tmp_path / "master.key"))
    s = await Store.open(tmp_path / "alprbox.db", cipher)
    yield s
    await s.close()


async def test_read_round_trip(store: Store) -> None:
    read = a_read()
    await store.add_read(read)
    [back] = await store.recent_reads()
    assert back.id == read.id and back.text == "7ABC123" and back.camera == "gate"
    assert back.candidates == read.candidates
    assert back.first_seen == T0 and back.frames == 5 and back.box == (10, 20, 120, 40)
    assert await store.get_crop(read.id) == read.crop_jpeg
    assert await store.get_image(read.id, "vehicle") == read.vehicle_jpeg
    assert await store.get_crop("missing") is None


async def test_exact_plate_search_normalizes(store: Store) -> None:
    await store.add_read(a_read("7ABC123"))
    await store.add_read(a_read("8XYZ999"))
    found = await store.find_plate("7abc-123")
    assert [r.text for r in found] == ["7ABC123"]


async def test_database_is_wal_and_migrated(store: Store, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "alprbox.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations()[-1][0]
    # Running the migrations again is a no-op.
    assert migrate(conn) == migrations()[-1][0]
    conn.close()


async def test_no_plate_or_crop_in_clear_on_disk(store: Store, tmp_path: Path) -> None:
    await store.add_read(a_read("ZZTOP42"))
    await store.record_event("search", "officer", {"plate": "ZZTOP42"})
    for path in tmp_path.iterdir():  # the database, its WAL and shm
        if path.is_file():
            data = path.read_bytes()
            assert b"ZZTOP42" not in data, f"plate in clear in {path.name}"
            assert b"fake-jpeg" not in data, f"crop in clear in {path.name}"
            assert b"fake-vehicle" not in data, f"vehicle image in clear in {path.name}"


async def test_wrong_key_is_refused_and_explained(store: Store, tmp_path: Path) -> None:
    await store.add_read(a_read())
    other = FieldCipher(b"\x01" * 32)
    with pytest.raises(MasterKeyError, match="does not match"):
        await Store.open(tmp_path / "alprbox.db", other)


def test_key_file_is_private_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    key = load_or_create_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path) == key
    path.chmod(0o644)
    with pytest.raises(MasterKeyError, match="chmod 600"):
        load_or_create_key(path)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(MasterKeyError, match="expected 32"):
        load_or_create_key(path)


async def test_one_failed_write_does_not_lose_the_others(store: Store) -> None:
    first = a_read("AAA111")
    await store.add_read(first)
    duplicate = a_read("BBB222", id=first.id)  # primary key clash
    good = a_read("CCC333")
    results = await asyncio.gather(
        store.add_read(duplicate), store.add_read(good), return_exceptions=True
    )
    assert isinstance(results[0], sqlite3.IntegrityError)
    assert results[1] is None
    assert sorted(r.text for r in await store.recent_reads()) == ["AAA111", "CCC333"]


async def test_close_commits_everything_accepted(tmp_path: Path) -> None:
    cipher = FieldCipher(load_or_create_key(tmp_path / "k"))
    store = await Store.open(tmp_path / "db", cipher)
    pending = [asyncio.create_task(store.add_read(a_read(f"P{i:05d}"))) for i in range(300)]
    await asyncio.sleep(0)
    await store.close()
    await asyncio.gather(*pending)
    reopened = await Store.open(tmp_path / "db", cipher)
    assert await reopened.count_reads() == 300
    await reopened.close()


async def test_users_and_events(store: Store) -> None:
    await store.create_user("ada", "hash", "operator", "Vallejo PD")
    user = await store.get_user("ada")
    assert user is not None and user.organization == "Vallejo PD" and user.failed_logins == 0
    until = T0 + timedelta(minutes=15)
    await store.update_login_state("ada", failed_logins=5, locked_until=until)
    user = await store.get_user("ada")
    assert user is not None and user.failed_logins == 5 and user.locked_until == until
    await store.record_event("login", "ada", {"ip": "127.0.0.1"})
    [event] = await store.events()
    assert event["kind"] == "login" and event["detail"] == {"ip": "127.0.0.1"}


def test_a_lower_migration_landing_after_a_higher_one_is_still_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel branches can land 0009 after 0010 ran somewhere: it must run, not be skipped."""
    import sqlite3

    from appliance import _storage

    every = _storage.migrations()
    last = every[-1][0]
    conn = sqlite3.connect(tmp_path / "gap.db", isolation_level=None)
    monkeypatch.setattr(_storage, "migrations", lambda: [m for m in every if m[0] != last - 1])
    assert _storage.migrate(conn) == last
    monkeypatch.setattr(_storage, "migrations", lambda: every)
    assert _storage.migrate(conn) == last
    applied = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    assert sorted(applied) == [number for number, _ in every]
    conn.close()
