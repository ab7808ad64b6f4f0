"""Evidence exporter: writes host-built, host-signed evidence packages to portable media.

The host builds the package (records, images, chain of custody, manifest with SHA-256 of every
file, Ed25519 signature with the box's audit key) only for reads an approval on the
``evidence`` channel covers, and hands the finished files over; this plugin never signs and
never sees the store or a key. It writes ``<directory>/<case>-<delivery id>/`` (or a ``.zip``),
atomically: into a temporary name first, renamed when complete, so a medium pulled mid-write
never holds a package that looks whole. ``alprbox evidence verify`` checks the result.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field

from appliance import Delivery, DeviceUnavailable, Exporter, ExporterSettings, hookimpl

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class EvidenceSettings(ExporterSettings):
    type: Literal["evidence"] = Field(description="Evidence packages to portable media.")
    directory: Path = Field(description="Where packages go: the mounted evidence medium.")
    zip: bool = Field(default=False, description="One .zip per package instead of a folder.")


def _safe(path: str) -> PurePosixPath:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise DeviceUnavailable(f"refusing unsafe path in package: {path!r}")
    return pure


def _write(target: Path, files: dict[str, bytes], as_zip: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial")
    if staging.exists():
        shutil.rmtree(staging) if staging.is_dir() else staging.unlink()
    if as_zip:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, data in sorted(files.items()):
                archive.writestr(str(_safe(path)), data)
        with open(staging, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
    else:
        for path, data in files.items():
            out = staging / _safe(path)
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
    if target.exists():  # a retry after the rename succeeded but the answer was lost
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    os.replace(staging, target)


class EvidenceExporter(Exporter):
    settings_model = EvidenceSettings
    channel = "evidence"
    settings: EvidenceSettings

    async def deliver(self, delivery: Delivery) -> None:
        if not delivery.files:
            raise DeviceUnavailable("an evidence delivery without a package")
        case = _UNSAFE.sub("_", delivery.case_number) or "case"
        name = f"{case}-{delivery.id}" + (".zip" if self.settings.zip else "")
        try:
            await asyncio.to_thread(_write, self.settings.directory / name,
                                    dict(delivery.files), self.settings.zip)
        except OSError as err:
            raise DeviceUnavailable(f"cannot write to {self.settings.directory}: "
                                    f"{err.strerror}") from err


@hookimpl
def appliance_exporter_types() -> list[type[Exporter]]:
    return [EvidenceExporter]
