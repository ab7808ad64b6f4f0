"""Battery and solar readings from hwmon-style files.

On a trailer an INA219 (or INA226) current monitor sits on I2C; Linux's ``ina2xx`` driver shows
it under ``/sys/class/hwmon/hwmonN/`` as integers: ``in1_input`` bus voltage in mV,
``curr1_input`` current in mA, ``power1_input`` power in µW. Reading those files (with a scale
to volts, amps, watts) covers that chip, an ADC behind ``iio``, or a charge controller's daemon
writing a file, and lets tests feed values through an ordinary file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SensorReading", "SensorSettings", "SysfsSensor"]

logger = logging.getLogger(__name__)


class SensorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="File holding one number (hwmon, iio or a daemon's file).")
    scale: float = Field(default=1.0, description="Multiplier to the unit (mV -> V: 0.001).")
    unit: str = Field(default="", max_length=8, description="Unit shown with the value.")
    low: float | None = Field(default=None, description="Below this the box is degraded.")


@dataclass(frozen=True, slots=True)
class SensorReading:
    name: str
    value: float | None
    unit: str
    error: str | None = None
    low: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": None if self.value is None else round(self.value, 3),
            "unit": self.unit,
            "error": self.error,
            "low": self.low,
        }


class SysfsSensor:
    def __init__(self, name: str, settings: SensorSettings) -> None:
        self.name = name
        self.settings = settings
        self._failing = False

    def _path(self) -> Path:
        """The file; a ``*`` matches the ``hwmonN`` number, which changes between boots."""
        path = self.settings.path
        if "*" not in str(path):
            return path
        matches = sorted(Path("/").glob(str(path).lstrip("/")))
        if not matches:
            raise FileNotFoundError(2, f"nothing matches {path}")
        return matches[0]

    def read(self) -> SensorReading:
        """One reading; a missing or garbled file is an error in the reading, never a raise."""
        s = self.settings
        try:
            raw = self._path().read_text().split()[0]
            value = float(raw) * s.scale
        except (OSError, IndexError, ValueError) as err:
            why = getattr(err, "strerror", None) or f"unreadable value ({type(err).__name__})"
            if not self._failing:  # once per outage, not once per poll
                logger.warning("Sensor '%s' (%s) cannot be read: %s", self.name, s.path, why)
                self._failing = True
            return SensorReading(self.name, None, s.unit, str(why))
        if self._failing:
            logger.info("Sensor '%s' readable again", self.name)
            self._failing = False
        return SensorReading(self.name, value, s.unit, None, s.low is not None and value < s.low)
