""""Test connection" survives the plugin: a probe that blocks, one with a bug, one that leaks its
password into an error; the console's event loop keeps running throughout (issue 8)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from appliance import AuthFailed, Camera, CameraSettings, PluginContext, Secret
from appliance._camera_probe import probe_camera, scrub
from appliance.testing import FakeClock

SECRET = "s3cret-Pa55"


class ProbeSettings(CameraSettings):
    type: Literal["probe-test"] = "probe-test"
    password: Secret = Field(description="env:NAME")
    behaviour: str = Field(default="ok", description="what probe() does")


class ProbeCamera(Camera):
    settings_model = ProbeSettings
    settings: ProbeSettings
    closed = 0

    async def probe(self) -> dict[str, str]:
        password = self.settings.password.get()
        match self.settings.behaviour:
            case "block":
                time.sleep(4)  # a synchronous SDK call where an await belonged
            case "bug":
                raise KeyError(f"session for admin:{password}")
            case "refused":
                raise AuthFailed(f"rtsp://admin:{password}@10.0.0.5/ refused the password")
        return {"stream": f"rtsp://admin:{password}@10.0.0.5/main", "model": "X1"}

    async def close(self) -> None:
        type(self).closed += 1


@pytest.fixture
def context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PluginContext:
    monkeypatch.setenv("PROBE_TEST_PASSWORD", SECRET)
    return PluginContext(logging.getLogger("test"), tmp_path, FakeClock())


def settings(behaviour: str) -> ProbeSettings:
    return ProbeSettings.model_validate(
        {"name": "gate", "password": "env:PROBE_TEST_PASSWORD", "behaviour": behaviour}
    )


async def test_answers_are_scrubbed_and_the_instance_closed(context: PluginContext) -> None:
    before = ProbeCamera.closed
    result = await probe_camera(ProbeCamera, settings("ok"), context)
    assert result.ok and result.info == {"stream": "rtsp://***@10.0.0.5/main", "model": "X1"}
    assert ProbeCamera.closed == before + 1


async def test_a_blocking_probe_times_out_without_blocking_the_loop(
    context: PluginContext,
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        result = await probe_camera(ProbeCamera, settings("block"), context, limit=0.5)
    finally:
        task.cancel()
    assert (result.ok, result.failure) == (False, "timed out")
    assert "0.5 s" in result.message
    assert ticks > 5, "the event loop was blocked while the probe ran"


async def test_plugin_bug_and_refusal_never_show_the_password(
    context: PluginContext, caplog: pytest.LogCaptureFixture
) -> None:
    bug = await probe_camera(ProbeCamera, settings("bug"), context)
    assert bug.failure == "plugin error" and bug.message.startswith("KeyError:")
    refused = await probe_camera(ProbeCamera, settings("refused"), context)
    assert refused.failure == "credentials refused"
    assert refused.message == "rtsp://***@10.0.0.5/ refused the password"
    for text in (bug.message, refused.message, caplog.text):
        assert SECRET not in text


def test_scrub_short_secrets_only_as_whole_words() -> None:
    assert scrub("this is it", ["is"]) == "this *** it"
    assert scrub("user s3cret-Pa55word", ["s3cret-Pa55"]) == "user ***word"
    assert scrub("http://u:p@h/x and https://only-user@h", []) == "http://***@h/x and https://***@h"
