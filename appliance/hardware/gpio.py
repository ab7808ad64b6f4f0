"""The box's GPIO devices behind small interfaces, implemented with gpiozero.

Pins come from the hardware profile's ``gpio`` section (``firmware_configs/<model>/profile.yaml``,
BCM numbers). gpiozero picks its pin factory from ``GPIOZERO_PIN_FACTORY`` (``lgpio`` on a Pi 5;
tests install ``MockFactory(revision="d04170")``), so nothing here knows which one runs.

gpiozero calls its callbacks on its own threads; :class:`GpioTamperSwitch` hands each change to
the event loop with ``loop.call_soon_threadsafe`` so the box's async code sees it in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Buzzer",
    "GpioBuzzer",
    "GpioPins",
    "GpioStatusLED",
    "GpioSwitch",
    "GpioTamperSwitch",
    "GpioUnavailable",
    "Illuminator",
    "PowerRelay",
    "StatusLED",
    "TamperSwitch",
]

logger = logging.getLogger(__name__)


class GpioUnavailable(RuntimeError):
    """The pins cannot be driven here (no GPIO chip, pin in use, no pin library)."""


class GpioPins(BaseModel):
    """The ``gpio`` section of a hardware profile (BCM pin numbers; absent = not fitted)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pin_factory: str | None = Field(default=None, description="gpiozero pin factory (lgpio).")
    status_led: int | None = Field(default=None, ge=0, le=53, description="Status light.")
    buzzer: int | None = Field(default=None, ge=0, le=53, description="Buzzer.")
    illuminator: int | None = Field(default=None, ge=0, le=53, description="IR lamp enable.")
    illuminator_active_low: bool = Field(default=False, description="Lamp on when pin is low.")
    relay: int | None = Field(default=None, ge=0, le=53, description="Power relay coil.")
    relay_active_low: bool = Field(
        default=False, description="Relay boards with opto-isolated inputs switch on low."
    )
    tamper_switch: int | None = Field(
        default=None,
        ge=0,
        le=53,
        description="Enclosure switch: closed (pin to ground) when shut; open = tampered.",
    )
    gps_serial: str | None = Field(default=None, description="NMEA receiver device.")
    gps_baud: int = Field(default=9600, gt=0, description="NMEA receiver baud rate.")


def choose_pin_factory(name: str | None) -> None:
    """Choose the profile's pin factory unless one is set already.

    gpiozero's documented way is the environment variable; a variable already set (tests use
    ``mock``) or a factory already installed (``MockFactory`` in tests) wins over the profile.
    """
    from gpiozero import Device

    if name and Device.pin_factory is None:
        os.environ.setdefault("GPIOZERO_PIN_FACTORY", str(name))


def use_pin_factory(pins: GpioPins) -> None:
    """Choose the profile's pin factory unless one is set already (tests set ``mock``)."""
    choose_pin_factory(pins.pin_factory)


def _claim(make: Callable[[], Any], what: str, pin: int) -> Any:
    from gpiozero.exc import BadPinFactory, GPIOZeroError

    try:
        return make()
    except (BadPinFactory, GPIOZeroError, ImportError, OSError) as err:
        raise GpioUnavailable(f"{what} on GPIO{pin}: {err}") from err


# -- interfaces -------------------------------------------------------------------------------


@runtime_checkable
class Switch(Protocol):
    """Something the box turns on and off."""

    @property
    def is_on(self) -> bool: ...

    def on(self) -> None: ...

    def off(self) -> None: ...

    def close(self) -> None: ...


class Illuminator(Switch, Protocol):
    """The IR lamp that lets the camera read plates at night."""


class PowerRelay(Switch, Protocol):
    """A relay switching a load's supply (on a trailer: the IR lamp's 12 V feed)."""


class StatusLED(Switch, Protocol):
    def blink(self, on_time: float, off_time: float, n: int | None) -> None: ...


class Buzzer(Protocol):
    def beep(self, on_time: float, off_time: float, n: int | None) -> None: ...

    def close(self) -> None: ...


class TamperSwitch(Protocol):
    """The enclosure's switch; ``watch`` calls back on the event loop with ``is_open``."""

    @property
    def is_open(self) -> bool: ...

    def watch(self, loop: asyncio.AbstractEventLoop, callback: Callable[[bool], None]) -> None: ...

    def close(self) -> None: ...


# -- gpiozero implementations -----------------------------------------------------------------


class GpioSwitch:
    """A digital output (illuminator enable, relay coil) that starts off."""

    def __init__(self, pin: int, *, active_low: bool = False, what: str = "switch") -> None:
        from gpiozero import DigitalOutputDevice

        self.pin = pin
        self.what = what
        self._device = _claim(
            lambda: DigitalOutputDevice(pin, active_high=not active_low, initial_value=False),
            what,
            pin,
        )

    @property
    def is_on(self) -> bool:
        return bool(self._device.value)

    def on(self) -> None:
        self._device.on()

    def off(self) -> None:
        self._device.off()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._device.off()  # a lamp left on would drain a trailer's battery overnight
        self._device.close()


class GpioStatusLED:
    def __init__(self, pin: int) -> None:
        from gpiozero import LED

        self.pin = pin
        self._device = _claim(lambda: LED(pin), "status light", pin)

    @property
    def is_on(self) -> bool:
        return bool(self._device.is_lit)

    def on(self) -> None:
        self._device.on()

    def off(self) -> None:
        self._device.off()

    def blink(self, on_time: float, off_time: float, n: int | None) -> None:
        self._device.blink(on_time=on_time, off_time=off_time, n=n, background=True)

    def close(self) -> None:
        self._device.close()


class GpioBuzzer:
    def __init__(self, pin: int) -> None:
        from gpiozero import Buzzer as _Buzzer

        self.pin = pin
        self._device = _claim(lambda: _Buzzer(pin), "buzzer", pin)

    def beep(self, on_time: float, off_time: float, n: int | None) -> None:
        self._device.beep(on_time=on_time, off_time=off_time, n=n, background=True)

    def close(self) -> None:
        self._device.close()


class GpioTamperSwitch:
    """A normally-closed enclosure switch to ground with the pin's pull-up.

    Shut: the switch pulls the pin low (gpiozero "pressed"). Opened, or its wire cut: the
    pull-up takes the pin high, so a cut wire raises the alarm too.
    """

    def __init__(self, pin: int, *, bounce_time: float | None = 0.05) -> None:
        from gpiozero import Button

        self.pin = pin
        self._device = _claim(
            lambda: Button(pin, pull_up=True, bounce_time=bounce_time), "tamper switch", pin
        )

    @property
    def is_open(self) -> bool:
        return not self._device.is_pressed

    def watch(self, loop: asyncio.AbstractEventLoop, callback: Callable[[bool], None]) -> None:
        def changed(is_open: bool) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed while shutting down
                loop.call_soon_threadsafe(callback, is_open)

        self._device.when_released = lambda: changed(True)
        self._device.when_pressed = lambda: changed(False)

    def close(self) -> None:
        self._device.when_released = None
        self._device.when_pressed = None
        self._device.close()
