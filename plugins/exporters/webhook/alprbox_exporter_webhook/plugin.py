"""JSON webhook exporter: POSTs each delivery, signed with HMAC-SHA256, keyed for idempotency.

The host's outbox does the retrying (exponential backoff with jitter, dead letters); this plugin
makes one attempt per call, with a timeout, and raises on anything but a 2xx answer so the host
retries. Every attempt of one delivery carries the same ``Idempotency-Key`` (the delivery id), so
a receiver that saw the first attempt can drop the repeat.

Headers: ``Content-Type: application/json``, ``Idempotency-Key: <delivery id>``,
``X-Alprbox-Timestamp: <unix seconds>``, ``X-Alprbox-Signature: sha256=<hex>`` where the HMAC
key is the shared secret and the message is ``<timestamp>.<body>``.
"""

from __future__ import annotations

import base64
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

__all__ = ["IDEMPOTENCY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookExporter"]


class WebhookSettings(SignedHttpSettings):
    type: Literal["webhook"] = Field(description="JSON webhook.")


def body_of(delivery: Delivery) -> bytes:
    """The JSON body: who it is for, under which approval, and the host-built payload."""
    return json.dumps({
        "delivery_id": delivery.id,
        "approval_id": delivery.approval_id,
        "channel": delivery.channel,
        "recipient": {"agency": delivery.recipient.agency, "ori": delivery.recipient.ori},
        "purpose": delivery.purpose,
        "case_number": delivery.case_number,
        "created_at": delivery.created_at.isoformat(),
        "payload": plain(delivery.payload),
        "files": {p: base64.b64encode(d).decode() for p, d in delivery.files.items()},
    }, sort_keys=True).encode()


class WebhookExporter(Exporter):
    settings_model = WebhookSettings
    channel = "webhook"
    settings: WebhookSettings

    def __init__(self, settings: ExporterSettings, context: PluginContext) -> None:
        super().__init__(settings, context)
        self._session: aiohttp.ClientSession | None = None

    async def deliver(self, delivery: Delivery) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        body = body_of(delivery)
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: delivery.id,
            **signed_headers(self.settings.secret, self.context.clock, body),
        }
        timeout = aiohttp.ClientTimeout(total=self.settings.request_timeout)
        try:
            async with self._session.post(self.settings.url, data=body, headers=headers,
                                          timeout=timeout) as response:
                if response.status in (401, 403):
                    raise AuthFailed(f"webhook refused the signature (HTTP {response.status})")
                if not 200 <= response.status < 300:
                    raise DeviceUnavailable(f"webhook answered HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as err:
            raise DeviceUnavailable(f"webhook unreachable: {type(err).__name__}") from err

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@hookimpl
def appliance_exporter_types() -> list[type[Exporter]]:
    return [WebhookExporter]
