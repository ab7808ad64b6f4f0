"""alprbox camera plugin: USB (UVC) cameras through V4L2, chosen by their stable by-id name."""

from .devices import V4l2Device, find_device, list_devices
from .plugin import UsbCamera, UsbSettings
from .sources import ImageFolderSource, MjpegPipeSource, V4l2Source

__all__ = [
    "ImageFolderSource",
    "MjpegPipeSource",
    "UsbCamera",
    "UsbSettings",
    "V4l2Device",
    "V4l2Source",
    "find_device",
    "list_devices",
]
