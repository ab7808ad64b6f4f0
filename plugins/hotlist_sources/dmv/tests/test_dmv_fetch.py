"""Fetching the DMV list over real HTTP on loopback, from a tiny feed app of this test's own."""

from __future__ import annotations

import base64
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from alprbox_hotlist_dmv import DmvSettings, DmvSource
from alprbox_hotlist_dmv.generator import generate_dmv_file
from pydantic import ValidationError

from appliance import AuthFailed, DeviceUnavailable, HotlistFormatError, PluginContext
from appliance.testing import FakeClock

USER, PASSWORD = "dmv-user", "pw"
GOOD = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
LIST = generate_dmv_file(1000, seed=4)


async def handler(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != GOOD:
        return web.Response(status=401, headers={"WWW-Authenticate": "Basic"})
    name = request.match_info["name"]
    if name == "list.csv":
        return web.Response(body=LIST, content_type="text/csv")
    if name == "login":
        return web.Response(text="<!doctype html><p>sign in</p>", content_type="text/html")
    if name == "busy":
        return web.Response(status=503)
    raise web.HTTPNotFound()


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_DMV_PASSWORD", PASSWORD)


@pytest.fixture
async def feed() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


@pytest.fixture
async def make_source(tmp_path: Path) -> AsyncIterator[Any]:
    sources: list[DmvSource] = []

    def make(url: str, **settings: Any) -> DmvSource:
        settings = {"username": USER, "password": "env:TEST_DMV_PASSWORD", **settings}
        model = DmvSettings(type="dmv", name="dmv", url=url, **settings)
        context = PluginContext(logging.getLogger("test.dmv"), tmp_path, FakeClock())
        sources.append(DmvSource(model, context))
        return sources[-1]

    yield make
    for source in sources:
        await source.close()


async def test_fetches_and_parses_the_list(feed: str, make_source: Any) -> None:
    batch = await make_source(f"{feed}/list.csv").fetch()
    assert len(batch.entries) == 1000
    assert batch.dropped == {} and batch.skipped == ()


async def test_wrong_password_is_auth_failed(
    feed: str, make_source: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DMV_PASSWORD", "nope")
    with pytest.raises(AuthFailed, match=r"HTTP 401"):
        await make_source(f"{feed}/list.csv").fetch()


async def test_server_down_is_device_unavailable(make_source: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(DeviceUnavailable):
        await make_source(f"http://127.0.0.1:{port}/list.csv").fetch()


async def test_server_busy_is_device_unavailable(feed: str, make_source: Any) -> None:
    with pytest.raises(DeviceUnavailable, match=r"HTTP 503"):
        await make_source(f"{feed}/busy").fetch()


async def test_an_html_page_is_a_format_error(feed: str, make_source: Any) -> None:
    with pytest.raises(HotlistFormatError, match=r"^line 1: not a DMV registration list"):
        await make_source(f"{feed}/login").fetch()


def test_plain_http_only_to_this_host_and_no_unknown_keys() -> None:
    base = {"type": "dmv", "name": "dmv", "username": "u", "password": "env:X"}
    DmvSettings(**base, url="http://localhost:8000/list.csv")
    with pytest.raises(ValidationError, match=r"unencrypted"):
        DmvSettings(**base, url="http://dmv.example.gov/list.csv")
    with pytest.raises(ValidationError, match=r"Extra inputs"):
        DmvSettings(**base, url="https://dmv.example.gov/list.csv", include_expired=True)
