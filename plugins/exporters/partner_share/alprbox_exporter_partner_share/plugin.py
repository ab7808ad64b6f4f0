"""Regional partner share: fetch a partner's list, deliver the host's hit/no-hit answer.

The host does the matching (through its keyed plate index), asks the policy gate under the
partner's standing approval and queues the answer in its outbox; this plugin only talks HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, field_validator

from appliance import (
    AuthFailed,
    Delivery,
    DeviceUnavailable,
    Exporter,
    ExporterSettings,
    PartnerQuery,
    PluginConfigError,
    PluginContext,
    Secret,
    hookimpl,
)

SIGNATURE_HEADER = "X-Alprbox-Signature"
TIMESTAMP_HEADER = "X-Alprbox-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_LIST_BYTES = 16 * 1024 * 1024


class PartnerShareSettings(ExporterSettings):
    type: Literal["partner_share"] = Field(description="Regional partner share.")
    url: str = Field(description="The partner's base URL (GET /list, POST /answers).",
                     pattern=r"^https?://")
    secret: Secret = Field(description="HMAC key shared with the partner: env:NAME or "
                           "file:/path.")
    request_timeout: float = Field(default=15.0, gt=0, le=120,
                                   description="Seconds one request may take.")
    query_minutes: float = Field(default=15.0, ge=1, le=1440,
                                 description="How often the host fetches and answers the list.")

    @field_validator("url")
    @classmethod
    def _tls(cls, value: str) -> str:
        # ALPR data crosses networks only encrypted; plain http is for a receiver on this host.
        parts = urlsplit(value)
        if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("use https:// (plain http only to a receiver on this machine)")
        return value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


class PartnerShareExporter(Exporter):
    settings_model = PartnerShareSettings
    channel = "partner_query"
    settings: PartnerShareSettings

    def __init__(self, settings: ExporterSettings, context: PluginContext) -> None:
        super().__init__(settings, context)
        self._session: aiohttp.ClientSession | None = None

    def _headers(self, body: bytes) -> dict[str, str]:
        try:
            secret = self.settings.secret.get()
        except LookupError as err:
            raise AuthFailed(str(err)) from err
        stamp = str(int(self.context.clock.now().timestamp()))
        return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, body)}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.request_timeout))
        return self._session

    async def fetch_query(self) -> PartnerQuery | None:
        url = self.settings.url.rstrip("/") + "/list"
        try:
            async with self._client().get(url, headers=self._headers(b"")) as response:
                if response.status == 204:
                    return None
                if response.status in (401, 403):
                    raise AuthFailed(f"partner refused this box (HTTP {response.status})")
                if response.status != 200:
                    raise DeviceUnavailable(f"partner list answered HTTP {response.status}")
                raw = await response.content.read(MAX_LIST_BYTES + 1)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DeviceUnavailable(f"partner unreachable: {type(err).__name__}") from err
        if len(raw) > MAX_LIST_BYTES:
            raise PluginConfigError("the partner's list is larger than 16 MiB")
        try:
            data = json.loads(raw)
            plates = tuple(str(p) for p in data["plates"])
            list_id = str(data.get("id") or hashlib.sha256(raw).hexdigest()[:16])
        except (ValueError, KeyError, TypeError) as err:
            raise DeviceUnavailable(f"the partner's list is not valid JSON with 'plates': "
                                    f"{type(err).__name__}") from err
        return PartnerQuery(id=list_id, plates=plates)

    async def deliver(self, delivery: Delivery) -> None:
        body = json.dumps({
            "delivery_id": delivery.id,
            "approval_id": delivery.approval_id,
            "purpose": delivery.purpose,
            "case_number": delivery.case_number,
            "answer": _plain(delivery.payload),
        }, sort_keys=True).encode()
        headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: delivery.id,
                   **self._headers(body)}
        url = self.settings.url.rstrip("/") + "/answers"
        try:
            async with self._client().post(url, data=body, headers=headers) as response:
                if response.status in (401, 403):
                    raise AuthFailed(f"partner refused the answer (HTTP {response.status})")
                if not 200 <= response.status < 300:
                    raise DeviceUnavailable(f"partner answered HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DeviceUnavailable(f"partner unreachable: {type(err).__name__}") from err

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@hookimpl
def appliance_exporter_types() -> list[type[Exporter]]:
    return [PartnerShareExporter]
