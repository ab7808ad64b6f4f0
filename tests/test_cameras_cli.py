"""``alprbox cameras discover`` and ``alprbox cameras probe``, run as the real command against the
test kit's WS-Discovery responder, ONVIF responder and RTSP rig (issue 8)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from appliance.testing_discovery import DiscoveryResponder
from appliance.testing_onvif import OnvifDevice, OnvifProfile
from appliance.testing_rigs import RtspServer, free_port

PASSWORD = "cli-Pa55word"


async def alprbox(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the command as a user would (the test's loop keeps serving the responders)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "appliance", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def site_file(tmp_path: Path, port: int, **camera: Any) -> Path:
    path = tmp_path / "site.yaml"
    settings = {
        "type": "onvif", "name": "north-gate", "host": "127.0.0.1", "port": port,
        "username": "admin", "password": "env:CLI_CAMERA_PASSWORD", "request_timeout": 5,
        "open_timeout": 5, **camera,
    }
    path.write_text(yaml.safe_dump({"cameras": [settings]}))
    return path


@pytest.fixture
async def device(rtsp_server: RtspServer) -> AsyncIterator[OnvifDevice]:
    async with OnvifDevice(stream_uri=rtsp_server.url, password=PASSWORD) as responder:
        yield responder


async def test_discover_lists_the_camera_that_answered(device: OnvifDevice) -> None:
    async with DiscoveryResponder([device.device_service]) as responder:
        code, out, err = await alprbox(
            "cameras", "discover", "--timeout", "1", "--address", f"127.0.0.1:{responder.port}",
            "--json",
        )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 1 and responder.probes == 1
    assert (rows[0]["host"], rows[0]["port"], rows[0]["name"]) == ("127.0.0.1", device.port, "test")
    assert rows[0]["xaddrs"] == [device.device_service]


async def test_discover_says_when_nobody_answers() -> None:
    code, out, err = await alprbox(
        "cameras", "discover", "--timeout", "0.5", "--address", f"127.0.0.1:{free_port()}"
    )
    assert code == 0 and out == ""
    assert "0 camera(s) answered within 0.5 s" in err


async def test_probe_reports_what_the_camera_says(device: OnvifDevice, tmp_path: Path) -> None:
    config = site_file(tmp_path, device.port)
    code, out, err = await alprbox(
        "cameras", "probe", "--config", str(config), "north-gate", "--json",
        env={"CLI_CAMERA_PASSWORD": PASSWORD},
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] is True and result["failure"] is None
    assert result["info"]["model"] == "Responder 1"
    assert result["info"]["codec"] == "h264" and result["info"]["events"] == "pull-point"
    assert PASSWORD not in out + err
    code, text, err = await alprbox(
        "cameras", "probe", "--config", str(config), "north-gate",
        env={"CLI_CAMERA_PASSWORD": PASSWORD},
    )
    assert code == 0 and "camera north-gate (onvif): OK" in text and "Responder 1" in text


@pytest.mark.parametrize(
    ("password", "port", "failure", "says"),
    [
        ("not-the-Pa55word", None, "credentials refused", "refused user 'admin'"),
        (PASSWORD, "dead", "unreachable", "is unreachable"),
        (None, None, "configuration", "CLI_CAMERA_PASSWORD"),
    ],
    ids=["wrong-password", "unreachable", "missing-secret"],
)
async def test_probe_says_exactly_what_failed(
    device: OnvifDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str | None,
    port: str | None, failure: str, says: str,
) -> None:
    config = site_file(tmp_path, free_port() if port == "dead" else device.port)
    env = {"CLI_CAMERA_PASSWORD": password} if password else {}
    if password is None:
        monkeypatch.delenv("CLI_CAMERA_PASSWORD", raising=False)
    code, out, err = await alprbox(
        "cameras", "probe", "--config", str(config), "north-gate", "--json", env=env
    )
    result = json.loads(out)
    assert code == 1 and result["ok"] is False
    assert result["failure"] == failure and says in result["message"]
    assert not password or password not in out + err


async def test_probe_names_the_profiles_of_a_camera_without_h264(
    rtsp_server: RtspServer, tmp_path: Path
) -> None:
    jpeg_only = (OnvifProfile("mjpeg", 1280, 720, encoding="JPEG"),)
    async with OnvifDevice(
        stream_uri=rtsp_server.url, password=PASSWORD, profiles=jpeg_only
    ) as device:
        code, _out, err = await alprbox(
            "cameras", "probe", "--config", str(site_file(tmp_path, device.port)), "north-gate",
            env={"CLI_CAMERA_PASSWORD": PASSWORD},
        )
    assert code == 1
    assert "configuration: " in err and "no H.264 media profile" in err and "mjpeg (JPEG" in err


async def test_probe_of_an_unknown_camera_names_the_configured_ones(tmp_path: Path) -> None:
    code, _out, err = await alprbox(
        "cameras", "probe", "--config", str(site_file(tmp_path, 80)), "south-gate"
    )
    assert code == 2 and "no camera named 'south-gate' (configured: north-gate)" in err
