"""Public helper for hot-list sources that download a file over authenticated HTTPS.

The NCIC extract and the DMV registration list are both one file behind HTTP Basic auth on a
CJIS-grade HTTPS server; a vendor's state feed is usually the same. Subclass
:class:`HttpFeedSettings` (add your ``type`` literal) and :class:`HttpFeedSource` (set
``feed_label`` and implement :meth:`~appliance.HotlistSource.parse`), and the host's rules come
with it: https only (plain http to loopback or with ``allow_plain_http`` for test feeds), no
credentials in the URL, a secret reference for the password, a size cap, no redirects, a custom
CA file, and errors the host understands (:class:`~appliance.errors.AuthFailed`,
:class:`~appliance.errors.DeviceUnavailable`, :class:`~appliance.errors.HotlistFormatError`).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import ssl
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, model_validator

from .base import HotlistBatch, HotlistSource, PluginContext
from .errors import AuthFailed, DeviceUnavailable, HotlistFormatError, PluginConfigError
from .settings import HotlistSourceSettings, Secret

logger = logging.getLogger(__name__)

_LOOPBACK_NAMES = {"localhost"}


class HttpFeedSettings(HotlistSourceSettings):
    """Where and how to download the list. Subclasses add ``type: Literal[...]``."""

    url: str = Field(
        title="Feed URL",
        description="https:// address of the list file, as the issuing agency gave it.",
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
        description="A larger download is refused as not a list of this kind.",
    )
    allow_plain_http: bool = Field(
        default=False,
        title="Allow plain http",
        description="Permit an http:// URL to a host other than this one (test feeds only: "
        "the CJIS Security Policy requires encryption in transit).",
    )

    @model_validator(mode="after")
    def _check_url(self) -> Self:
        check_feed_url(self.url, self.allow_plain_http)
        return self


class HttpFeedSource(HotlistSource):
    """Downloads ``settings.url`` and parses it off the event loop with :meth:`parse`."""

    settings: HttpFeedSettings
    #: how log lines and errors name the feed, e.g. ``"ncic"``
    feed_label: str = "feed"

    def __init__(self, settings: HotlistSourceSettings, context: PluginContext) -> None:
        super().__init__(settings, context)
        self._session: aiohttp.ClientSession | None = None

    async def fetch(self) -> HotlistBatch:
        data = await self.download()
        batch = await asyncio.to_thread(self.parse, data)  # large files: off the loop
        logger.info(
            "Hot list '%s' (%s): %d entries; %s%d skip messages",
            self.settings.name,
            self.feed_label,
            len(batch.entries),
            f"dropped {dict(batch.dropped)}; " if batch.dropped else "",
            len(batch.skipped),
        )
        return batch

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def download(self) -> bytes:
        """The whole file, or an error naming the feed: AuthFailed on 401/403,
        DeviceUnavailable when unreachable or on any other status (redirects included),
        HotlistFormatError when over ``max_size_mb``."""
        s = self.settings
        where = f"hot list '{s.name}' ({self.feed_label}) at {s.url}"
        try:
            password = s.password.get()
        except LookupError as err:
            raise PluginConfigError(f"{where}: {err}") from err
        session = await self._open_session()
        try:
            async with session.get(
                s.url,
                headers={"Authorization": basic_auth(s.username, password)},
                # A redirect could carry the credentials to another host.
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
                        f"hot list '{self.settings.name}' ({self.feed_label}): "
                        f"ca_file {ca_file}: {err}"
                    ) from err
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_seconds),
                connector=aiohttp.TCPConnector(ssl=ssl_context),
            )
        return self._session


def check_feed_url(url: str, allow_plain_http: bool) -> None:
    """Refuse credentials in the URL, a URL with no host, and plain http to another host."""
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


def basic_auth(username: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value (RFC 7617, UTF-8)."""
    # Built by hand: aiohttp 3.14 deprecates BasicAuth and older versions lack its replacement.
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
