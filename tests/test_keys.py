"""Master key providers, keys.db, rotation: the keys live apart from the data, and say so when
they are missing or wrong."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import PlateRead
from appliance._crypto import FieldCipher, MasterKeyError, load_or_create_key
from appliance._lifecycle.keyprovider import (
    FileKeyProvider,
    key_provider,
    load_master_key,
)
from appliance._lifecycle.keyring import KEYS_DB, KeyRing
from appliance._lifecycle.settings import KeySettings
from appliance._storage import Store
from appliance.testing import FakeClock, make_appliance, plate_read

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def a_read(text: str, at: datetime = T0) -> PlateRead:
    return plate_read(text, at)


def settings(**kw: object) -> KeySettings:
    return KeySettings.model_validate(kw)


async def test_key_file_outside_data_dir_is_created_once_and_reused(tmp_path: Path) -> None:
    data, key = tmp_path / "data", tmp_path / "etc" / "master.key"
    first = load_master_key(settings(master_key_file=key), data, "site")
    assert key.stat().st_mode & 0o777 == 0o600
    store = await Store.open(data / "alprbox.db", FieldCipher(first))
    await store.add_read(a_read("KEY1234"))
    await store.close()
    again = load_master_key(settings(master_key_file=key), data, "site")
    assert again == first
    assert not (data / "master.key").exists()
    reopened = await Store.open(data / "alprbox.db", FieldCipher(again))
    assert [r.text for r in await reopened.find_plate("KEY1234")] == ["KEY1234"]
    await reopened.close()


def test_key_file_inside_data_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="inside the data directory"):
        key_provider(settings(master_key_file=tmp_path / "data" / "k"), tmp_path / "data", "s")


async def test_missing_key_with_existing_store_is_explained_not_replaced(tmp_path: Path) -> None:
    data, key = tmp_path / "data", tmp_path / "master.key"
    store = await Store.open(
        data / "alprbox.db", FieldCipher(load_master_key(settings(master_key_file=key), data, "s"))
    )
    await store.add_read(a_read("LOST123"))
    await store.close()
    key.unlink()
    with pytest.raises(MasterKeyError, match="missing"):
        load_master_key(settings(master_key_file=key), data, "s")
    assert not key.exists(), "a new key was created for a store that holds data"


async def test_corrupt_key_file_is_explained(tmp_path: Path) -> None:
    data, key = tmp_path / "data", tmp_path / "master.key"
    load_master_key(settings(master_key_file=key), data, "s")
    key.write_bytes(b"\x00" * 7)
    with pytest.raises(MasterKeyError, match="expected 32"):
        load_master_key(settings(master_key_file=key), data, "s")


async def test_wrong_key_against_keys_db_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = await Store.open(data / "alprbox.db", FieldCipher(os.urandom(32)))
    await store.add_read(a_read("WRONG12"))
    await store.close()
    with pytest.raises(MasterKeyError, match="does not match"):
        await Store.open(data / "alprbox.db", FieldCipher(os.urandom(32)))


async def test_missing_keys_db_is_explained(tmp_path: Path) -> None:
    data, master = tmp_path / "data", os.urandom(32)
    store = await Store.open(data / "alprbox.db", FieldCipher(master))
    await store.add_read(a_read("NOKEYS1"))
    await store.close()
    (data / KEYS_DB).unlink()
    with pytest.raises(MasterKeyError, match=r"keys\.db"):
        await Store.open(data / "alprbox.db", FieldCipher(master))


async def test_passphrase_mode_and_wrong_passphrase(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("TEST_ALPR_PASS", "correct horse battery staple")
    chosen = settings(passphrase="env:TEST_ALPR_PASS")
    store = await Store.open(data / "alprbox.db", FieldCipher(load_master_key(chosen, data, "s")))
    await store.add_read(a_read("PASS123"))
    await store.close()
    # The salt lives in keys.db; the same passphrase gives the same key.
    store = await Store.open(data / "alprbox.db", FieldCipher(load_master_key(chosen, data, "s")))
    assert [r.text for r in await store.recent_reads()] == ["PASS123"]
    await store.close()
    monkeypatch.setenv("TEST_ALPR_PASS", "correct horse battery stapler")
    with pytest.raises(MasterKeyError, match="wrong passphrase"):
        await Store.open(data / "alprbox.db", FieldCipher(load_master_key(chosen, data, "s")))
    monkeypatch.delenv("TEST_ALPR_PASS")
    with pytest.raises(MasterKeyError, match="TEST_ALPR_PASS"):
        load_master_key(chosen, data, "s")


async def test_legacy_key_in_data_dir_keeps_working_and_moves_out(tmp_path: Path) -> None:
    """A store of the old layout (master.key inside, values under derived keys) stays readable,
    then its key moves out once a key file is configured."""
    data = tmp_path / "data"
    legacy_key = load_or_create_key(data / "master.key")
    db = data / "alprbox.db"
    old = FieldCipher(legacy_key)
    # What the old code wrote: format-1 ciphertext and the key check in meta.
    store = await Store.open(db, old)
    await store.close()
    (data / KEYS_DB).unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    blob = FieldCipher(legacy_key).encrypt(b'{"x": 1}', b"legacy|1")
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM meta WHERE key = 'keyring_id'")
        conn.execute("INSERT INTO meta (key, value) VALUES ('key_check', ?)", (old.key_check,))
    conn.close()
    assert blob[:1] == b"\x01"

    found = key_provider(KeySettings(), data, "s")
    assert isinstance(found, FileKeyProvider) and found.path == data / "master.key"
    cipher = FieldCipher(found.load(create=False))
    store = await Store.open(db, cipher)
    assert cipher.decrypt(blob, b"legacy|1") == b'{"x": 1}'
    await store.close()

    outside = tmp_path / "etc" / "master.key"
    moved = key_provider(KeySettings(master_key_file=outside), data, "s")
    assert not (data / "master.key").exists() and outside.read_bytes() == legacy_key
    cipher = FieldCipher(moved.load(create=False))
    store = await Store.open(db, cipher)
    assert cipher.decrypt(blob, b"legacy|1") == b'{"x": 1}'
    await store.close()


async def test_rotation_keeps_data_readable_and_retires_the_old_key(tmp_path: Path) -> None:
    data, key = tmp_path / "data", tmp_path / "master.key"
    chosen = settings(master_key_file=key)
    async with make_appliance(data, config={"keys": {"master_key_file": str(key)}},
                              clock=FakeClock(T0)) as box:
        assert box.store is not None
        await box.store.add_read(a_read("ROT4567"))
        await box.store.record_event("search", "ada", {"plate": "ROT4567"})
        old_master = key.read_bytes()
        provider = key_provider(chosen, data, "alprbox")
        count = provider.rotate(box.store.cipher.ring)
        assert count >= 3  # index, records, read and image keys at least
        await box.store.record_event("keys.rotated", "ada", {"data_keys": count})
    new_master = key.read_bytes()
    assert new_master != old_master and not key.with_name("master.key.next").exists()
    # Nothing in the database was rewritten, yet everything reads under the new key.
    store = await Store.open(data / "alprbox.db", FieldCipher(new_master))
    [read] = await store.find_plate("ROT4567")
    assert await store.get_crop(read.id) == b"\xff\xd8crop-ROT4567"
    assert any(e["detail"].get("plate") == "ROT4567" for e in await store.events(kind="search"))
    await store.close()
    with pytest.raises(MasterKeyError, match="does not match"):
        await Store.open(data / "alprbox.db", FieldCipher(old_master))


def test_interrupted_rotation_finishes_on_next_load(tmp_path: Path) -> None:
    """Crash after keys.db was re-wrapped but before the new key file replaced the old."""
    data, key = tmp_path / "data", tmp_path / "master.key"
    data.mkdir()
    master = load_or_create_key(key)
    ring = KeyRing.open(data / KEYS_DB, master, create=True)
    ring.key("read", "2026-05-01")
    new = os.urandom(32)
    key.with_name("master.key.next").write_bytes(new)
    key.with_name("master.key.next").chmod(0o600)
    ring.rotate(new)
    ring.close()
    loaded = load_master_key(settings(master_key_file=key), data, "s")
    assert loaded == new and key.read_bytes() == new
    KeyRing.open(data / KEYS_DB, loaded, create=False).close()


async def test_cli_rotate_is_audited(tmp_path: Path) -> None:
    import asyncio
    import subprocess
    import sys

    data, key = tmp_path / "data", tmp_path / "master.key"
    config = tmp_path / "site.yaml"
    config.write_text(
        f"recognition: {{type: platedet}}\nkeys:\n  master_key_file: {key}\n"
    )
    store = await Store.open(
        data / "alprbox.db", FieldCipher(load_master_key(settings(master_key_file=key), data, "s"))
    )
    await store.add_read(a_read("CLI4567"))
    await store.close()
    before = key.read_bytes()
    env = {k: v for k, v in os.environ.items() if k != "ALPRBOX_CONFIG"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "appliance", "keys", "rotate", "--config", str(config),
         "--data-dir", str(data)],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "re-wrapped" in result.stdout and key.read_bytes() != before
    store = await Store.open(data / "alprbox.db", FieldCipher(key.read_bytes()))
    [event] = await store.events(kind="keys.rotated")
    assert event["detail"]["data_keys"] >= 3
    assert [r.text for r in await store.find_plate("CLI4567")] == ["CLI4567"]
    await store.close()


async def test_a_database_that_skipped_migration_7_gets_it(tmp_path: Path) -> None:
    """Development databases moved past 7 by a later migration before 0007 existed."""
    from appliance._storage import migrations

    db = tmp_path / "alprbox.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for number, sql in migrations():
        if number != 7:
            for statement in sql.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
    conn.execute(f"PRAGMA user_version = {migrations()[-1][0]}")
    conn.close()
    store = await Store.open(db, FieldCipher(os.urandom(32)))
    await store.add_read(a_read("SKIP777"))
    [stored] = await store.find_plate("SKIP777")
    assert await store.get_crop(stored.id) == b"\xff\xd8crop-SKIP777"
    await store.close()


async def test_city_key_reads_a_replica_until_the_day_is_shredded(tmp_path: Path) -> None:
    """Opt-in city key: a copy of alprbox.db + keys.db opens with the city's private key alone;
    after the box purges a day, a fresh copy of keys.db no longer opens that day."""
    import shutil

    from appliance._crypto import KeyShredded
    from appliance._lifecycle.city import city_cipher, generate_city_key
    from appliance._lifecycle.records import read_ad

    private = tmp_path / "city" / "city.key"
    public = generate_city_key(private)
    with pytest.raises(FileExistsError):
        generate_city_key(private)
    data = tmp_path / "box"
    clock = FakeClock(T0)
    config = {"keys": {"city_public_key": public},
              "retention": {"read_days": 30, "hit_days": 365, "image_days": 7}}
    async with make_appliance(data, config=config, clock=clock) as box:
        assert box.store is not None and box.lifecycle is not None
        read = a_read("CITY123")
        await box.store.add_read(read)
        await box.store.record_event("search", "ada", {"plate": "CITY123"})

        def copy(into: Path) -> Path:
            into.mkdir()
            for name in ("alprbox.db", KEYS_DB):
                src = sqlite3.connect(data / name)
                dst = sqlite3.connect(into / name)
                src.backup(dst)
                src.close()
                dst.close()
            shutil.copytree(data / "segments", into / "segments")
            return into

        replica = copy(tmp_path / "replica1")
        await box.lifecycle.tick(T0 + timedelta(days=31))
        later = copy(tmp_path / "replica2")

    def read_back(folder: Path) -> bytes:
        cipher = city_cipher(folder / KEYS_DB, private)
        conn = sqlite3.connect(folder / "alprbox.db")
        row = conn.execute(
            "SELECT id, camera, seen_at, payload FROM reads WHERE plate_index = ?",
            (cipher.plate_index("CITY123"),),
        ).fetchone()
        conn.close()
        assert row is not None, "the city's plate index does not find the read"
        return cipher.decrypt(bytes(row[3]), read_ad(row[0], row[1], row[2]))

    assert b"CITY123" in read_back(replica)
    with pytest.raises(RuntimeError):  # the city view decrypts, it never makes keys
        city_cipher(replica / KEYS_DB, private).encrypt_for("read", "2026-06-01", b"x", b"")
    # The box purged the day; its rows are gone, and a copy of the old rows is unreadable with
    # the new keys.db generation.
    old_rows = sqlite3.connect(replica / "alprbox.db")
    payload, seen = old_rows.execute("SELECT payload, seen_at FROM reads").fetchone()
    old_rows.close()
    cipher = city_cipher(later / KEYS_DB, private)
    with pytest.raises(KeyShredded):
        cipher.decrypt(bytes(payload), read_ad(read.id, read.camera, seen))
    # Another city's key opens nothing.
    other = tmp_path / "other.key"
    generate_city_key(other)
    with pytest.raises(MasterKeyError, match="another city key"):
        city_cipher(replica / KEYS_DB, other)


async def test_run_with_a_lost_key_says_so_and_creates_nothing(tmp_path: Path) -> None:
    import asyncio
    import subprocess
    import sys

    data, key = tmp_path / "data", tmp_path / "master.key"
    store = await Store.open(
        data / "alprbox.db", FieldCipher(load_master_key(settings(master_key_file=key), data, "s"))
    )
    await store.add_read(a_read("LOST999"))
    await store.close()
    key.unlink()
    config = tmp_path / "site.yaml"
    # A broken site file (unknown recognizer): safe mode still uses its keys section.
    config.write_text(f"recognition: {{type: nosuch}}\nkeys: {{master_key_file: {key}}}\n")
    env = {k: v for k, v in os.environ.items() if k != "ALPRBOX_CONFIG"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "appliance", "run", "--config", str(config), "--data-dir",
         str(data), "--port", "0"],
        capture_output=True, text=True, check=False, timeout=120, env=env,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "SAFE MODE" in result.stderr
    assert f"the master key file {key} is missing" in result.stderr
    assert not key.exists()
