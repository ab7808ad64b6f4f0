"""Helpers for the console tests: a real Appliance with a model-free recognizer plugin.

This module is also the plugin: it registers the ``fake`` recognizer type through the same hook a
vendor's package uses.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from aiohttp.test_utils import TestClient

from appliance import (
    PlateCandidate,
    PlateDetection,
    PlateRead,
    Recognizer,
    RecognizerSettings,
    hookimpl,
)
from appliance._appliance import Appliance
from appliance._config import parse_config
from appliance._plugins import create_plugin_host

BASE_CONFIG = "recognition: {type: fake}\ncameras: []\n"
T0 = datetime(2026, 5, 1, 15, 30, 5, tzinfo=UTC)


class FakeRecognizerSettings(RecognizerSettings):
    type: Literal["fake"]


class FakeRecognizer(Recognizer):
    """Finds nothing: the console tests inject reads directly."""

    settings_model = FakeRecognizerSettings

    def recognize(self, image: Any) -> list[PlateDetection]:
        return []


@hookimpl
def appliance_recognizer_types() -> list[type[Recognizer]]:
    return [FakeRecognizer]


class FakeClock:
    """Wall and monotonic time that only move when a test says so."""

    def __init__(self, start: datetime = T0) -> None:
        self._now = start
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)


@asynccontextmanager
async def running_appliance(
    data_dir: Path, extra_config: str = "", clock: FakeClock | None = None
) -> AsyncIterator[Appliance]:
    host = create_plugin_host(discover=False, plugins=[sys.modules[__name__]])
    config = parse_config(BASE_CONFIG + extra_config, "test.yaml", host)
    appliance = Appliance(config=config, plugins=host, data_dir=data_dir,
                          clock=clock or FakeClock())
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
