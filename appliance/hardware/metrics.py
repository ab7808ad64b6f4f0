"""The box's devices in /metrics, computed at scrape time (never a position)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .box import BoxHardware

__all__ = ["HardwareCollector"]


class HardwareCollector(Collector):
    def __init__(self, hardware: BoxHardware) -> None:
        self._hardware = hardware

    def collect(self) -> Iterator[Metric]:
        hw = self._hardware
        if hw.pins.tamper_switch is not None:
            yield GaugeMetricFamily(
                "alprbox_tamper_open", "1 while the enclosure's tamper switch is open",
                value=1.0 if hw.tamper_open else 0.0,
            )
            yield CounterMetricFamily(
                "alprbox_tamper_alarms", "Tamper alarms since start", value=hw.tamper_alarms
            )
        for name, device in (("illuminator", hw.illuminator), ("relay", hw.relay)):
            if device is not None:
                yield GaugeMetricFamily(
                    f"alprbox_{name}_on", f"1 while the {name} is on",
                    value=1.0 if device.is_on else 0.0,
                )
        gps = hw.gps
        if gps is not None:
            yield GaugeMetricFamily(
                "alprbox_gps_fix", "1 while the GPS has a fresh fix",
                value=1.0 if gps.current() is not None else 0.0,
            )
            status = gps.status()
            if status["fix_age_seconds"] is not None:
                yield GaugeMetricFamily(
                    "alprbox_gps_fix_age_seconds", "Age of the last GPS fix",
                    value=float(status["fix_age_seconds"]),
                )
            yield CounterMetricFamily(
                "alprbox_gps_sentences", "Valid NMEA sentences or gpsd reports", value=gps.sentences
            )
            yield CounterMetricFamily(
                "alprbox_gps_corrupt", "GPS lines dropped as corrupt", value=gps.corrupt
            )
        if hw.readings:
            family = GaugeMetricFamily(
                "alprbox_sensor_value", "Battery/solar readings", labels=["sensor", "unit"]
            )
            for name, reading in hw.readings.items():
                if reading.value is not None:
                    family.add_metric([name, reading.unit], reading.value)
            yield family
        if hw.uplink is not None and hw.uplink.reachable is not None:
            yield GaugeMetricFamily(
                "alprbox_uplink_up", "1 while the uplink answers",
                value=1.0 if hw.uplink.reachable else 0.0,
            )
