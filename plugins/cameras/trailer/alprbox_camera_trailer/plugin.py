"""The solar trailer's camera: an RTSP camera whose frames carry the trailer's GPS position, and
which keeps the trailer's IR lamp on when it is dark.

The trailer's devices belong to the box, not to this plugin: the host runs the GPS, the lamp and
its relay, the tamper switch (an audited alarm), the battery readings and the uplink monitor from
the hardware profile (``firmware_configs/trailer-solar``), and hands this camera
``context.hardware``. The camera stamps each frame with ``hardware.gps.current()`` (None while
the fix is missing or stale: the read is then stored without a position, never with an old one),
and feeds its frames' brightness to a :class:`appliance.hardware.LightController`.

Store-and-forward needs nothing here: the host commits every read locally first, and
replication and the exporters' outbox forward them when the uplink is back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field

from appliance import Camera, CameraSettings, Frame, PluginConfigError, Secret, hookimpl
from appliance.capture import StreamCapture
from appliance.hardware import (
    LightController,
    LightSettings,
    SensorSettings,
    SysfsSensor,
    mean_luminance,
)

logger = logging.getLogger(__name__)


class TrailerSettings(CameraSettings):
    type: Literal["trailer"] = Field(
        title="Camera type", description="A solar trailer's RTSP camera with GPS and IR lamp."
    )
    url: str = Field(
        title="Stream URL",
        description="RTSP URL of the camera (rtsp://host:554/path), or a video file for tests.",
    )
    username: str | None = Field(default=None, description="RTSP user name.")
    password: Secret | None = Field(
        default=None, description="RTSP password: env:NAME or file:/path, never the password."
    )
    transport: Literal["tcp", "udp"] = Field(default="tcp", description="RTSP transport.")
    open_timeout_seconds: float = Field(default=10.0, gt=0, description="Connect timeout.")
    read_timeout_seconds: float = Field(default=5.0, gt=0, description="Read timeout.")
    stamp_location: bool = Field(
        default=True, description="Stamp frames (and so reads) with the box's fresh GPS fix."
    )
    lights: LightSettings | None = Field(
        default_factory=LightSettings,
        description="Drive the box's IR lamp and relay (null: leave them alone; only one "
        "camera per box should).",
    )
    light_sensor: SensorSettings | None = Field(
        default=None,
        description="A light sensor file (lux, or any level) used instead of frame brightness; "
        "the lamp does not light it up.",
    )
    light_check_seconds: float = Field(
        default=10.0, gt=0, description="How often the light level is measured."
    )


class TrailerCamera(Camera):
    settings_model = TrailerSettings
    settings: TrailerSettings

    def __init__(self, settings: CameraSettings, context: Any) -> None:
        super().__init__(settings, context)
        self._capture: StreamCapture | None = None
        self._lights: LightController | None = None
        self._sensor = (
            SysfsSensor(f"{self.name} light", self.settings.light_sensor)
            if self.settings.light_sensor
            else None
        )
        self._light_due = 0.0
        self.frames_located = 0
        self.frames_unlocated = 0
        hardware = context.hardware
        if hardware is not None:
            if self.settings.lights is not None and (hardware.illuminator or hardware.relay):
                self._lights = LightController(
                    self.settings.lights,
                    hardware.illuminator,
                    hardware.relay,
                    context.clock,
                    label=f"Trailer camera '{self.name}': IR lamp",
                )
            hardware.report(f"camera {self.name}", self.status)

    # -- connection ----------------------------------------------------------------------------

    def _source(self) -> str | Path:
        url = self.settings.url
        if "://" not in url:
            return Path(url)
        if self.settings.username is None:
            return url
        password = self.settings.password.get() if self.settings.password else ""
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        credentials = quote(self.settings.username, safe="")
        if password:
            credentials += ":" + quote(password, safe="")
        return urlunsplit(parts._replace(netloc=f"{credentials}@{host}"))

    def _new_capture(self) -> StreamCapture:
        s = self.settings
        return StreamCapture(
            self._source(),
            open_timeout=s.open_timeout_seconds,
            read_timeout=s.read_timeout_seconds,
            transport=s.transport,
            name=self.name,
            clock=self.context.clock,
        )

    async def open(self) -> None:
        await self.close()
        self._update_lights(None)  # the lamp follows the schedule even while the camera is down
        capture = self._new_capture()
        try:
            await capture.open()
        except BaseException:
            await capture.close()
            raise
        self._capture = capture

    async def probe(self) -> dict[str, str]:
        capture = self._new_capture()
        try:
            info = await capture.open()
        finally:
            await capture.close()
        about = {"stream": capture.display_source, **info.as_dict()}
        hardware = self.context.hardware
        if hardware is not None and hardware.gps is not None:
            about["gps"] = hardware.gps.state()
        return about

    async def frames(self) -> AsyncIterator[Frame]:
        capture = self._capture
        if capture is None:
            raise PluginConfigError("frames() called before open()")
        async for frame in capture.frames():
            self._update_lights(frame)
            yield self._stamp(frame)

    async def close(self) -> None:
        # The lamp is left as it is: a camera reconnecting at night still needs its light.
        capture, self._capture = self._capture, None
        if capture is not None:
            await capture.close()

    # -- position and light ----------------------------------------------------------------------

    def _stamp(self, frame: Frame) -> Frame:
        hardware = self.context.hardware
        if not self.settings.stamp_location or hardware is None or hardware.gps is None:
            return frame
        location = hardware.gps.current()
        if location is None:
            self.frames_unlocated += 1
            return frame
        self.frames_located += 1
        return dataclasses.replace(frame, location=location)

    def _update_lights(self, frame: Frame | None) -> None:
        lights = self._lights
        if lights is None:
            return
        now = self.context.clock.monotonic()
        if now >= self._light_due:
            self._light_due = now + self.settings.light_check_seconds
            if self._sensor is not None:
                lights.observe(self._sensor.read().value)
            elif frame is not None:
                lights.observe(mean_luminance(frame.image))
        lights.update()

    def status(self) -> dict[str, Any]:
        """This camera's part of the box status (never a position)."""
        hardware = self.context.hardware
        gps = hardware.gps.state() if hardware is not None and hardware.gps is not None else None
        return {
            "gps": gps or "none",
            "frames_with_position": self.frames_located,
            "frames_without_position": self.frames_unlocated,
            "lights": self._lights.status() if self._lights is not None else None,
        }


@hookimpl
def appliance_camera_types() -> list[type[Camera]]:
    return [TrailerCamera]

