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
    PluginContext,
    Secret,
    hookimpl,
)

SIGNATURE_HEADER = "X-Alprbox-Signature"
TIMESTAMP_HEADER = "X-Alprbox-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


class WebhookSettings(ExporterSettings):
    type: Literal["webhook"] = Field(description="JSON webhook.")
    url: str = Field(description="Where to POST (https:// in production).",
                     pattern=r"^https?://")
    secret: Secret = Field(description="HMAC key shared with the receiver: env:NAME or "
                           "file:/path, never the key itself.")
    request_timeout: float = Field(default=10.0, gt=0, le=120,
                                   description="Seconds one POST may take.")

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
        "payload": _plain(delivery.payload),
        "files": {p: base64.b64encode(d).decode() for p, d in delivery.files.items()},
    }, sort_keys=True).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


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
        timestamp = str(int(self.context.clock.now().timestamp()))
        try:
            secret = self.settings.secret.get()
        except LookupError as err:
            raise AuthFailed(str(err)) from err
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: delivery.id,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
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
