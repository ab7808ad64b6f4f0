"""The box's GPS: NMEA parsing and checksums, fix quality and staleness, a serial receiver on a
real pty pair, and a gpsd client against a fake gpsd speaking gpsd's JSON protocol on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from appliance.hardware import GpsdGps, NmeaGps, open_gps
from appliance.hardware.nmea import GgaFix, NmeaError, RmcFix, checksum, parse_sentence
from appliance.testing import FakeClock

DATA = Path(__file__).parent / "data" / "nmea"
FIX_LOG = DATA / "ublox-m8n-fix.nmea"
LOST_LOG = DATA / "ublox-m8n-lost-fix.nmea"


async def until(condition: Callable[[], bool], limit: float = 10.0) -> None:
    for _ in range(int(limit / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


# -- NMEA sentences ----------------------------------------------------------------------------


def test_the_published_gga_example_parses() -> None:
    # The NMEA GGA example every reference quotes, checksum 47 included.
    fix = parse_sentence("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47")
    assert isinstance(fix, GgaFix)
    assert fix.lat == pytest.approx(48.1173)
    assert fix.lon == pytest.approx(11.516667, abs=1e-6)
    assert (fix.quality, fix.satellites, fix.hdop, fix.altitude_m) == (1, 8, 0.9, 545.4)
    assert fix.time_of_day is not None and fix.time_of_day.isoformat() == "12:35:19"


def test_rmc_gives_date_validity_and_western_southern_signs() -> None:
    body = "GNRMC,180000.00,A,3352.1830,S,12218.6650,W,0.012,,281126,,,A"
    fix = parse_sentence(f"${body}*{checksum(body):02X}")
    assert isinstance(fix, RmcFix)
    assert fix.valid
    assert fix.timestamp == datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
    assert fix.lat is not None and fix.lat < 0 and fix.lon is not None and fix.lon < 0


@pytest.mark.parametrize(
    "line",
    [
        "GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47",  # no '$'
        "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",  # no checksum
        "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48",  # wrong checksum
        "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*ZZ",  # not hex
        "$GPGGA,123519,4807.03",  # torn
        b"$GPGGA,\xff\xfe*00",  # not ASCII
    ],
)
def test_damaged_lines_are_refused(line: str | bytes) -> None:
    with pytest.raises(NmeaError):
        parse_sentence(line)


def test_a_valid_but_malformed_gga_is_refused() -> None:
    body = "GPGGA,123519,4807.038,Q,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"  # hemisphere Q
    with pytest.raises(NmeaError):
        parse_sentence(f"${body}*{checksum(body):02X}")


def test_other_sentences_are_valid_but_unused() -> None:
    body = "GPGSV,1,1,03,02,,,21,12,,,25,25,,,18"
    assert parse_sentence(f"${body}*{checksum(body):02X}") is None


# -- fix model from the recorded log -------------------------------------------------------------


def replay(gps: NmeaGps, path: Path) -> None:
    gps.connected = True
    for line in path.read_bytes().split(b"\n"):
        if line.strip():
            gps.feed(line)


def test_recorded_log_gives_the_last_fix_and_counts_corrupt_lines() -> None:
    clock = FakeClock(datetime(2026, 11, 28, 18, 0, 5, tzinfo=UTC))
    gps = NmeaGps("/dev/null", clock, max_fix_age=5)
    replay(gps, FIX_LOG)
    fix = gps.current()
    assert fix is not None
    assert fix.lat == pytest.approx(37 + 52.1845 / 60, abs=1e-6)  # the fourth second's GGA
    assert fix.lon == pytest.approx(-(122 + 18.6659 / 60), abs=1e-6)
    assert fix.fix_time == datetime(2026, 11, 28, 18, 0, 3, tzinfo=UTC)  # date from RMC
    assert (fix.quality, fix.satellites, fix.hdop) == (1, 9, 0.92)
    # The torn GGA, the GGA with a flipped digit and the binary noise: dropped and counted.
    assert gps.corrupt == 3
    assert gps.sentences == 31
    assert gps.status()["state"] == "fix"


def test_a_fix_goes_stale_when_the_receiver_falls_silent() -> None:
    clock = FakeClock(datetime(2026, 11, 28, 18, 0, 5, tzinfo=UTC))
    gps = NmeaGps("/dev/null", clock, max_fix_age=5)
    replay(gps, FIX_LOG)
    assert gps.current() is not None
    clock.advance(6)
    assert gps.current() is None
    status = gps.status()
    assert status["state"] == "stale"
    assert status["fix_age_seconds"] == 6.0
    assert "lat" not in json.dumps(status) and "37." not in json.dumps(status)  # never a position


def test_a_receiver_reporting_no_fix_drops_the_old_one_at_once() -> None:
    clock = FakeClock(datetime(2026, 11, 28, 18, 0, 5, tzinfo=UTC))
    gps = NmeaGps("/dev/null", clock, max_fix_age=60)
    replay(gps, FIX_LOG)
    replay(gps, LOST_LOG)
    assert gps.current() is None
    assert gps.state() == "no fix"


def test_no_fix_before_the_first_satellites() -> None:
    clock = FakeClock()
    gps = NmeaGps("/dev/null", clock)
    gps.connected = True
    for line in FIX_LOG.read_text().splitlines()[:11]:  # the cold-start seconds
        gps.feed(line)
    assert gps.current() is None and gps.state() == "no fix"


# -- a serial receiver on a real pty ---------------------------------------------------------------


async def test_serial_receiver_on_a_pty_gets_a_fix_and_notices_the_cable_pulled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    master, slave = os.openpty()
    device = os.ttyname(slave)
    clock = FakeClock(datetime(2026, 11, 28, 18, 0, 5, tzinfo=UTC))
    gps = open_gps(f"serial:{device}", clock, baud=9600, max_fix_age=30)
    assert isinstance(gps, NmeaGps)
    gps._backoff_initial = 0.05
    task = asyncio.create_task(gps.run())
    caplog.set_level(logging.DEBUG)
    try:
        await until(lambda: gps.connected)
        # The receiver writes its log in bursts, as a UART delivers it (lines split anywhere).
        data = FIX_LOG.read_bytes()
        for i in range(0, len(data), 37):
            os.write(master, data[i : i + 37])
        await until(lambda: gps.current() is not None and gps.current().satellites == 9)
        assert gps.corrupt == 3
        assert gps.status()["state"] == "fix"
        os.close(master)  # the receiver is gone: reading the tty fails
        master = -1
        await until(lambda: gps.state() == "unavailable")
        assert gps.current() is None
        assert gps.status()["error"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if master >= 0:
            os.close(master)
        os.close(slave)
    # Positions never reach the log, at any level.
    assert not any("3752" in r.getMessage() or "37.86" in r.getMessage() for r in caplog.records)


async def test_a_missing_device_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    gps = NmeaGps(tmp_path / "ttyUSB9", FakeClock(), backoff_initial=0.05)
    task = asyncio.create_task(gps.run())
    try:
        await until(lambda: gps.error is not None)
        assert gps.state() == "unavailable"
        assert "ttyUSB9" in str(gps.error) or "No such file" in str(gps.error)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_recorded_log_file_replays_then_goes_stale(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 28, 18, 0, 5, tzinfo=UTC))
    gps = open_gps(str(FIX_LOG), clock, max_fix_age=5)
    task = asyncio.create_task(gps.run())
    try:
        await until(lambda: gps.current() is not None and gps.sentences == 31)
        clock.advance(10)
        assert gps.state() == "stale"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- gpsd ----------------------------------------------------------------------------------------


class FakeGpsd:
    """A tiny gpsd: VERSION banner, answers ?WATCH with DEVICES and WATCH, then streams reports."""

    def __init__(self, reports: list[dict[str, Any]]) -> None:
        self.reports = reports
        self.watch_requests: list[dict[str, Any]] = []
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        version = {"class": "VERSION", "release": "3.22", "rev": "3.22",
                   "proto_major": 3, "proto_minor": 14}
        writer.write(json.dumps(version).encode() + b"\n")
        line = await reader.readline()
        assert line.startswith(b"?WATCH=")
        self.watch_requests.append(json.loads(line[len(b"?WATCH=") :].rstrip(b";\r\n")))
        writer.write(json.dumps({"class": "DEVICES", "devices": [
            {"class": "DEVICE", "path": "/dev/ttyACM0", "driver": "u-blox", "activated":
             "2026-11-28T18:00:00.000Z", "native": 1, "bps": 9600}]}).encode() + b"\n")
        writer.write(b'{"class":"WATCH","enable":true,"json":true,"nmea":false,"raw":0,'
                     b'"scaled":false,"timing":false,"split24":false,"pps":false}\n')
        for report in self.reports:
            writer.write(json.dumps(report).encode() + b"\n" if isinstance(report, dict)
                         else report)
            await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # hold the connection until the client or the test closes it

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()
        self.writers.clear()


SKY = {"class": "SKY", "device": "/dev/ttyACM0", "hdop": 0.87, "nSat": 14, "uSat": 10,
       "satellites": []}
TPV = {"class": "TPV", "device": "/dev/ttyACM0", "mode": 3, "status": 2,
       "time": "2026-11-28T18:00:01.000Z", "ept": 0.005, "lat": 37.869742, "lon": -122.311098,
       "altHAE": -27.4, "eph": 2.1, "speed": 0.01}


@contextlib.asynccontextmanager
async def running(gps: GpsdGps) -> AsyncIterator[None]:
    task = asyncio.create_task(gps.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_gpsd_client_watches_and_takes_tpv_with_sky_quality() -> None:
    gpsd = FakeGpsd([SKY, b"{not json\n", TPV])
    await gpsd.start()
    clock = FakeClock(datetime(2026, 11, 28, 18, 0, 2, tzinfo=UTC))
    gps = open_gps(f"gpsd:127.0.0.1:{gpsd.port}", clock, max_fix_age=5)
    assert isinstance(gps, GpsdGps)
    try:
        async with running(gps):
            await until(lambda: gps.current() is not None)
            fix = gps.current()
            assert fix is not None
            assert (fix.lat, fix.lon) == (37.869742, -122.311098)
            assert fix.fix_time == datetime(2026, 11, 28, 18, 0, 1, tzinfo=UTC)
            assert (fix.hdop, fix.satellites, fix.quality) == (0.87, 10, 2)  # status 2: DGPS
            assert gpsd.watch_requests == [{"enable": True, "json": True}]
            assert gps.corrupt == 1
    finally:
        await gpsd.stop()


async def test_gpsd_no_fix_mode_and_reconnect_after_gpsd_restarts() -> None:
    gpsd = FakeGpsd([SKY, TPV])
    await gpsd.start()
    port = gpsd.port
    clock = FakeClock(datetime(2026, 11, 28, 18, 0, 2, tzinfo=UTC))
    gps = GpsdGps("127.0.0.1", port, clock, backoff_initial=0.05, read_timeout=2)
    async with running(gps):
        await until(lambda: gps.current() is not None)
        await gpsd.stop()  # gpsd restarts (a package upgrade)
        await until(lambda: gps.state() == "unavailable")
        assert gps.current() is None
        again = FakeGpsd([{**TPV, "mode": 1}])  # back, but indoors: mode 1, no fix
        await again.start(port)
        try:
            await until(lambda: gps.connected and gps.sentences > 2)
            await until(lambda: gps.state() == "no fix")
            assert gps.current() is None
        finally:
            await again.stop()


async def test_something_that_is_not_gpsd_is_refused() -> None:
    async def not_gpsd(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'{"hello": "world"}\n')
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_gpsd, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    gps = GpsdGps("127.0.0.1", port, FakeClock(), backoff_initial=0.05)
    try:
        async with running(gps):
            await until(lambda: gps.error is not None)
            assert "not a gpsd server" in str(gps.error)
    finally:
        server.close()
        await server.wait_closed()


# -- a position on the frames becomes the read's ---------------------------------------------------


def test_the_tracker_keeps_the_newest_position_of_a_vehicles_frames() -> None:
    import numpy as np

    from appliance import Frame, Location, PlateCandidate, PlateDetection
    from appliance._pipeline.tracker import PlateTracker

    t0 = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
    here = Location(37.8697, -122.3111, t0, hdop=0.9)
    there = Location(37.8698, -122.3112, t0, hdop=0.9)
    image = np.full((240, 320, 3), 120, np.uint8)
    detection = PlateDetection((80, 80, 120, 40), 0.9, "7ABC123", 0.9,
                               (PlateCandidate("7ABC123", 0.9),), (0.9,) * 7)
    tracker = PlateTracker("trailer", 1.5, 0.3)
    from datetime import timedelta

    for i, location in enumerate((here, there, None)):  # the last frame: GPS lost meanwhile
        frame = Frame(image, t0 + timedelta(seconds=0.2 * i), "trailer", i + 1, location)
        assert tracker.update(frame, [detection]) == []
    (read,) = tracker.flush()
    assert read.location == there
    # A vehicle seen only without a fix gets no position.
    tracker.update(Frame(image, t0, "trailer", 9), [detection])
    (unlocated,) = tracker.flush()
    assert unlocated.location is None
