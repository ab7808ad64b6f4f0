"""The ``ncic`` hot-list source: the FBI's twice-daily NCIC extract for plate readers."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import ssl
from datetime import timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, model_validator

from appliance import (
    AuthFailed,
    DeviceUnavailable,
    HotlistBatch,
    HotlistFormatError,
    HotlistSource,
    HotlistSourceSettings,
    PluginConfigError,
    PluginContext,
    Secret,
    hookimpl,
)

from .extract import parse_extract

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES = {"localhost"}


class NcicSettings(HotlistSourceSettings):
    # Immigration Violator records are dropped in extract.py with no setting to keep them
    # (Cal. Gov. Code 7284.6; Vallejo 426.6); unknown keys are rejected by the base model.
    type: Literal["ncic"] = Field(
        title="Source type", description="The FBI NCIC extract for plate readers."
    )
    url: str = Field(
        title="Extract URL",
        description="https:// address of the extract file, as given by the state's CJIS "
        "systems agency.",
        pattern=r"^https?://\S+$",
    )
    username: str = Field(
        pattern=r"^[^:]+$", title="User name", description="Account the feed was issued to."
    )
    password: Secret = Field(
        title="Password",
        description="Reference to the feed password: env:VARIABLE or file:/path/to/secret.",
    )
    timeout_seconds: float = Field(
        default=300,
        gt=0,
        le=1800,
        title="Timeout (seconds)",
        description="Limit on the whole download, connection included.",
    )
    ca_file: Path | None = Field(
        default=None,
        title="CA certificate file",
        description="PEM file of the certificate authority that signs the feed's certificate; "
        "default the system's trusted authorities.",
    )
    max_size_mb: int = Field(
        default=1024,
        ge=1,
        le=8192,
        title="Maximum size (MB)",
        description="A larger download is refused as not an extract.",
    )
    allow_plain_http: bool = Field(
        default=False,
        title="Allow plain http",
        description="Permit an http:// URL to a host other than this one (test feeds only: "
        "the CJIS Security Policy requires encryption in transit).",
    )

    @model_validator(mode="after")
    def _check_url(self) -> NcicSettings:
        check_feed_url(self.url, self.allow_plain_http)
        return self


def check_feed_url(url: str, allow_plain_http: bool) -> None:
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError("put the credentials in username and password, not in the URL")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if parts.scheme == "http" and not allow_plain_http and not _is_loopback(parts.hostname):
        raise ValueError(
            "plain http:// sends the credentials and the list unencrypted; use https:// "
            "(or set allow_plain_http for a test feed)"
        )


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NcicSource(HotlistSource):
    settings_model = NcicSettings
    refresh_every = timedelta(hours=12)  # the FBI refreshes the extract twice a day

    settings: NcicSettings

    def __init__(self, settings: HotlistSourceSettings, context: PluginContext) -> None:
        super().__init__(settings, context)
        self._session: aiohttp.ClientSession | None = None

    def parse(self, data: bytes) -> HotlistBatch:
        return parse_extract(data)

    async def fetch(self) -> HotlistBatch:
        data = await self._download()
        batch = await asyncio.to_thread(parse_extract, data)  # a million lines: off the loop
        logger.info(
            "Hot list '%s' (ncic): %d entries; dropped %s; %d skip messages",
            self.settings.name,
            len(batch.entries),
            dict(batch.dropped) or "none",
            len(batch.skipped),
        )
        return batch

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _download(self) -> bytes:
        s = self.settings
        where = f"hot list '{s.name}' (ncic) at {s.url}"
        try:
            password = s.password.get()
        except LookupError as err:
            raise PluginConfigError(f"{where}: {err}") from err
        session = await self._open_session()
        try:
            async with session.get(
                s.url,
                headers={"Authorization": basic_auth(s.username, password)},
                allow_redirects=False,
            ) as response:
                if response.status in (401, 403):
                    raise AuthFailed(f"{where}: credentials refused (HTTP {response.status})")
                if response.status != 200:
                    raise DeviceUnavailable(f"{where}: HTTP {response.status} {response.reason}")
                return await _read_limited(response, s.max_size_mb * 1024 * 1024, where)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DeviceUnavailable(f"{where}: {type(err).__name__}: {err}") from err

    async def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            ca_file = self.settings.ca_file
            ssl_context: ssl.SSLContext | bool = True
            if ca_file is not None:
                try:
                    ssl_context = await asyncio.to_thread(
                        ssl.create_default_context, cafile=str(ca_file)
                    )
                except (OSError, ssl.SSLError) as err:
                    raise PluginConfigError(
                        f"hot list '{self.settings.name}' (ncic): ca_file {ca_file}: {err}"
                    ) from err
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
                connector=aiohttp.TCPConnector(ssl=ssl_context),
            )
        return self._session


def basic_auth(username: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value (RFC 7617, UTF-8)."""
    # Built by hand: aiohttp 3.14 deprecates BasicAuth and older versions lack its replacement.
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


async def _read_limited(response: aiohttp.ClientResponse, limit: int, where: str) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise HotlistFormatError(f"{where}: {response.content_length} bytes, over max_size_mb")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(1 << 20):
        size += len(chunk)
        if size > limit:
            raise HotlistFormatError(f"{where}: more than {limit} bytes, over max_size_mb")
        chunks.append(chunk)
    return b"".join(chunks)


@hookimpl
def appliance_hotlist_source_types() -> list[type[HotlistSource]]:
    return [NcicSource]
