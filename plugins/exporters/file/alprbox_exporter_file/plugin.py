"""File exporter: CSV or JSON files in a directory (portable media for a partner or the DA).

A file is written only for a delivery the host's outbox hands over, which means the policy gate
approved it and the host audited it; the file is written in the clear on purpose (it is the
export), to the approved destination. Files are named by delivery id and written atomically
(temporary name, fsync, rename), so a retry after a crash rewrites the same file instead of
adding a second copy, and a reader never sees half a file.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from appliance import Delivery, DeviceUnavailable, Exporter, ExporterSettings, hookimpl

CSV_COLUMNS = ("read_id", "plate", "state", "camera", "seen_at", "confidence")


class FileExportSettings(ExporterSettings):
    type: Literal["file"] = Field(description="CSV/JSON files in a directory.")
    directory: Path = Field(description="Where files go: a mounted portable medium or a share.")
    format: Literal["csv", "json"] = Field(default="json", description="csv or json.")


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def render(delivery: Delivery, fmt: str) -> bytes:
    if fmt == "json":
        return (json.dumps({
            "delivery_id": delivery.id, "approval_id": delivery.approval_id,
            "recipient": delivery.recipient.agency, "ori": delivery.recipient.ori,
            "purpose": delivery.purpose, "case_number": delivery.case_number,
            "created_at": delivery.created_at.isoformat(), "payload": _plain(delivery.payload),
        }, indent=2, sort_keys=True) + "\n").encode()
    out = io.StringIO()
    reads = delivery.payload.get("reads", ())
    columns = [c for c in CSV_COLUMNS if any(c in r for r in reads)] or list(CSV_COLUMNS)
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    for read in reads:
        # Cells starting with = + - @ are neutralized: a spreadsheet must not run them.
        writer.writerow({k: _cell(read.get(k)) for k in columns})
    return out.getvalue().encode()


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial")
    with open(staging, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staging, target)


class FileExporter(Exporter):
    settings_model = FileExportSettings
    settings: FileExportSettings

    async def deliver(self, delivery: Delivery) -> None:
        fmt = self.settings.format
        base = self.settings.directory / delivery.id
        try:
            await asyncio.to_thread(_write_atomic, base.with_suffix(f".{fmt}"),
                                    render(delivery, fmt))
            for path, data in delivery.files.items():
                await asyncio.to_thread(_write_atomic, base / path, data)
        except OSError as err:
            raise DeviceUnavailable(f"cannot write to {self.settings.directory}: "
                                    f"{err.strerror}") from err


@hookimpl
def appliance_exporter_types() -> list[type[Exporter]]:
    return [FileExporter]
