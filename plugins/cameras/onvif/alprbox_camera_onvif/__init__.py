"""alprbox camera plugin for ONVIF IP cameras (Profile S), built on onvif-zeep-async."""

from .device import MediaProfile, choose_profile
from .discovery import DiscoveredDevice, discover
from .events import CameraEvent
from .plugin import OnvifCamera, OnvifSettings

__all__ = [
    "CameraEvent",
    "DiscoveredDevice",
    "MediaProfile",
    "OnvifCamera",
    "OnvifSettings",
    "choose_profile",
    "discover",
]
