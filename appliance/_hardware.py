"""Signals on the box itself: the alert buzzer and status light (devices: appliance/hardware).

A box without a screen (a pole, a trailer) signals an alert with its buzzer and status light,
driven through gpiozero with the pins named in the hardware profile (``firmware_configs/``).
Covert alerts are never signalled at the box: a buzzer at the roadside would tell everyone what
only privileged roles may see.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ._hotlist.alerts import Alert
from ._pipeline.bus import Bus
from .hardware.gpio import (
    Buzzer,
    GpioBuzzer,
    GpioStatusLED,
    GpioUnavailable,
    StatusLED,
    choose_pin_factory,
)

logger = logging.getLogger(__name__)


class AlertSignal:
    """Beeps the buzzer and blinks the status light for each alert raised."""

    def __init__(self, gpio: dict[str, Any]) -> None:
        # The devices are the hardware layer's (appliance/hardware/gpio.py): one place that
        # talks to gpiozero, with one way of saying a pin cannot be used.
        self.buzzer: Buzzer | None = None
        self.light: StatusLED | None = None
        choose_pin_factory(gpio.get("pin_factory"))
        try:
            if gpio.get("buzzer") is not None:
                self.buzzer = GpioBuzzer(int(gpio["buzzer"]))
            if gpio.get("status_led") is not None:
                self.light = GpioStatusLED(int(gpio["status_led"]))
        except GpioUnavailable as err:
            self.close()
            raise RuntimeError(f"GPIO unavailable: {err}") from err
        self.signalled = 0

    def signal(self, alert: Alert) -> None:
        if alert.covert:
            return
        self.signalled += 1
        if self.buzzer is not None:
            self.buzzer.beep(on_time=0.15, off_time=0.15, n=3)
        if self.light is not None:
            self.light.blink(on_time=0.25, off_time=0.25, n=6)

    async def run(self, bus: Bus[Alert]) -> None:
        queue = bus.subscribe()
        try:
            while True:
                self.signal(await queue.get())
        finally:
            bus.unsubscribe(queue)

    def close(self) -> None:
        for device in (self.buzzer, self.light):
            if device is not None:
                device.close()
        self.buzzer = self.light = None


def start_alert_signal(
    gpio: dict[str, Any], bus: Bus[Alert]
) -> tuple[AlertSignal, asyncio.Task[None]] | None:
    """Start signalling alerts if the hardware profile names a buzzer or status light."""
    if gpio.get("buzzer") is None and gpio.get("status_led") is None:
        return None
    try:
        signal = AlertSignal(gpio)
    except RuntimeError as err:
        # A Pi profile on a machine without GPIO: the console still shows alerts.
        logger.warning("Alerts will not be signalled on the box: %s", err)
        return None
    return signal, asyncio.create_task(signal.run(bus), name="alert-signal")
