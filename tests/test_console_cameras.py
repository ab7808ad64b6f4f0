"""The console's cameras page and "Test connection" (issue 8), through the real appliance: an
ONVIF camera served by the test kit's responder and the RTSP rig, one with a wrong password and
one that is not there. The probe runs the plugin's own probe(); the page says what failed, never
shows a credential, and every test is audited."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from alprbox_camera_onvif import plugin
from console_fixtures import add_user, csrf_from, login_as

from appliance._appliance import Appliance
from appliance._web import create_app
from appliance.base import SystemClock
from appliance.testing import make_appliance
from appliance.testing_onvif import OnvifDevice
from appliance.testing_rigs import RtspServer, free_port

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
PASSWORD = "console-Pa55word"
WRONG = "not-the-Pa55word"
LOGIN = "correct horse 42"


@pytest.fixture
async def device(rtsp_server: RtspServer) -> AsyncIterator[OnvifDevice]:
    async with OnvifDevice(stream_uri=rtsp_server.url, password=PASSWORD) as responder:
        yield responder


@pytest.fixture
async def box(
    device: OnvifDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Appliance]:
    monkeypatch.setenv("GATE_PASSWORD", PASSWORD)
    monkeypatch.setenv("YARD_PASSWORD", WRONG)
    common = {"type": "onvif", "host": "127.0.0.1", "username": "admin", "request_timeout": 5,
              "open_timeout": 5}
    config = {
        "recognition": {"type": "fake"},
        "cameras": [
            {**common, "name": "gate", "port": device.port, "password": "env:GATE_PASSWORD"},
            {**common, "name": "yard", "port": device.port, "password": "env:YARD_PASSWORD"},
            {**common, "name": "dead", "port": free_port(), "password": "env:GATE_PASSWORD"},
        ],
    }
    # The real clock: the failing cameras' backoff would move a fake one under the sign-in codes.
    async with make_appliance(
        tmp_path / "box", plugins=[plugin], config=config, clock=SystemClock()
    ) as appliance:
        yield appliance


@pytest.fixture
async def client(aiohttp_client: MakeClient, box: Appliance) -> Client:
    return await aiohttp_client(create_app(box))


async def sign_in(client: Client, box: Appliance, role: str) -> str:
    await add_user(box, role, role, LOGIN)
    await login_as(client, role, LOGIN)
    return csrf_from(await (await client.get("/plugins")).text())


async def probe(client: Client, token: str, camera: str) -> tuple[int, str]:
    response = await client.post(f"/cameras/{camera}/probe", data={"csrf_token": token})
    return response.status, await response.text()


async def test_administrator_tests_each_camera_and_sees_what_failed(
    client: Client, box: Appliance
) -> None:
    token = await sign_in(client, box, "administrator")
    page = await (await client.get("/cameras")).text()
    for name in ("gate", "yard", "dead"):
        assert f'action="/cameras/{name}/probe"' in page
    assert 'href="/cameras"' in await (await client.get("/")).text()

    status, html = await probe(client, token, "gate")
    assert status == 200 and "connection OK" in html
    assert "Responder 1" in html and "main (H264 1280x720)" in html
    assert "rtsp://***@127.0.0.1" in html

    status, html = await probe(client, token, "yard")
    assert status == 200
    assert re.search(r'id="probe-failure">credentials refused<', html)
    assert "refused user &#39;admin&#39;" in html or "refused user 'admin'" in html

    status, html = await probe(client, token, "dead")
    assert re.search(r'id="probe-failure">unreachable<', html)
    assert "is unreachable" in html

    for secret in (PASSWORD, WRONG):
        assert secret not in page and secret not in html
    assert box.store is not None
    events = await box.store.events(10, kind="camera.probe", oldest_first=True)
    assert [(e["actor"], e["detail"]["camera"], e["detail"]["ok"], e["detail"]["failure"])
            for e in events] == [
        ("administrator", "gate", True, None),
        ("administrator", "yard", False, "credentials refused"),
        ("administrator", "dead", False, "unreachable"),
    ]
    assert not any(PASSWORD in str(e) or WRONG in str(e) for e in events)


async def test_only_administrators_may_test_and_only_with_the_form_token(
    client: Client, box: Appliance
) -> None:
    token = await sign_in(client, box, "operator")
    assert (await client.get("/cameras")).status == 403
    assert (await probe(client, token, "gate"))[0] == 403
    token = await sign_in(client, box, "administrator")
    assert (await probe(client, "not-the-token", "gate"))[0] == 403
    assert (await probe(client, token, "nowhere"))[0] == 404
    assert box.store is not None
    assert await box.store.events(10, kind="camera.probe") == []


async def test_metrics_show_each_cameras_state_and_frame_age(
    client: Client, box: Appliance, rtsp_server: RtspServer
) -> None:
    status = box.cameras["gate"]
    async with asyncio.timeout(60):
        while status.frames < 3:  # noqa: ASYNC110 - the status has no event to await
            await asyncio.sleep(0.05)
    rtsp_server.kill()
    async with asyncio.timeout(60):
        while status.state != "reconnecting":  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def scrape() -> tuple[str, dict[str, str]]:
        text = await (await client.get("/metrics")).text()
        return text, dict(re.findall(r'^(alprbox_camera_\w+\{camera="gate"\}) (\S+)$', text,
                                     re.M))

    age = 'alprbox_camera_last_frame_age_seconds{camera="gate"}'
    text, values = await scrape()
    first_age = float(values[age])
    async with asyncio.timeout(30):  # the age grows while no frame comes
        while float(values[age]) < first_age + 1.0:
            await asyncio.sleep(0.2)
            text, values = await scrape()
    assert values['alprbox_camera_up{camera="gate"}'] == "0.0"
    assert float(values['alprbox_camera_last_frame_timestamp_seconds{camera="gate"}']) > 0
    # A camera that never delivered a frame has no age to report.
    dead = re.search(r'^alprbox_camera_last_frame_age_seconds\{camera="dead"\} (\S+)$', text, re.M)
    assert dead is not None and math.isnan(float(dead.group(1)))
