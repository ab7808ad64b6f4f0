"""Payloads the host builds for exporters, from what an approval's scope allows, and nothing else.

Exporters never query the store: the host reads the store, keeps only the reads and fields the
scope names, and hands over a deeply immutable copy (read-only mappings, tuples, bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..models import PlateRead
from .authority import Authorization

if TYPE_CHECKING:
    from .._storage import Store


def freeze(value: Any) -> Any:
    """A deeply immutable copy: mappings become read-only, lists and sets tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(freeze(v) for v in value)
    if isinstance(value, bytearray):
        return bytes(value)
    return value


def thaw(value: Any) -> Any:
    """A JSON-able copy of a frozen payload (for storing it encrypted in the outbox)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


def read_record(read: PlateRead, fields: Iterable[str]) -> dict[str, Any]:
    """One read as an exporter may see it: only ``fields`` (images travel as files)."""
    allowed = set(fields)
    full: dict[str, Any] = {
        "read_id": read.id,
        "plate": read.text,
        "state": read.state,
        "camera": read.camera,
        "seen_at": read.first_seen.astimezone(UTC).isoformat(),
        "confidence": round(read.confidence, 4),
    }
    location = getattr(read, "location", None)
    if location is not None:
        full["location"] = _location(location)
    return {k: v for k, v in full.items() if k in allowed}


def _location(location: Any) -> Any:
    if isinstance(location, Mapping):
        return dict(location)
    for attrs in (("latitude", "longitude"), ("lat", "lon")):
        if all(hasattr(location, a) for a in attrs):
            return {a: getattr(location, a) for a in attrs}
    return str(location)


async def reads_payload(
    store: Store, authorization: Authorization, reads: Iterable[PlateRead]
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(payload, files) for ``reads`` under ``authorization``: reads outside the scope are left
    out, fields outside it dropped, images included only when the scope names them."""
    scope = authorization.scope
    records = []
    files: dict[str, bytes] = {}
    for read in reads:
        if not scope.allows_read(read.id, read.first_seen, read.text):
            continue
        records.append(read_record(read, scope.fields))
        for kind in ("crop", "vehicle"):
            if kind in scope.fields:
                image = await store.get_image(read.id, kind)
                if image:
                    files[f"images/{read.id}-{kind}.jpg"] = image
    return {"kind": "reads", "reads": records}, files
