"""Glue between the GateCam SDK and alprbox's camera interface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from pydantic import Field

from appliance import AuthFailed, Camera, CameraSettings, Frame, Secret, hookimpl

from .sdk import GateCamClient, GateCamError


class GateCamSettings(CameraSettings):
    type: Literal["gatecam"] = Field(description="GateCam camera.")
    address: str = Field(description="Camera address, host:port.")
    password: Secret = Field(description="Camera password (env:NAME or file:/path).")
    fps: float = Field(default=10.0, gt=0, le=30, description="Frames per second to pull.")


class GateCam(Camera):
    settings_model = GateCamSettings
    settings: GateCamSettings
    client: GateCamClient | None = None

    async def open(self) -> None:
        client = GateCamClient(self.settings.address, self.settings.password.get())
        try:
            client.connect()
        except GateCamError as err:
            raise AuthFailed(str(err)) from err
        self.client = client

    async def probe(self) -> dict[str, str]:
        await self.open()
        assert self.client is not None
        return self.client.device_info()

    async def frames(self) -> AsyncIterator[Frame]:
        assert self.client is not None, "open() first"
        clock = self.context.clock
        while True:
            await clock.sleep(1.0 / self.settings.fps)
            yield Frame(image=self.client.next_image(), timestamp=clock.now())

    async def close(self) -> None:
        self.client = None


@hookimpl
def appliance_camera_types() -> list[type[Camera]]:
    return [GateCam]
