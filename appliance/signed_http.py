"""Public helper for exporters that POST to a receiver with a shared HMAC secret.

Both built-in HTTP exporters (``webhook`` and ``partner_share``) speak this: every request carries
``X-Alprbox-Timestamp: <unix seconds>`` and ``X-Alprbox-Signature: sha256=<hex>``, the HMAC-SHA256
of ``<timestamp>.<body>`` under the shared secret, and each delivery an ``Idempotency-Key`` (the
delivery id) so a receiver can drop a retried one. A vendor's exporter that subclasses
:class:`SignedHttpSettings` gets the same transport rules: https only (plain http to this machine
for a local receiver), the secret as a reference, a per-request timeout.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from .base import Clock
from .errors import AuthFailed
from .settings import ExporterSettings, Secret

SIGNATURE_HEADER = "X-Alprbox-Signature"
TIMESTAMP_HEADER = "X-Alprbox-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")


class SignedHttpSettings(ExporterSettings):
    """A receiver URL and the secret shared with it. Subclasses add ``type: Literal[...]``."""

    url: str = Field(description="The receiver's URL (https:// in production).",
                     pattern=r"^https?://")
    secret: Secret = Field(description="HMAC key shared with the receiver: env:NAME or "
                           "file:/path, never the key itself.")
    request_timeout: float = Field(default=10.0, gt=0, le=120,
                                   description="Seconds one request may take.")

    @field_validator("url")
    @classmethod
    def _tls(cls, value: str) -> str:
        # ALPR data crosses networks only encrypted; plain http is for a receiver on this host.
        parts = urlsplit(value)
        if parts.scheme != "https" and parts.hostname not in _LOCAL_HOSTS:
            raise ValueError("use https:// (plain http only to a receiver on this machine)")
        return value


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Alprbox-Signature`` value for ``body`` sent at ``timestamp``."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver checks (constant-time)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def signed_headers(secret: Secret, clock: Clock, body: bytes) -> dict[str, str]:
    """Timestamp and signature headers; :class:`AuthFailed` when the secret cannot be read."""
    try:
        key = secret.get()
    except LookupError as err:
        raise AuthFailed(str(err)) from err
    stamp = str(int(clock.now().timestamp()))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(key, stamp, body)}


def plain(value: Any) -> Any:
    """Mappings and tuples of a delivery's payload as JSON-ready dicts and lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value
