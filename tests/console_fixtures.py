"""Helpers for the console tests: a real Appliance with the test kit's model-free recognizer."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from aiohttp.test_utils import TestClient

from appliance import PlateCandidate, PlateRead
from appliance._appliance import Appliance
from appliance._config import parse_config
from appliance._plugins import create_plugin_host
from appliance.testing import FAKES, FakeClock

BASE_CONFIG = "recognition: {type: fake}\ncameras: []\n"
T0 = datetime(2026, 5, 1, 15, 30, 5, tzinfo=UTC)


@asynccontextmanager
async def running_appliance(
    data_dir: Path, extra_config: str = "", clock: FakeClock | None = None
) -> AsyncIterator[Appliance]:
    host = create_plugin_host(discover=False, plugins=[FAKES])
    config = parse_config(BASE_CONFIG + extra_config, "test.yaml", host)
    appliance = Appliance(config=config, plugins=host, data_dir=data_dir,
                          clock=clock or FakeClock(T0))
    await appliance.start()
    try:
        yield appliance
    finally:
        if appliance.started:
            await appliance.stop()


def jpeg(width: int = 160, height: int = 48) -> bytes:
    """A real small JPEG: a white plate with a dark band, so it is not a flat colour."""
    image = np.full((height, width, 3), 255, np.uint8)
    image[height // 3: 2 * height // 3, 10: width - 10] = (40, 40, 40)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data.tobytes())


def make_read(
    text: str = "7ABC123",
    *,
    camera: str = "north-gate",
    confidence: float = 0.93,
    first_seen: datetime = T0,
    crop: bool = True,
) -> PlateRead:
    return PlateRead(
        camera=camera,
        text=text,
        confidence=confidence,
        first_seen=first_seen,
        last_seen=first_seen + timedelta(seconds=1),
        box=(10, 20, 160, 48),
        candidates=(PlateCandidate(text, confidence),),
        frames=3,
        crop_jpeg=jpeg() if crop else b"",
    )


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


async def login(client: TestClient[Any, Any], username: str, password: str) -> Any:
    """Submit the login form like a browser; returns the (unfollowed) response."""
    page = await client.get("/login")
    token = csrf_from(await page.text())
    return await client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False,
    )


# -- hot lists, users and alerts (alert, hot-list and BOLO pages) ---------------------------

from typing import ClassVar, Literal  # noqa: E402

from aiohttp.test_utils import TestClient as _TestClient  # noqa: E402

from appliance import HotlistBatch, HotlistEntry, HotlistSource, HotlistSourceSettings  # noqa: E402
from appliance import hookimpl as _hookimpl  # noqa: E402
from appliance._auth import hash_password  # noqa: E402

LISTS_CONFIG = (
    "hotlists:\n"
    "  - {name: ncic, type: console-list, max_age_hours: 24}\n"
)
#: Immigration Violator records are dropped by law (Gov. Code 7284.6); the console shows counts.
IMMIGRATION_DROP = "Immigration Violator File (Gov. Code 7284.6)"


class ConsoleListSettings(HotlistSourceSettings):
    type: Literal["console-list"] = "console-list"


class ConsoleListSource(HotlistSource):
    """Each fetch returns (or raises) the next item the test put in ``next``."""

    settings_model = ConsoleListSettings
    next: ClassVar[list[HotlistBatch | Exception]] = []

    async def fetch(self) -> HotlistBatch:
        item = ConsoleListSource.next.pop(0)
        if isinstance(item, Exception):
            raise item
        return item


class _ConsoleLists:
    __name__ = "console-lists"

    @_hookimpl
    def appliance_hotlist_source_types(self) -> list[type[HotlistSource]]:
        return [ConsoleListSource]


CONSOLE_LISTS = _ConsoleLists()


def listed(plate: str = "7ABC123", **kw: Any) -> HotlistEntry:
    """A stolen-vehicle entry with everything an officer checks."""
    values: dict[str, Any] = {
        "state": "CA", "category": "Stolen Vehicle", "reference": f"V{plate}",
        "agency": "CA0010000", "reason": "Stolen from a driveway",
        "entered": datetime(2026, 4, 20).date(), "vehicle_year": 2019,
        "vehicle_make": "Toyota", "vehicle_model": "Camry", "vehicle_colour": "Blue",
    }
    values.update(kw)
    return HotlistEntry(plate=plate, **values)


@asynccontextmanager
async def appliance_with_lists(
    data_dir: Path, extra_config: str = "", clock: FakeClock | None = None
) -> AsyncIterator[Appliance]:
    """Like :func:`running_appliance`, with the list ``ncic`` fed by :class:`ConsoleListSource`."""
    host = create_plugin_host(discover=False, plugins=[FAKES, CONSOLE_LISTS])
    config = parse_config(BASE_CONFIG + LISTS_CONFIG + extra_config, "test.yaml", host)
    appliance = Appliance(config=config, plugins=host, data_dir=data_dir,
                          clock=clock or FakeClock(T0), schedule_hotlists=False)
    await appliance.start()
    try:
        yield appliance
    finally:
        if appliance.started:
            await appliance.stop()


async def load_list(appliance: Appliance, *entries: HotlistEntry, **kw: Any) -> None:
    """Put ``entries`` in place as list ``ncic`` (``kw``: HotlistBatch's dropped, skipped)."""
    assert appliance.hotlists is not None
    ConsoleListSource.next.append(HotlistBatch(tuple(entries), **kw))
    assert await appliance.hotlists.refresh("ncic")


async def add_user(
    appliance: Appliance, username: str, role: str, password: str = "correct horse 42"
) -> str:
    assert appliance.store is not None
    await appliance.store.create_user(username, hash_password(password), role, "Test City")
    return password


async def login_as(client: _TestClient[Any, Any], username: str, password: str) -> None:
    """Sign ``client`` in as ``username``, dropping any session it had."""
    client.session.cookie_jar.clear()
    response = await login(client, username, password)
    assert response.status == 303, await response.text()
