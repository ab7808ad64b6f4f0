"""Alerts signalled on the box through gpiozero, tested with gpiozero's own mock pins."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from appliance import PlateCandidate, PlateRead
from appliance._auth import hash_password
from appliance._hardware import AlertSignal
from appliance._hotlist.bolo import BoloInput


def wait_states(pin: Any, count: int) -> list[bool]:
    for _ in range(100):
        states = [s.state for s in pin.states]
        if len(states) >= count:
            return states
        time.sleep(0.05)
    return [s.state for s in pin.states]


async def test_an_alert_beeps_and_blinks_on_a_pi(mock_pins: Any, appliance_host: Any) -> None:
    async with appliance_host(config={"hardware": "raspberry-pi-5"}) as box:
        assert box.alert_signal is not None
        await box.store.create_user("a", hash_password("pw-a-long"), "operator", "PD")
        await box.store.create_user("b", hash_password("pw-b-long"), "supervisor", "PD")
        officer, sergeant = await box.store.get_user("a"), await box.store.get_user("b")
        entry = {
            "plate": "7ABC123",
            "category": "stolen vehicle",
            "case_number": "26-1",
            "synopsis": "Stolen from 5th and Main",
            "expires": "2026-01-10",
        }
        for covert in (True, False):
            data = BoloInput.model_validate({**entry, "covert": covert})
            await box.bolos.decide(await box.bolos.create(data, officer), "approve", sergeant)
        now = box.clock.now()
        await box._on_read(
            PlateRead(
                "gate", "7ABC123", 0.9, now, now, (0, 0, 1, 1), (PlateCandidate("7ABC123", 0.9),)
            )
        )
        for _ in range(50):  # the signal task runs on the loop
            if box.alert_signal.signalled:
                break
            await asyncio.sleep(0.02)
        # Two alerts (covert and not): only the open one is signalled at the roadside.
        assert len(await box.store.alerts.recent(include_covert=True)) == 2
        assert box.alert_signal.signalled == 1
        buzzer = wait_states(mock_pins.pin(24), 7)
        assert buzzer[:7] == [False, True, False, True, False, True, False]
        assert True in wait_states(mock_pins.pin(23), 2)


async def test_no_gpio_in_the_profile_means_no_signal(appliance_host: Any) -> None:
    async with appliance_host(config={"hardware": "x86-generic"}) as box:
        assert box.alert_signal is None


def test_gpio_unavailable_is_a_clear_error(monkeypatch: Any) -> None:
    from gpiozero import Device

    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "no-such-factory")
    try:
        AlertSignal({"buzzer": 24})
    except RuntimeError as err:
        assert "GPIO unavailable" in str(err)
    else:
        raise AssertionError("an unusable pin factory must be reported")
