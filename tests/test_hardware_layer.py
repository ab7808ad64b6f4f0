"""The box's hardware layer: GPIO devices on gpiozero's own mock pins (a Pi 5), the lamp's
schedule and light-level control on a fake clock, battery readings from hwmon-style files, the
uplink monitor, and the tamper alarm audited by the real appliance."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from gpiozero.pins.mock import MockPin

from appliance._web.app import create_app
from appliance.hardware import (
    GpioBuzzer,
    GpioPins,
    GpioStatusLED,
    GpioSwitch,
    GpioTamperSwitch,
    LightController,
    LightSettings,
    SensorSettings,
    SysfsSensor,
    UplinkMonitor,
    UplinkSettings,
    mean_luminance,
)
from appliance.testing import FakeClock

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware_configs"
TRAILER_PINS = yaml.safe_load((FIRMWARE / "trailer-solar" / "profile.yaml").read_text())["gpio"]


class SwitchPin(MockPin):  # type: ignore[misc]
    """A mock input wired to a switch to ground: while the switch is shut, the pin's pull-up
    cannot raise it (a plain MockPin goes high as soon as gpiozero sets the pull-up)."""

    shut = True

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        if self.shut:
            self.drive_low()

    def open_switch(self) -> None:
        self.shut = False
        self.drive_high()

    def shut_switch(self) -> None:
        self.shut = True
        self.drive_low()


def tamper_pin(factory: Any, number: int) -> SwitchPin:
    pin: SwitchPin = factory.pin(number, pin_class=SwitchPin)
    return pin


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    for _ in range(int(limit / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


PROFILES = sorted(FIRMWARE.glob("*/profile.yaml"))


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.parent.name)
def test_every_profile_names_valid_pins(profile: Path) -> None:
    gpio = yaml.safe_load(profile.read_text()).get("gpio") or {}
    pins = GpioPins.model_validate(gpio)
    used = [p for p in (pins.status_led, pins.buzzer, pins.illuminator, pins.relay,
                        pins.tamper_switch) if p is not None]
    assert len(used) == len(set(used)), "two devices on one pin"


def test_unknown_gpio_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="illuminater"):
        GpioPins.model_validate({"illuminater": 17})


# -- GPIO devices on mock pins ---------------------------------------------------------------------


def test_illuminator_and_active_low_relay_drive_their_pins(mock_pins: Any) -> None:
    lamp = GpioSwitch(17, what="illuminator")
    relay = GpioSwitch(27, active_low=True, what="relay")
    try:
        assert not lamp.is_on and not relay.is_on
        assert mock_pins.pin(17).state is False
        assert mock_pins.pin(27).state is True  # off on an active-low relay board is high
        lamp.on()
        relay.on()
        assert mock_pins.pin(17).state is True and mock_pins.pin(27).state is False
        assert lamp.is_on and relay.is_on
    finally:
        lamp.close()
        relay.close()
    assert mock_pins.pin(17).state is False  # closed means off: no lamp left burning


def test_a_pin_in_use_is_a_clear_error(mock_pins: Any) -> None:
    from appliance.hardware import GpioUnavailable

    first = GpioSwitch(17)
    try:
        with pytest.raises(GpioUnavailable, match="GPIO17"):
            GpioSwitch(17, what="illuminator")
    finally:
        first.close()


def test_status_led_and_buzzer(mock_pins: Any) -> None:
    led, buzzer = GpioStatusLED(23), GpioBuzzer(24)
    try:
        led.on()
        assert led.is_on and mock_pins.pin(23).state is True
        led.off()
        buzzer.beep(0.01, 0.01, 1)
        for _ in range(100):
            if len(mock_pins.pin(24).states) >= 3:
                break
            import time

            time.sleep(0.01)
        assert [s.state for s in mock_pins.pin(24).states][:3] == [False, True, False]
    finally:
        led.close()
        buzzer.close()


async def test_tamper_switch_reports_on_the_event_loop(mock_pins: Any) -> None:
    pin = tamper_pin(mock_pins, 22)  # enclosure shut: the switch holds the pin to ground
    switch = GpioTamperSwitch(22, bounce_time=None)
    seen: list[bool] = []
    loop = asyncio.get_running_loop()
    switch.watch(loop, seen.append)
    try:
        assert not switch.is_open
        pin.open_switch()  # door opened (or the wire cut: the pull-up wins)
        await until(lambda: seen == [True])
        assert switch.is_open
        pin.shut_switch()
        await until(lambda: seen == [True, False])
    finally:
        switch.close()


# -- lamp control ----------------------------------------------------------------------------------


class Lamp:
    def __init__(self) -> None:
        self.is_on = False
        self.log: list[str] = []

    def on(self) -> None:
        self.is_on = True
        self.log.append(f"{self.name} on")

    def off(self) -> None:
        self.is_on = False
        self.log.append(f"{self.name} off")

    def close(self) -> None:
        pass

    name = "lamp"


def controller(mode: str = "auto", **kw: Any) -> tuple[LightController, Lamp, Lamp, FakeClock]:
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))  # noon UTC
    lamp, relay = Lamp(), Lamp()
    relay.name = "relay"
    relay.log = lamp.log  # one log: the order of switching matters
    settings = LightSettings(mode=mode, night="19:00-07:00", min_switch_seconds=60, **kw)
    return LightController(settings, lamp, relay, clock), lamp, relay, clock


def test_schedule_lamp_on_at_night_off_by_day_with_relay_first() -> None:
    ctl, lamp, relay, clock = controller("schedule")
    assert ctl.update() is False and not lamp.is_on
    clock.advance(8 * 3600)  # 20:00
    assert ctl.update() is True and lamp.is_on and relay.is_on
    assert lamp.log[-2:] == ["relay on", "lamp on"]  # supply before enable
    clock.advance(12 * 3600)  # 08:00 next day
    assert ctl.update() is False and not lamp.is_on and not relay.is_on
    assert lamp.log[-2:] == ["lamp off", "relay off"]


def test_schedule_in_local_time() -> None:
    ctl, _lamp, _, _clock = controller("schedule", timezone="America/Los_Angeles")
    # 12:00 UTC is 05:00 in Los Angeles in June: still night there.
    assert ctl.update() is True


def test_light_level_with_hysteresis_and_no_flicker() -> None:
    ctl, _lamp, _, clock = controller("auto", dark_below=40, bright_above=110)
    ctl.observe(200.0)
    assert ctl.update() is False  # bright noon
    clock.advance(120)
    ctl.observe(20.0)  # dusk
    assert ctl.update() is True and ctl.reason == "dark"
    clock.advance(10)
    ctl.observe(80.0)  # the lamp lights the scene up: between thresholds, stays on
    assert ctl.update() is True and "hysteresis" in ctl.reason
    ctl.observe(150.0)  # a headlight, 10 s after switching on: too soon to switch
    assert ctl.update() is True
    clock.advance(120)
    assert ctl.update() is False  # still bright two minutes later: day
    assert ctl.switches == 2


def test_without_a_light_level_auto_falls_back_to_the_schedule() -> None:
    ctl, _lamp, _, clock = controller("auto")
    ctl.observe(None)
    clock.advance(9 * 3600)  # 21:00
    assert ctl.update() is True and ctl.reason == "night schedule"


def test_mean_luminance() -> None:
    assert mean_luminance(np.zeros((480, 640, 3), np.uint8)) == 0
    assert mean_luminance(np.full((480, 640, 3), 255, np.uint8)) == pytest.approx(255, abs=0.1)
    green = np.zeros((100, 100, 3), np.uint8)
    green[..., 1] = 100
    assert mean_luminance(green) == pytest.approx(58.7, abs=0.1)


# -- sensors and uplink ---------------------------------------------------------------------------


def test_hwmon_style_battery_reading(tmp_path: Path) -> None:
    path = tmp_path / "in1_input"
    sensor = SysfsSensor("battery", SensorSettings(path=path, scale=0.001, unit="V", low=11.8))
    assert sensor.read().error is not None  # missing file: an error in the reading, no raise
    path.write_text("12640\n")
    reading = sensor.read()
    assert (reading.value, reading.unit, reading.low) == (12.64, "V", False)
    path.write_text("11500\n")
    assert sensor.read().low is True
    path.write_text("garbage\n")
    assert sensor.read().value is None


async def test_uplink_reachable_then_not() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monitor = UplinkMonitor(UplinkSettings(host="127.0.0.1", port=port, timeout_seconds=2),
                            FakeClock())
    assert await monitor.check() is True
    assert monitor.status()["state"] == "reachable"
    server.close()
    await server.wait_closed()
    assert await monitor.check() is False
    assert monitor.status()["state"] == "unreachable" and monitor.status()["error"]


# -- the real appliance: tamper alarm audited, status in /healthz ---------------------------------


def trailer_config(tmp_path: Path, **devices: Any) -> dict[str, Any]:
    battery = tmp_path / "in1_input"
    battery.write_text("12800\n")
    return {
        "hardware": "trailer-solar",
        "devices": {
            "gps": "none",
            "sensors": {"battery": {"path": str(battery), "scale": 0.001, "unit": "V",
                                    "low": 11.8}},
            **devices,
        },
    }


async def test_tamper_alarm_is_audited_and_shown_in_healthz(
    mock_pins: Any, appliance_host: Any, tmp_path: Path
) -> None:
    tamper = tamper_pin(mock_pins, TRAILER_PINS["tamper_switch"])  # shut
    async with appliance_host(config=trailer_config(tmp_path)) as box:
        assert box.hardware is not None
        client = TestClient(TestServer(create_app(box)))
        await client.start_server()
        try:
            health = await (await client.get("/healthz")).json()
            assert health["status"] == "ok", health
            assert health["hardware"]["tamper"]["state"] == "closed"
            assert health["hardware"]["illuminator"] == "off"
            await until(lambda: "battery" in box.hardware.readings)
            health = await (await client.get("/healthz")).json()
            assert health["hardware"]["sensors"]["battery"]["value"] == 12.8

            tamper.open_switch()  # someone opens the cabinet
            await until(lambda: box.hardware.tamper_open)
            events: list[dict[str, Any]] = []
            for _ in range(100):
                events = await box.store.events(kind="hardware.tamper")
                if events:
                    break
                await asyncio.sleep(0.02)
            assert [e["detail"]["state"] for e in events] == ["open"]
            assert events[0]["actor"] == "hardware"
            assert events[0]["detail"]["pin"] == TRAILER_PINS["tamper_switch"]
            health = await (await client.get("/healthz")).json()
            assert health["status"] == "degraded"
            assert health["hardware"]["tamper"] == {"state": "open", "alarms": 1}
            assert "tamper switch open" in health["hardware"]["attention"]
            metrics = box.metrics.render().decode()
            assert "alprbox_tamper_open 1.0" in metrics
            assert "alprbox_tamper_alarms_total 1.0" in metrics
            assert "alprbox_illuminator_on 0.0" in metrics
            assert 'alprbox_sensor_value{sensor="battery",unit="V"} 12.8' in metrics

            tamper.shut_switch()
            await until(lambda: not box.hardware.tamper_open)
        finally:
            await client.close()


async def test_tamper_closing_is_recorded_before_the_store_closes(
    mock_pins: Any, tmp_path: Path
) -> None:
    from appliance.testing import make_appliance

    tamper = tamper_pin(mock_pins, TRAILER_PINS["tamper_switch"])
    tamper.shut = False  # opened while the box was off: an alarm at start
    data = tmp_path / "box"
    async with make_appliance(data, config=trailer_config(tmp_path)) as box:
        await until(lambda: box.hardware is not None and box.hardware.tamper_open)
        tamper.shut_switch()
        await until(lambda: not box.hardware.tamper_open)
    async with make_appliance(data, config=trailer_config(tmp_path)) as box:
        events = await box.store.events(kind="hardware.tamper", oldest_first=True)
        assert [e["detail"]["state"] for e in events] == ["open", "closed"]


async def test_low_battery_and_missing_gps_make_the_box_degraded(
    mock_pins: Any, appliance_host: Any, tmp_path: Path
) -> None:
    tamper_pin(mock_pins, TRAILER_PINS["tamper_switch"])
    config = trailer_config(tmp_path, gps=str(tmp_path / "no-such-tty"))
    (tmp_path / "in1_input").write_text("11200\n")
    async with appliance_host(config=config) as box:
        await until(lambda: "battery" in box.hardware.readings)
        await until(lambda: box.hardware.gps is not None and box.hardware.gps.error is not None)
        attention = box.hardware.degraded()
        assert "sensor battery low" in attention
        assert "gps unavailable" in attention


async def test_a_box_without_gpio_runs_on(appliance_host: Any, tmp_path: Path) -> None:
    # The trailer profile on a machine with no GPIO chip (no mock pins, lgpio absent): the
    # devices are problems shown in the status, the box and its console keep running.
    env = os.environ.get("GPIOZERO_PIN_FACTORY")
    from gpiozero import Device

    if Device.pin_factory is not None or env == "mock":
        pytest.skip("a pin factory is already installed in this process")
    async with appliance_host(config=trailer_config(tmp_path)) as box:
        assert box.hardware is not None
        assert any("GPIO" in p for p in box.hardware.problems)
        assert "tamper" in box.hardware.status() and box.hardware.degraded()
        assert box.store is not None and await box.store.count_reads() == 0


async def test_live_page_shows_the_box_hardware(
    mock_pins: Any, aiohttp_client: Any, tmp_path: Path
) -> None:
    from console_fixtures import login, running_appliance

    tamper = tamper_pin(mock_pins, TRAILER_PINS["tamper_switch"])
    closed_port = UplinkSettings(host="127.0.0.1", port=9).port  # discard: nothing listens
    extra = (
        "hardware: trailer-solar\n"
        f"devices: {{gps: none, uplink: {{host: 127.0.0.1, port: {closed_port}, "
        "interval_seconds: 0.1, timeout_seconds: 1}}\n"
    )
    async with running_appliance(tmp_path / "data", extra) as box:
        assert box.hardware is not None and box.first_admin is not None
        client = await aiohttp_client(create_app(box))
        response = await login(client, box.first_admin.username, box.first_admin.password)
        assert response.status == 303
        tamper.open_switch()
        await until(lambda: box.hardware.tamper_open)
        await until(lambda: box.hardware.uplink is not None and box.hardware.uplink.checks > 0)
        html = await (await client.get("/")).text()
        assert "Box hardware" in html
        assert "Tamper switch" in html and "open (1 alarms since start)" in html
        assert "Uplink" in html and "unreachable" in html and "forwarded when it is back" in html
        assert "Illuminator" in html


def test_a_bad_devices_section_names_its_line() -> None:
    from appliance._config import parse_config
    from appliance._plugins import create_plugin_host
    from appliance.errors import ConfigError
    from appliance.testing import FAKES

    text = (
        "recognition: {type: fake}\n"
        "devices:\n"
        "  gps: /dev/ttyUSB0\n"
        "  gps_max_fix_age_seconds: -1\n"
        "  uplink: {host: minio.city.example, prot: 443}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "site.yaml", create_plugin_host(discover=False, plugins=[FAKES]))
    problems = "\n".join(caught.value.problems)
    assert "site.yaml:4: devices.gps_max_fix_age_seconds" in problems
    assert "site.yaml:5: devices.uplink" in problems and "prot" in problems


@pytest.mark.hardware
@pytest.mark.skipif(not Path("/dev/gpiochip0").exists(), reason="no GPIO chip here")
def test_a_real_pi_drives_the_illuminator_pin() -> None:
    pins = GpioPins.model_validate(TRAILER_PINS)
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", pins.pin_factory or "lgpio")
    lamp = GpioSwitch(pins.illuminator or 17, what="illuminator")
    try:
        lamp.on()
        assert lamp.is_on
        lamp.off()
        assert not lamp.is_on
    finally:
        lamp.close()
