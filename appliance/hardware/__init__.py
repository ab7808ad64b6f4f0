"""The box's hardware behind small interfaces: GPIO devices, GPS, sensors, uplink.

The only package (with ``appliance._hardware``, the alert buzzer and light) that imports
gpiozero. Camera plugins reach the box's devices through ``PluginContext.hardware``
(a :class:`BoxHardware`, or None where the box has none): its ``gps.current()`` fix, and the
``illuminator`` and ``relay`` switches a :class:`LightController` drives.
"""

from __future__ import annotations

from .box import BoxHardware, DeviceSettings
from .gpio import (
    Buzzer,
    GpioBuzzer,
    GpioPins,
    GpioStatusLED,
    GpioSwitch,
    GpioTamperSwitch,
    GpioUnavailable,
    Illuminator,
    PowerRelay,
    StatusLED,
    Switch,
    TamperSwitch,
)
from .gps import GpsdGps, GpsReceiver, NmeaGps, open_gps
from .lights import LightController, LightSettings, mean_luminance
from .sensors import SensorReading, SensorSettings, SysfsSensor
from .uplink import UplinkMonitor, UplinkSettings

__all__ = [
    "BoxHardware",
    "Buzzer",
    "DeviceSettings",
    "GpioBuzzer",
    "GpioPins",
    "GpioStatusLED",
    "GpioSwitch",
    "GpioTamperSwitch",
    "GpioUnavailable",
    "GpsReceiver",
    "GpsdGps",
    "Illuminator",
    "LightController",
    "LightSettings",
    "NmeaGps",
    "PowerRelay",
    "SensorReading",
    "SensorSettings",
    "StatusLED",
    "Switch",
    "SysfsSensor",
    "TamperSwitch",
    "UplinkMonitor",
    "UplinkSettings",
    "mean_luminance",
    "open_gps",
]
