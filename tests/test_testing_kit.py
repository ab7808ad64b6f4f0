"""The kit vendors use must itself work: fake clock, mock pins, isolated hosts."""

from __future__ import annotations

from typing import Any

from appliance.testing import FakeClock


async def test_fake_clock_moves_only_when_told(fake_clock: FakeClock) -> None:
    start, mono = fake_clock.now(), fake_clock.monotonic()
    await fake_clock.sleep(2.5)
    assert (fake_clock.now() - start).total_seconds() == 2.5
    assert fake_clock.monotonic() - mono == 2.5
    assert fake_clock.now().utcoffset() is not None


def test_mock_pins_drive_a_pi5_header(mock_pins: Any) -> None:
    from gpiozero import LED, Button

    assert mock_pins.board_info.model == "5B"
    led = LED(23)
    led.on()
    assert mock_pins.pin(23).state is True
    led.off()
    assert mock_pins.pin(23).state is False
    button = Button(22)
    mock_pins.pin(22).drive_low()
    assert button.is_pressed
    led.close()
    button.close()


async def test_hosts_are_isolated(appliance_host: Any) -> None:
    config = {"cameras": [{"name": "a", "type": "fake", "frames": 1}]}
    async with appliance_host(config=config) as first, appliance_host() as second:
        assert first.data_dir != second.data_dir
        assert "a" in first.cameras and not second.cameras
        assert first.first_admin is not None and second.first_admin is not None
