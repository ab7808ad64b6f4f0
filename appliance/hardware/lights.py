"""When the IR illuminator (and the relay feeding its lamp) should be on.

Plates at night need infrared; an IR lamp left on all day drains a solar trailer's battery. The
lamp follows the light level when there is one (the camera frames' mean luminance, or a light
sensor's reading) with hysteresis and a minimum time between switches, so dusk or a passing
headlight does not make it flicker; without a light level (no frames yet, sensor broken) it
follows the night schedule. The relay feeds the lamp's 12 V supply: it closes before the lamp is
enabled and opens after the lamp is disabled.

An IR-lit scene is brighter than a dark one, so the "bright" threshold must sit above what the
camera sees under its own lamp (a light sensor facing the sky avoids that loop entirely).
"""

from __future__ import annotations

import logging
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..base import Clock
from .gpio import Switch

__all__ = ["LightController", "LightSettings", "mean_luminance"]

logger = logging.getLogger(__name__)


def _window(text: str) -> tuple[time, time]:
    start, sep, end = text.partition("-")
    try:
        if not sep:
            raise ValueError
        return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a window like 19:00-07:00 (HH:MM-HH:MM)") from None


class LightSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["auto", "schedule", "light", "on", "off"] = Field(
        default="auto",
        description="auto: light level when known, else the night schedule; schedule; light; "
        "on; off.",
    )
    night: str = Field(
        default="19:00-07:00", description="Night schedule, HH:MM-HH:MM local time."
    )
    timezone: str = Field(default="UTC", description="IANA time zone of the night schedule.")
    dark_below: float = Field(
        default=40.0, ge=0, description="Light level below which the lamp turns on."
    )
    bright_above: float = Field(
        default=110.0, ge=0, description="Light level above which the lamp turns off."
    )
    min_switch_seconds: float = Field(
        default=120.0, ge=0, description="Least time between two switches of the lamp."
    )

    @field_validator("night")
    @classmethod
    def _night(cls, value: str) -> str:
        _window(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except Exception as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value


def mean_luminance(image: Any) -> float:
    """Mean luma (BT.601, 0..255) of a BGR image, from a sparse grid of its pixels."""
    array = np.asarray(image)
    step = max(1, min(array.shape[0], array.shape[1]) // 64)
    sample = array[::step, ::step].astype(np.float32)
    return float((sample[..., 0] * 0.114 + sample[..., 1] * 0.587 + sample[..., 2] * 0.299).mean())


class LightController:
    def __init__(
        self,
        settings: LightSettings,
        illuminator: Switch | None,
        relay: Switch | None,
        clock: Clock,
        *,
        label: str = "illuminator",
    ) -> None:
        self.settings = settings
        self.illuminator = illuminator
        self.relay = relay
        self._clock = clock
        self._zone = ZoneInfo(settings.timezone)
        self._night = _window(settings.night)
        self._label = label
        self.light_level: float | None = None
        self.lamp_on = False
        self.reason = "not decided yet"
        self._switched_at: float | None = None
        self.switches = 0

    def observe(self, level: float | None) -> None:
        """A new light level (None: the light source is unavailable)."""
        self.light_level = level

    def is_night(self, now: datetime) -> bool:
        local = now.astimezone(self._zone).time()
        start, end = self._night
        if start <= end:
            return start <= local < end
        return local >= start or local < end

    def decide(self) -> tuple[bool, str]:
        s = self.settings
        if s.mode in ("on", "off"):
            return s.mode == "on", f"mode {s.mode}"
        level = self.light_level
        if s.mode != "schedule" and level is not None:
            if level < s.dark_below:
                return True, "dark"
            if level > s.bright_above:
                return False, "daylight"
            return self.lamp_on, "twilight (hysteresis)"
        if s.mode == "light":
            return self.lamp_on, "no light level"
        return (True, "night schedule") if self.is_night(self._clock.now()) else (
            False, "day schedule")

    def update(self) -> bool:
        """Switch the lamp (and its relay) as :meth:`decide` says; returns the lamp state."""
        want, reason = self.decide()
        self.reason = reason
        if want == self.lamp_on and self._switched_at is not None:
            return self.lamp_on
        now = self._clock.monotonic()
        forced = self.settings.mode in ("on", "off") or self._switched_at is None
        if not forced and now - (self._switched_at or now) < self.settings.min_switch_seconds:
            return self.lamp_on  # too soon after the last switch: no flicker at dusk
        self._switch(want)
        self._switched_at = now
        return self.lamp_on

    def _switch(self, on: bool) -> None:
        if on:
            if self.relay is not None:
                self.relay.on()
            if self.illuminator is not None:
                self.illuminator.on()
        else:
            if self.illuminator is not None:
                self.illuminator.off()
            if self.relay is not None:
                self.relay.off()
        if on != self.lamp_on:
            self.switches += 1
            logger.info("%s %s (%s)", self._label, "on" if on else "off", self.reason)
        self.lamp_on = on

    def status(self) -> dict[str, Any]:
        return {
            "lamp": "on" if self.lamp_on else "off",
            "relay": None if self.relay is None else ("on" if self.relay.is_on else "off"),
            "light_level": None if self.light_level is None else round(self.light_level, 1),
            "reason": self.reason,
            "switches": self.switches,
        }
