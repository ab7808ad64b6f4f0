"""The ONVIF camera: ONVIF for discovery, profiles and events; RTSP (over TCP) for the video."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field

from appliance import (
    Camera,
    CameraSettings,
    DeviceUnavailable,
    Frame,
    PluginConfigError,
    PluginContext,
    Secret,
    hookimpl,
)
from appliance.capture import StreamCapture, mask_credentials

from .device import MediaProfile, OnvifSession, choose_profile, parse_resolution
from .events import CameraEvent, EventKind, EventPuller

logger = logging.getLogger(__name__)


class OnvifSettings(CameraSettings):
    type: Literal["onvif"] = Field(title="Camera type", description="An ONVIF IP camera.")
    host: str = Field(
        title="Address", description="The camera's IP address or host name (no scheme, no port)."
    )
    port: int = Field(
        default=80, ge=1, le=65535, title="ONVIF port", description="HTTP port of its services."
    )
    username: str = Field(
        default="admin", title="User", description="An ONVIF user with at least media access."
    )
    password: Secret | None = Field(
        default=None,
        title="Password",
        description="env:NAME or file:/path holding the password; never the password itself.",
    )
    resolution: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$",
        title="Resolution",
        description="Preferred stream size WIDTHxHEIGHT (e.g. 1920x1080): the H.264 profile "
        "nearest to it is used. Default: the largest H.264 profile.",
    )
    profile: str | None = Field(
        default=None,
        title="Profile token",
        description="Use this media profile token instead of choosing by resolution.",
    )
    events: bool = Field(
        default=True,
        title="Camera events",
        description="Subscribe to the camera's motion/vehicle events where it has them.",
    )
    request_timeout: float = Field(
        default=10.0, gt=0, le=120, title="ONVIF timeout", description="Seconds per ONVIF call."
    )
    open_timeout: float = Field(
        default=10.0, gt=0, le=120, title="Stream open timeout", description="Seconds to open RTSP."
    )
    read_timeout: float = Field(
        default=5.0,
        gt=0,
        le=120,
        title="Stream read timeout",
        description="Seconds FFmpeg waits for stream data before giving up.",
    )
    transport: Literal["tcp", "udp"] = Field(
        default="tcp",
        title="RTSP transport",
        description="tcp (default: no packet loss, passes NAT) or udp.",
    )


class OnvifCamera(Camera):
    """An ONVIF Profile S camera. See the package README for settings and supported models."""

    settings_model = OnvifSettings
    supports_snapshot = True
    settings: OnvifSettings

    def __init__(self, settings: CameraSettings, context: PluginContext) -> None:
        super().__init__(settings, context)
        self._session: OnvifSession | None = None
        self._capture: StreamCapture | None = None
        self._events: EventPuller | None = None
        self.profile: MediaProfile | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        await self.close()
        session = await self._connect()
        self._session = session
        self.profile = await self._choose(session)
        uri = await session.stream_uri(self.profile.token)
        capture = StreamCapture(
            uri,
            open_timeout=self.settings.open_timeout,
            read_timeout=self.settings.read_timeout,
            transport=self.settings.transport,
            name=self.name,
            clock=self.context.clock,
        )
        await capture.open()
        self._capture = capture
        if self.settings.events and session.has_events:
            puller = EventPuller(session, f"Camera '{self.name}' (onvif)")
            try:
                await puller.start()
            except Exception as err:  # no events is not a reason to have no video
                logger.warning("Camera '%s' (onvif): no event subscription: %s", self.name, err)
            else:
                self._events = puller

    async def frames(self) -> AsyncIterator[Frame]:
        capture = self._capture
        if capture is None:
            raise DeviceUnavailable(f"camera {self.name} is not open")
        async for frame in capture.frames():
            yield frame

    async def snapshot(self) -> Frame:
        session = self._session
        if session is None or self.profile is None:
            raise DeviceUnavailable(f"camera {self.name} is not open")
        data = await session.snapshot(self.profile.token)
        image = await asyncio.to_thread(_decode_jpeg, data)
        if image is None:
            raise DeviceUnavailable(f"camera {self.name} sent a snapshot that is not an image")
        return Frame(image=image, timestamp=self.context.clock.now(), camera=self.name)

    async def close(self) -> None:
        events, self._events = self._events, None
        if events is not None:
            await events.stop()
        capture, self._capture = self._capture, None
        if capture is not None:
            await capture.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def probe(self) -> dict[str, str]:
        """Behind "Test connection": every step, and exactly which one failed.

        Raises DeviceUnavailable (unreachable, stream does not open), AuthFailed (wrong user or
        password) or PluginConfigError (no media service, no H.264 profile, missing secret).
        """
        session = await self._connect()
        try:
            info = await session.device_info()
            profiles = await session.profiles()
            profile = self._pick(profiles)
            uri = await session.stream_uri(profile.token)
            capture = StreamCapture(
                uri,
                open_timeout=self.settings.open_timeout,
                read_timeout=self.settings.read_timeout,
                transport=self.settings.transport,
                name=self.name,
            )
            try:
                stream = await capture.open()
            except DeviceUnavailable as err:
                raise DeviceUnavailable(
                    f"ONVIF works but the RTSP stream does not open: {err}"
                ) from err
            finally:
                await capture.close()
            offset = session.clock_offset
            return {
                **info,
                "profile": profile.describe(),
                "profiles": ", ".join(p.describe() for p in profiles),
                "stream": mask_credentials(uri),
                "stream_size": f"{stream.width}x{stream.height}",
                "codec": stream.codec,
                "events": "pull-point" if session.has_events else "none",
                "clock_offset_s": f"{offset.total_seconds():.0f}" if offset is not None else "",
            }
        finally:
            await session.close()

    # -- events, for the pipeline's gate -----------------------------------------------------

    @property
    def has_events(self) -> bool:
        """Whether the camera delivers events (subscribed while open)."""
        return self._events is not None and self._events.error is None

    def event_active(self, kind: EventKind = "motion") -> bool | None:
        """The camera's latest on/off state for ``kind``; None when it has not said (or has no
        events), in which case a gate must fall back to looking at the pixels."""
        if self._events is None or self._events.error is not None:
            return None
        return self._events.active.get(kind)

    def motion_hint(self) -> bool | None:
        """The host's recognition gate: True while the camera reports motion or a vehicle,
        False when it has said both are over, None without events (or before it said anything,
        or after the subscription was lost), so the host falls back to its pixel gate."""
        states = [self.event_active("motion"), self.event_active("vehicle")]
        if True in states:
            return True
        if False in states:
            return False
        return None

    async def events(self) -> AsyncIterator[CameraEvent]:
        """Every event the camera sends while open (the oldest dropped for a slow listener)."""
        if self._events is None:
            return
        async for event in self._events.listen():
            yield event

    # -- helpers -----------------------------------------------------------------------------

    async def _connect(self) -> OnvifSession:
        password = ""
        if self.settings.password is not None:
            try:
                password = self.settings.password.get()
            except LookupError as err:
                raise PluginConfigError(str(err)) from err
        session = OnvifSession(
            self.settings.host,
            self.settings.port,
            self.settings.username,
            password,
            timeout=self.settings.request_timeout,
        )
        try:
            await session.connect()
        except BaseException:
            await session.close()
            raise
        return session

    async def _choose(self, session: OnvifSession) -> MediaProfile:
        return self._pick(await session.profiles())

    def _pick(self, profiles: list[MediaProfile]) -> MediaProfile:
        resolution = (
            parse_resolution(self.settings.resolution) if self.settings.resolution else None
        )
        return choose_profile(profiles, resolution, self.settings.profile)


def _decode_jpeg(data: bytes) -> Any:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return image if image is not None and image.ndim == 3 else None


@hookimpl
def appliance_camera_types() -> list[type[Camera]]:
    return [OnvifCamera]
