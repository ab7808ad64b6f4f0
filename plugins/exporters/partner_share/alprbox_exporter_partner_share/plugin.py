"""Regional partner share: fetch a partner's list, deliver the host's hit/no-hit answer.

The host does the matching (through its keyed plate index), asks the policy gate under the
partner's standing approval and queues the answer in its outbox; this plugin only talks HTTP.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

import aiohttp
from pydantic import Field

from appliance import (
    AuthFailed,
    Delivery,
    DeviceUnavailable,
    Exporter,
    ExporterSettings,
    PartnerQuery,
    PluginConfigError,
    PluginContext,
    hookimpl,
)
from appliance.signed_http import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignedHttpSettings,
    plain,
    signed_headers,
)

__all__ = ["IDEMPOTENCY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "PartnerShareExporter"]
MAX_LIST_BYTES = 16 * 1024 * 1024


class PartnerShareSettings(SignedHttpSettings):
    type: Literal["partner_share"] = Field(description="Regional partner share.")
    url: str = Field(description="The partner's base URL (GET /list, POST /answers).",
                     pattern=r"^https?://")
    request_timeout: float = Field(default=15.0, gt=0, le=120,
                                   description="Seconds one request may take.")
    query_minutes: float = Field(default=15.0, ge=1, le=1440,
                                 description="How often the host fetches and answers the list.")


class PartnerShareExporter(Exporter):
    settings_model = PartnerShareSettings
    channel = "partner_query"
    settings: PartnerShareSettings

    def __init__(self, settings: ExporterSettings, context: PluginContext) -> None:
        super().__init__(settings, context)
        self._session: aiohttp.ClientSession | None = None

    def _headers(self, body: bytes) -> dict[str, str]:
        return signed_headers(self.settings.secret, self.context.clock, body)

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
            "answer": plain(delivery.payload),
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
