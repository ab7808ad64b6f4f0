"""alprbox: a self-hosted automated license plate reader appliance.

This module is the whole public API for plugin authors. Anything not exported here (in particular
everything under ``appliance._*``) may change without notice.
"""

from .base import (
    Camera,
    Clock,
    Delivery,
    Exporter,
    HotlistBatch,
    HotlistEntry,
    HotlistSource,
    PartnerQuery,
    PluginContext,
    Recipient,
    Recognizer,
    SystemClock,
)
from .capture import StreamCapture as StreamCapture  # public helper: appliance.capture
from .errors import (
    ApplianceError,
    AuthFailed,
    ConfigError,
    DeviceUnavailable,
    HotlistFormatError,
    PluginConfigError,
)
from .hookspecs import ENTRY_POINT_GROUP, hookimpl
from .models import Frame, Location, PlateCandidate, PlateDetection, PlateRead
from .settings import (
    CameraSettings,
    ExporterSettings,
    HotlistSourceSettings,
    PluginSettings,
    RecognizerSettings,
    Secret,
    SecretRef,
)

__version__ = "0.1.0"

__all__ = [
    "ENTRY_POINT_GROUP",
    "ApplianceError",
    "AuthFailed",
    "Camera",
    "CameraSettings",
    "Clock",
    "ConfigError",
    "Delivery",
    "DeviceUnavailable",
    "Exporter",
    "ExporterSettings",
    "Frame",
    "HotlistBatch",
    "HotlistEntry",
    "HotlistFormatError",
    "HotlistSource",
    "HotlistSourceSettings",
    "Location",
    "PartnerQuery",
    "PlateCandidate",
    "PlateDetection",
    "PlateRead",
    "PluginConfigError",
    "PluginContext",
    "PluginSettings",
    "Recipient",
    "Recognizer",
    "RecognizerSettings",
    "Secret",
    "SecretRef",
    "SystemClock",
    "__version__",
    "hookimpl",
]
