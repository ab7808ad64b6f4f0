"""Today's images reach the replica before their day ends: an image segment open longer than
``replication.segment_roll`` is closed and shipped, and a restore made mid-day has the crops.

Real parts: litestream and a moto S3 server on loopback (the replication tests' rig), the real
appliance, ``alprbox restore``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from console_fixtures import make_read, running_appliance
from replication_rig import BUCKET, moto_s3, s3_client, s3_env, s3_site
from test_replication import copy_keys, opened, restore_cli

LIMIT_S = 60.0  # only to end a hung test; nothing here measures time


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_s3() as url:
        yield url


def segment_objects(url: str, prefix: str) -> list[str]:
    listing: Any = s3_client(url).list_objects_v2(  # type: ignore[attr-defined]
        Bucket=BUCKET, Prefix=f"{prefix}/segments/"
    )
    return sorted(o["Key"].rsplit("/", 1)[1] for o in listing.get("Contents", []))


async def wait_for_objects(url: str, prefix: str, count: int) -> list[str]:
    for _ in range(int(LIMIT_S / 0.2)):
        found = segment_objects(url, prefix)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count} segment(s) never reached the replica: {found}")


async def test_open_segments_reach_the_s3_replica_within_the_roll_period(
    tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**s3_env(), "ALPRBOX_KEY_FILE": str(tmp_path / "keys" / "master.key")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "keys").mkdir(mode=0o700)
    data, restored = tmp_path / "data", tmp_path / "restored"
    site = s3_site(moto_url, "sites/roll") + (
        "  segment_roll: 1s\n  segment_interval: 1s\n" f"data_dir: {data}\n"
    )
    (tmp_path / "site.yaml").write_text(site)
    extra = site.split("cameras: []\n", 1)[1]
    now = datetime.now(UTC)
    today = now.date().isoformat()
    async with running_appliance(data, extra) as box:
        assert box.store is not None and box.replication is not None
        first = make_read("ROLL111", first_seen=now)
        await box.store.add_read(first)
        # The day is not over, the segment far from full: it ships because it rolled.
        shipped = await wait_for_objects(moto_url, "sites/roll", 1)
        assert shipped == [f"image-{today}-000.seg"]
        # The next image of the day starts the day's next segment, which rolls and ships too.
        second = make_read("ROLL222", first_seen=now)
        await box.store.add_read(second)
        shipped = await wait_for_objects(moto_url, "sites/roll", 2)
        assert shipped == [f"image-{today}-000.seg", f"image-{today}-001.seg"]
        main = box.replication.processes[0]
        answer = await main.sync_now()
        assert answer is not None and answer["replicated_txid"] == answer["txid"]

    # A copy restored now, mid-day, has both reads *and* their crops.
    code, report = await restore_cli("--config", str(tmp_path / "site.yaml"),
                                     "--to", str(restored),
                                     "--log-key", str(tmp_path / "city" / "log.key"))
    assert code == 0, report
    copy_keys(data, restored)
    async with opened(restored, site) as copy:
        assert copy.store is not None
        assert await copy.store.get_crop(first.id) == first.crop_jpeg
        assert await copy.store.get_crop(second.id) == second.crop_jpeg
