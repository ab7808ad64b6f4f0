"""Which V4L2 devices the box has, read from sysfs, and their stable names.

``/dev/videoN`` numbers change with plug order and between boots; udev's
``/dev/v4l/by-id/usb-<vendor>_<model>_<serial>-video-index0`` names do not, so sites name their
camera by that. Each UVC camera shows two nodes (``index`` 0 captures, 1 carries metadata); only
index 0 delivers pictures. Every root is a parameter so tests build a fake tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["V4l2Device", "find_device", "list_devices"]

SYSFS_ROOT = Path("/sys/class/video4linux")
BY_ID_DIR = Path("/dev/v4l/by-id")
DEV_DIR = Path("/dev")


@dataclass(frozen=True, slots=True)
class V4l2Device:
    node: Path  # /dev/videoN
    name: str  # what the driver calls it (sysfs "name"), e.g. "HD Pro Webcam C920"
    index: int  # 0: the capture node of a UVC camera
    by_id: tuple[str, ...] = ()  # stable udev names pointing at this node

    @property
    def label(self) -> str:
        return self.by_id[0] if self.by_id else self.node.name


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def list_devices(
    sysfs_root: Path = SYSFS_ROOT, by_id_dir: Path = BY_ID_DIR, dev_dir: Path = DEV_DIR
) -> list[V4l2Device]:
    """Every video4linux node, capture nodes first, with its by-id names."""
    aliases: dict[str, list[str]] = {}
    if by_id_dir.is_dir():
        for link in sorted(by_id_dir.iterdir()):
            try:
                target = os.readlink(link)
            except OSError:
                continue
            aliases.setdefault(Path(target).name, []).append(link.name)
    devices = []
    if sysfs_root.is_dir():
        for entry in sorted(sysfs_root.iterdir(), key=lambda p: (len(p.name), p.name)):
            if not entry.name.startswith("video"):
                continue
            index = _read(entry / "index")
            devices.append(
                V4l2Device(
                    node=dev_dir / entry.name,
                    name=_read(entry / "name") or "",
                    index=int(index) if index and index.isdigit() else 0,
                    by_id=tuple(aliases.get(entry.name, ())),
                )
            )
    return sorted(devices, key=lambda d: d.index)


def find_device(
    wanted: str,
    sysfs_root: Path = SYSFS_ROOT,
    by_id_dir: Path = BY_ID_DIR,
    dev_dir: Path = DEV_DIR,
) -> V4l2Device | None:
    """The capture device named ``wanted``: a by-id name, a ``/dev/videoN`` path, the driver's
    name, or ``auto`` (the first capture node). None when it is not plugged in."""
    devices = list_devices(sysfs_root, by_id_dir, dev_dir)
    for device in devices:
        if wanted in device.by_id or wanted in (str(device.node), device.node.name):
            return device
    capture = [d for d in devices if d.index == 0]
    if wanted == "auto":
        return capture[0] if capture else None
    named = [d for d in capture if d.name == wanted]
    return named[0] if named else None
