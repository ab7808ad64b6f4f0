"""The vehicle colour and state of a read are stored encrypted and come back intact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance import PlateRead
from appliance._crypto import FieldCipher, load_or_create_key
from appliance._storage import Store

T0 = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)


def a_read(**kw: object) -> PlateRead:
    return PlateRead(
        camera="gate",
        text="7ABC123",
        confidence=0.9,
        first_seen=T0,
        last_seen=T0 + timedelta(seconds=2),
        box=(10, 20, 120, 40),
        frames=4,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    cipher = FieldCipher(load_or_create_key(tmp_path / "master.key"))
    s = await Store.open(tmp_path / "alprbox.db", cipher)
    yield s
    await s.close()


async def test_colour_and_state_round_trip(store: Store) -> None:
    read = a_read(
        vehicle_colour="burgundy-test-marker",
        vehicle_colour_confidence=0.72,
        state="CA",
        state_confidence=0.81,
    )
    await store.add_read(read)
    [back] = await store.recent_reads()
    assert back.vehicle_colour == "burgundy-test-marker"
    assert back.vehicle_colour_confidence == pytest.approx(0.72)
    assert back.state == "CA" and back.state_confidence == pytest.approx(0.81)


async def test_a_read_without_colour_stays_without(store: Store) -> None:
    await store.add_read(a_read())
    [back] = await store.recent_reads()
    assert back.vehicle_colour is None and back.vehicle_colour_confidence == 0.0


async def test_the_colour_is_never_on_disk_in_clear(store: Store, tmp_path: Path) -> None:
    await store.add_read(a_read(vehicle_colour="burgundy-test-marker"))
    await store.recent_reads()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"burgundy-test-marker" not in on_disk
    assert b"vehicle_colour" not in on_disk
