"""Glue around onvif-zeep-async: one session with a camera's ONVIF services, errors made plain.

Every call has a timeout, and every failure comes out as one of the host's errors with a
message an installer can act on: unreachable, credentials refused, no media service, no H.264
profile. Credentials never appear in a message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from appliance import AuthFailed, DeviceUnavailable, PluginConfigError
from appliance.capture import mask_credentials

logger = logging.getLogger(__name__)

MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"


@dataclass(frozen=True)
class MediaProfile:
    """One media profile as the camera describes it."""

    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float | None = None

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def describe(self) -> str:
        return f"{self.token} ({self.encoding} {self.width}x{self.height})"


def parse_resolution(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def choose_profile(
    profiles: list[MediaProfile],
    resolution: tuple[int, int] | None = None,
    token: str | None = None,
) -> MediaProfile:
    """The H.264 profile to stream: ``token`` if given, else the one nearest ``resolution``
    (by pixel count; ties go to the larger), else the largest.

    Raises :class:`PluginConfigError` naming what the camera offers when nothing fits.
    """
    offered = ", ".join(p.describe() for p in profiles) or "none"
    h264 = [p for p in profiles if p.encoding.upper() == "H264"]
    if token is not None:
        chosen = next((p for p in profiles if p.token == token), None)
        if chosen is None:
            raise PluginConfigError(f"no media profile {token!r} (the camera offers: {offered})")
        if chosen not in h264:
            raise PluginConfigError(f"profile {chosen.describe()} is not H.264")
        return chosen
    if not h264:
        raise PluginConfigError(f"the camera has no H.264 media profile (it offers: {offered})")
    if resolution is None:
        return max(h264, key=lambda p: p.pixels)
    wanted = resolution[0] * resolution[1]
    return min(h264, key=lambda p: (abs(p.pixels - wanted), -p.pixels))


def with_credentials(uri: str, user: str, password: str) -> str:
    """``uri`` with ``user:password@`` added, unless it has credentials already or no user."""
    parts = urlsplit(uri)
    if not user or "@" in parts.netloc:
        return uri
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{auth}@{parts.netloc}"))


class OnvifSession:
    """A connection to one camera's device, media and (if it has them) event services."""

    def __init__(
        self, host: str, port: int, user: str, password: str, *, timeout: float = 10.0
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self._password = password
        self.timeout = timeout
        self.client: Any = None
        self.label = f"ONVIF device {host}:{port}"

    @property
    def clock_offset(self) -> timedelta | None:
        """The camera's clock minus ours, measured at connect (applied to WS-Security)."""
        return None if self.client is None else self.client.dt_diff

    @property
    def has_media(self) -> bool:
        return self.client is not None and MEDIA_NS in self.client.xaddrs

    @property
    def has_events(self) -> bool:
        return self.client is not None and EVENTS_NS in self.client.xaddrs

    async def connect(self) -> None:
        """Reach the device, measure its clock offset and learn its services' addresses."""
        # onvif calls logging.basicConfig at import; by now the host has configured logging,
        # so importing it here (not at module import) leaves the host's handlers alone.
        from onvif import ONVIFCamera

        # adjust_time: GetSystemDateAndTime first (no credentials needed), then every
        # WS-Security Created stamp is shifted by the camera's offset, so a camera whose clock
        # is an hour off still accepts our digest.
        self.client = ONVIFCamera(
            self.host, self.port, self.user, self._password, no_cache=True, adjust_time=True
        )
        await self.call("connect", self.client.update_xaddrs())
        if not self.has_media:
            raise PluginConfigError(f"{self.label} has no ONVIF media service (not a camera?)")

    async def device_info(self) -> dict[str, str]:
        devicemgmt = await self.call("device service", self.client.create_devicemgmt_service())
        info = await self.call("GetDeviceInformation", devicemgmt.GetDeviceInformation())
        return {
            "manufacturer": str(info.Manufacturer or ""),
            "model": str(info.Model or ""),
            "firmware": str(info.FirmwareVersion or ""),
            "serial": str(info.SerialNumber or ""),
        }

    async def profiles(self) -> list[MediaProfile]:
        media = await self.call("media service", self.client.create_media_service())
        result = await self.call("GetProfiles", media.GetProfiles())
        profiles = []
        for profile in result or []:
            encoder = getattr(profile, "VideoEncoderConfiguration", None)
            if encoder is None or encoder.Resolution is None:
                continue  # an audio-only or metadata profile
            rate = getattr(encoder, "RateControl", None)
            profiles.append(
                MediaProfile(
                    token=str(profile.token),
                    name=str(profile.Name or profile.token),
                    encoding=str(encoder.Encoding),
                    width=int(encoder.Resolution.Width),
                    height=int(encoder.Resolution.Height),
                    fps=float(rate.FrameRateLimit) if rate and rate.FrameRateLimit else None,
                )
            )
        return profiles

    async def stream_uri(self, token: str) -> str:
        """The profile's RTSP URI, with our credentials in it (never log it: mask it)."""
        media = await self.call("media service", self.client.create_media_service())
        request = {
            "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
            "ProfileToken": token,
        }
        result = await self.call("GetStreamUri", media.GetStreamUri(request))
        uri = str(getattr(result, "Uri", "") or "")
        if not uri.lower().startswith(("rtsp://", "rtsps://")):
            raise DeviceUnavailable(
                f"{self.label} returned no RTSP URI for profile {token} ({mask_credentials(uri)!r})"
            )
        return with_credentials(uri, self.user, self._password)

    async def snapshot(self, token: str) -> bytes:
        """One JPEG from the profile's snapshot URI (HTTP Digest with our credentials)."""
        from onvif.exceptions import ONVIFAuthError

        try:
            data = await self.call(
                "snapshot", self.client.get_snapshot(token, timeout=self.timeout)
            )
        except ONVIFAuthError as err:
            raise AuthFailed(f"{self.label} refused the credentials for its snapshot") from err
        if not data:
            raise DeviceUnavailable(f"{self.label} returned no snapshot for profile {token}")
        return bytes(data)

    async def call(self, what: str, awaitable: Any) -> Any:
        """Await one ONVIF operation with the timeout, turning failures into host errors."""
        try:
            async with asyncio.timeout(self.timeout):
                return await awaitable
        except TimeoutError:
            raise DeviceUnavailable(
                f"{self.label} did not answer {what} within {self.timeout:g} s"
            ) from None
        except (AuthFailed, DeviceUnavailable, PluginConfigError):
            raise
        except Exception as err:
            raise self.translate(what, err) from err

    def translate(self, what: str, err: Exception) -> Exception:
        from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError
        from onvif.util import is_auth_error
        from zeep.exceptions import Fault, TransportError

        if isinstance(err, ONVIFAuthError) or is_auth_error(err):
            return AuthFailed(
                f"{self.label} refused user {self.user!r}: wrong password, or a user without "
                "the right ONVIF access level"
            )
        if isinstance(err, Fault):
            return DeviceUnavailable(f"{self.label} refused {what}: {err.message}")
        if isinstance(err, ONVIFTimeoutError):
            return DeviceUnavailable(f"{self.label} did not answer {what} in time")
        cause = err.__cause__ or err.__context__ or err
        if isinstance(err, aiohttp.ClientError | OSError | TransportError) or isinstance(
            cause, aiohttp.ClientError | OSError
        ):
            reason = _connection_reason(cause)
            return DeviceUnavailable(f"{self.label} is unreachable ({reason})")
        if isinstance(err, ONVIFError):
            if "doesn`t support service" in str(err) or "support service" in str(err):
                return PluginConfigError(f"{self.label}: {err}")
            return DeviceUnavailable(f"{self.label}: {what} failed: {_clean(str(err))}")
        return err

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            try:
                await client.close()
            except Exception:  # closing must not hide the error that led here
                logger.debug("%s: close failed", self.label, exc_info=True)


def _connection_reason(err: BaseException) -> str:
    if isinstance(err, aiohttp.ClientConnectorError):
        return err.os_error.strerror or str(err.os_error)
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return _clean(str(err)) or type(err).__name__


def _clean(text: str) -> str:
    return mask_credentials(text.strip())[:200]
