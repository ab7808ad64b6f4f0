"""The box's own devices, run by the appliance: tamper switch, GPS, lamp outputs, sensors, uplink.

The appliance owns them (not a camera plugin) because they belong to the enclosure, not to a
camera, and because a tamper alarm must reach the audit trail, which plugins cannot touch. Camera
plugins get at the parts they need (the GPS fix, the lamp and its relay) through
``PluginContext.hardware``, a :class:`BoxHardware`.

Nothing here stops the box: a pin that cannot be claimed or a GPS that is not there is a
problem shown in the console and /healthz, and the cameras run on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..base import Clock
from .gpio import GpioPins, GpioSwitch, GpioTamperSwitch, GpioUnavailable, Switch, TamperSwitch
from .gps import GpsReceiver, open_gps
from .sensors import SensorReading, SensorSettings, SysfsSensor
from .uplink import UplinkMonitor, UplinkSettings

__all__ = ["BoxHardware", "DeviceSettings"]

logger = logging.getLogger(__name__)

AuditFn = Callable[[str, dict[str, Any]], Awaitable[None]]


class DeviceSettings(BaseModel):
    """The site file's ``devices`` section: what the hardware profile cannot know."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gps: str | None = Field(
        default=None,
        description="GPS source: a serial device or file path, 'gpsd' or 'gpsd:HOST:PORT', or "
        "'none'. Default: the hardware profile's gps_serial.",
    )
    gps_baud: int | None = Field(default=None, gt=0, description="Serial baud rate override.")
    gps_max_fix_age_seconds: float = Field(
        default=10.0, gt=0, description="An older fix is stale: reads are stored without it."
    )
    sensors: dict[str, SensorSettings] = Field(
        default_factory=dict, description="Battery/solar readings, added to the profile's."
    )
    sensor_interval_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between sensor readings."
    )
    uplink: UplinkSettings | None = Field(
        default=None, description="Host and port whose reachability the console shows."
    )


class BoxHardware:
    def __init__(
        self,
        gpio: Mapping[str, Any],
        profile_sensors: Mapping[str, Any],
        settings: DeviceSettings,
        clock: Clock,
        audit: AuditFn,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._audit = audit
        self.problems: list[str] = []
        try:
            self.pins = GpioPins.model_validate(dict(gpio))
        except ValidationError as err:
            self.problems.append(f"gpio section of the hardware profile: {err}")
            self.pins = GpioPins()
        self.illuminator: Switch | None = None
        self.relay: Switch | None = None
        self.tamper: TamperSwitch | None = None
        self.tamper_open = False
        self.tamper_alarms = 0
        self.gps: GpsReceiver | None = None
        self.sensors: dict[str, SysfsSensor] = {}
        self.readings: dict[str, SensorReading] = {}
        self.uplink: UplinkMonitor | None = None
        self._reports: dict[str, Callable[[], dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._pending: set[asyncio.Task[None]] = set()
        sensors = dict(profile_sensors)
        sensors.update(settings.sensors)
        for name, value in sensors.items():
            try:
                self.sensors[name] = SysfsSensor(name, SensorSettings.model_validate(value))
            except ValidationError as err:
                self.problems.append(f"sensor '{name}': {err}")

    @property
    def fitted(self) -> bool:
        """Whether the box has anything this service runs (else it stays out of the status)."""
        p = self.pins
        return any(
            x is not None
            for x in (p.illuminator, p.relay, p.tamper_switch, self._gps_source(), self.uplink)
        ) or bool(self.sensors) or self.settings.uplink is not None

    def _gps_source(self) -> str | None:
        source = self.settings.gps if self.settings.gps is not None else self.pins.gps_serial
        return None if source in (None, "", "none") else source

    async def start(self) -> None:
        p = self.pins
        if any(x is not None for x in (p.illuminator, p.relay, p.tamper_switch)):
            from .gpio import use_pin_factory

            use_pin_factory(p)
        if p.illuminator is not None:
            self.illuminator = self._claim(
                lambda: GpioSwitch(p.illuminator or 0, active_low=p.illuminator_active_low,
                                   what="illuminator"))
        if p.relay is not None:
            self.relay = self._claim(
                lambda: GpioSwitch(p.relay or 0, active_low=p.relay_active_low, what="relay"))
        if p.tamper_switch is not None:
            self.tamper = self._claim(lambda: GpioTamperSwitch(p.tamper_switch or 0))
        if self.tamper is not None:
            self.tamper.watch(asyncio.get_running_loop(), self._on_tamper)
            if self.tamper.is_open:  # opened while the box was off or booting
                self._on_tamper(True)
        source = self._gps_source()
        if source is not None:
            self.gps = open_gps(
                source,
                self._clock,
                baud=self.settings.gps_baud or p.gps_baud,
                max_fix_age=self.settings.gps_max_fix_age_seconds,
            )
            self._run("gps", self.gps.run)
        if self.sensors:
            self._run("sensors", self._poll_sensors)
        if self.settings.uplink is not None:
            self.uplink = UplinkMonitor(self.settings.uplink, self._clock)
            self._run("uplink", self.uplink.run)

    def _run(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        async def guarded() -> None:
            try:
                await loop()
            except Exception as err:  # a bug: say so once, keep the rest of the box running
                logger.exception("Box hardware: the %s task stopped", name)
                self.problems.append(f"{name} stopped: {type(err).__name__}: {err}")

        self._tasks.append(asyncio.create_task(guarded(), name=f"hardware-{name}"))

    def _claim(self, make: Callable[[], Any]) -> Any:
        try:
            return make()
        except GpioUnavailable as err:
            self.problems.append(str(err))
            logger.warning("Box hardware: %s", err)
            return None

    # -- tamper ------------------------------------------------------------------------------

    def _on_tamper(self, is_open: bool) -> None:
        if is_open == self.tamper_open:
            return  # a bounce that gpiozero let through, or the start-up check repeating
        self.tamper_open = is_open
        if is_open:
            self.tamper_alarms += 1
            logger.warning("TAMPER: the enclosure switch opened (GPIO%s)", self.pins.tamper_switch)
        else:
            logger.info("Tamper switch closed again (GPIO%s)", self.pins.tamper_switch)
        detail = {
            "state": "open" if is_open else "closed",
            "pin": self.pins.tamper_switch,
            "at": self._clock.now().isoformat(),
        }
        task = asyncio.create_task(self._record("hardware.tamper", detail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _record(self, kind: str, detail: dict[str, Any]) -> None:
        try:
            await self._audit(kind, detail)
        except Exception:
            logger.exception("Could not record %s in the audit trail", kind)

    # -- sensors -----------------------------------------------------------------------------

    def read_sensors(self) -> dict[str, SensorReading]:
        self.readings = {name: sensor.read() for name, sensor in self.sensors.items()}
        return self.readings

    async def _poll_sensors(self) -> None:
        while True:
            await asyncio.to_thread(self.read_sensors)
            await asyncio.sleep(self.settings.sensor_interval_seconds)

    # -- for plugins and the console -----------------------------------------------------------

    def report(self, name: str, status: Callable[[], dict[str, Any]]) -> None:
        """Let a plugin add a part to the box's status (a trailer camera's lamp control)."""
        self._reports[name] = status

    def status(self) -> dict[str, Any]:
        """Device states for the console and /healthz; never a position."""
        out: dict[str, Any] = {"problems": list(self.problems)}
        if self.pins.tamper_switch is not None:
            out["tamper"] = {
                "state": "unavailable" if self.tamper is None
                else ("open" if self.tamper_open else "closed"),
                "alarms": self.tamper_alarms,
            }
        for name, device in (("illuminator", self.illuminator), ("relay", self.relay)):
            if device is not None:
                out[name] = "on" if device.is_on else "off"
        if self.gps is not None:
            out["gps"] = self.gps.status()
        if self.sensors:
            out["sensors"] = {n: r.as_dict() for n, r in self.readings.items()}
        if self.uplink is not None:
            out["uplink"] = self.uplink.status()
        for name, report in self._reports.items():
            try:
                out[name] = report()
            except Exception as err:  # a plugin's bug must not break /healthz
                out[name] = {"error": f"{type(err).__name__}: {err}"}
        return out

    def degraded(self) -> list[str]:
        """Why the box needs attention, in words for /healthz."""
        why = list(self.problems)
        if self.tamper_open:
            why.append("tamper switch open")
        if self.gps is not None and self.gps.state() == "unavailable":
            why.append("gps unavailable")
        why.extend(f"sensor {n} low" for n, r in self.readings.items() if r.low)
        if self.uplink is not None and self.uplink.reachable is False:
            why.append("uplink unreachable")
        return why

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pending:  # let a tamper event being recorded reach the audit trail
            await asyncio.gather(*self._pending, return_exceptions=True)
        for device in (self.illuminator, self.relay, self.tamper):
            if device is not None:
                with contextlib.suppress(Exception):
                    device.close()
