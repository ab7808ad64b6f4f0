"""A box that stores plate reads as fast as it can, for the replication tests' kill -9 drills.

    python tests/replication_writer.py DATA_DIR SITE_YAML COUNT [close]

Runs a real appliance (the test kit's fake recognizer, no cameras) with the site's replication
settings, stores reads with crops, and prints each read's id on stdout once its commit is
acknowledged. COUNT 0 writes until killed; otherwise it writes COUNT reads and stops the box
gracefully (the store closes, then litestream pushes its last changes and exits). With
``close``, the day's image segments are closed first (as at midnight) and shipped to the target.
"""

from __future__ import annotations

import asyncio
import random
import string
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from appliance import PlateCandidate, PlateRead
from appliance._appliance import Appliance
from appliance._config import parse_config
from appliance._lifecycle.segments import finish_closing
from appliance._plugins import create_plugin_host
from appliance.testing import FAKES

CROP = bytes(range(256)) * 8  # 2 KB stand-in for a JPEG crop: the store encrypts it all the same


def a_read(n: int) -> PlateRead:
    now = datetime.now(UTC)
    plate = "".join(random.choices(string.ascii_uppercase + string.digits, k=7))
    return PlateRead(
        camera=f"cam-{n % 3}", text=plate, confidence=0.9, first_seen=now,
        last_seen=now + timedelta(milliseconds=400), box=(10, 20, 160, 48),
        candidates=(PlateCandidate(plate, 0.9),), frames=3, crop_jpeg=CROP,
    )


async def main(data_dir: Path, site: Path, count: int, close: bool = False) -> None:
    host = create_plugin_host(discover=False, plugins=[FAKES])
    config = parse_config(site.read_text(), str(site), host)
    box = Appliance(config=config, plugins=host, data_dir=data_dir, schedule_hotlists=False)
    await box.start()
    assert box.store is not None
    try:
        n = 0
        while count == 0 or n < count:
            read = a_read(n)
            await box.store.add_read(read)
            print(read.id, flush=True)
            n += 1
            if n % 50 == 0:
                await asyncio.sleep(0.01)  # a steady stream, not one burst
        if close:
            store = box.store
            await store.write(lambda c: store.segments.close_before(c, "9999-12-31"))
            await finish_closing(store)  # hashed off the writer, then ready to ship
            assert box.replication is not None and box.replication.shipper is not None
            assert await box.replication.shipper.ship_pending() > 0
    finally:
        await box.stop()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]),
                     sys.argv[4:] == ["close"]))
