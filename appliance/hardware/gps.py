"""The box's GPS: where a trailer or patrol car is, for stamping reads.

Two receivers share one fix model (:class:`GpsReceiver`):

* :class:`NmeaGps` reads NMEA 0183 from a serial device (pyserial; a USB or UART receiver), or
  from any tty or file (a recorded log replays once, then its last fix goes stale);
* :class:`GpsdGps` speaks gpsd's JSON protocol over TCP (``?WATCH={"enable":true,"json":true}``,
  then TPV and SKY reports), for boxes where gpsd already owns the receiver.

A position is only handed out while it is fresh: :meth:`GpsReceiver.current` returns None when
the receiver says it lost its fix, when the last fix is older than ``max_fix_age`` (a receiver
that went quiet, a cable pulled) or while disconnected. A read without a position is still
stored; a read with a wrong position is worse than none. Positions are never logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ..base import Clock
from ..models import Location
from .nmea import USABLE_QUALITIES, GgaFix, NmeaError, RmcFix, parse_sentence

__all__ = ["GpsReceiver", "GpsdGps", "NmeaGps", "open_gps"]

logger = logging.getLogger(__name__)

_MAX_LINE = 4096  # bytes without a newline: noise on the wire, not a sentence


class GpsReceiver:
    """A fix kept fresh by a receiver session; :meth:`run` keeps the session up."""

    kind = "gps"

    def __init__(
        self,
        clock: Clock,
        *,
        max_fix_age: float = 10.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self._clock = clock
        self.max_fix_age = max_fix_age
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._fix: Location | None = None
        self._fix_at = 0.0  # clock.monotonic() when the fix was received
        self._lost_reason: str | None = "no fix yet"
        self.connected = False
        self.error: str | None = None
        #: valid sentences or reports received
        self.sentences = 0
        #: lines dropped as torn, garbled or with a wrong checksum
        self.corrupt = 0
        self._was_down = False

    @property
    def source(self) -> str:
        """The receiver as an installer would name it (device path, host:port)."""
        raise NotImplementedError

    # -- what the box uses -------------------------------------------------------------------

    def current(self) -> Location | None:
        """The fix if the receiver has a fresh one, else None."""
        if self._fix is None or not self.connected:
            return None
        if self._clock.monotonic() - self._fix_at > self.max_fix_age:
            return None
        return self._fix

    def state(self) -> str:
        """``fix``, ``stale`` (last fix too old), ``no fix`` or ``unavailable``."""
        if not self.connected:
            return "unavailable"
        if self._fix is None:
            return "no fix"
        if self.current() is None:
            return "stale"
        return "fix"

    def status(self) -> dict[str, Any]:
        """For the console and /healthz: the receiver's health, never a position."""
        fix = self._fix
        age = self._clock.monotonic() - self._fix_at if fix is not None else None
        return {
            "source": self.source,
            "state": self.state(),
            "error": self.error if not self.connected else self._lost_reason,
            "fix_age_seconds": round(age, 1) if age is not None else None,
            "quality": fix.quality if fix else 0,
            "satellites": fix.satellites if fix else None,
            "hdop": fix.hdop if fix else None,
            "sentences": self.sentences,
            "corrupt": self.corrupt,
        }

    # -- fix model ---------------------------------------------------------------------------

    def _accept(self, location: Location) -> None:
        self._fix = location
        self._fix_at = self._clock.monotonic()
        self._lost_reason = None

    def _lose(self, why: str) -> None:
        if self._fix is not None:
            logger.info("GPS %s lost its fix: %s", self.source, why)
        self._fix = None
        self._lost_reason = why

    # -- session loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Keep a session to the receiver, reconnecting with backoff; logs once per outage."""
        backoff = self._backoff_initial
        while True:
            before = self.sentences
            try:
                await self._session()
                why = "receiver closed the connection"
            except (OSError, ConnectionError, TimeoutError, ValueError) as err:
                why = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            if self.sentences > before:  # it worked for a while: back off afresh
                backoff = self._backoff_initial
            self._down(why)
            # Wall-clock sleep on purpose: an unplugged receiver is absent in real time.
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._backoff_max)

    async def _session(self) -> None:
        raise NotImplementedError

    def _up(self) -> None:
        self.connected = True
        self.error = None
        if self._was_down:
            logger.info("GPS %s is back", self.source)
            self._was_down = False

    def _down(self, why: str) -> None:
        self.connected = False
        if not self._was_down or self.error != why:
            logger.warning("GPS %s unavailable: %s (reads are stored without a position)",
                           self.source, why)
        self._was_down = True
        self.error = why
        self._fix = None


class NmeaGps(GpsReceiver):
    """NMEA 0183 from a serial device (``/dev/ttyAMA0`` at ``baud``), a tty or a file."""

    kind = "nmea"

    def __init__(self, device: str | Path, clock: Clock, *, baud: int = 9600,
                 **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.device = str(device)
        self.baud = baud
        self._gga_seen = False
        #: the last date an RMC sentence gave (GGA carries the time of day only)
        self._date: date | None = None

    @property
    def source(self) -> str:
        return self.device

    def feed(self, line: bytes | str) -> None:
        """Use one line from the receiver (the session calls this on the event loop)."""
        try:
            sentence = parse_sentence(line)
        except NmeaError as err:
            self.corrupt += 1
            logger.debug("GPS %s: dropped a line: %s", self.device, err)
            return
        self.sentences += 1
        if isinstance(sentence, GgaFix):
            self._gga(sentence)
        elif isinstance(sentence, RmcFix):
            self._rmc(sentence)

    def _gga(self, gga: GgaFix) -> None:
        self._gga_seen = True
        if gga.quality not in USABLE_QUALITIES or gga.lat is None or gga.lon is None:
            self._lose(f"receiver reports fix quality {gga.quality}")
            return
        self._accept(
            Location(
                lat=gga.lat,
                lon=gga.lon,
                fix_time=self._fix_time(gga),
                hdop=gga.hdop,
                quality=gga.quality,
                satellites=gga.satellites,
                altitude_m=gga.altitude_m,
            )
        )

    def _rmc(self, rmc: RmcFix) -> None:
        if rmc.timestamp is not None:
            self._date = rmc.timestamp.date()
        if not rmc.valid:
            self._lose("receiver reports no valid fix (RMC status V)")
            return
        if self._gga_seen or rmc.lat is None or rmc.lon is None:
            return  # GGA is the richer sentence (quality, HDOP); RMC only fills in the date
        self._accept(Location(lat=rmc.lat, lon=rmc.lon,
                              fix_time=rmc.timestamp or self._clock.now()))

    def _fix_time(self, gga: GgaFix) -> datetime:
        now = self._clock.now()
        if gga.time_of_day is None:
            return now
        day = self._date or now.date()
        stamp = datetime.combine(day, gga.time_of_day, UTC)
        if self._date is None and stamp - now > timedelta(hours=12):
            stamp -= timedelta(days=1)  # just after midnight UTC on our clock, before on theirs
        return stamp

    async def _session(self) -> None:
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        opened = asyncio.Event()

        def on_line(line: bytes) -> None:
            if not opened.is_set():
                opened.set()
            self.feed(line)

        def deliver(line: bytes) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(on_line, line)

        def connected() -> None:
            loop.call_soon_threadsafe(self._up)

        try:
            # pyserial blocks in read(); the thread is told to stop and notices within 0.5 s.
            await asyncio.to_thread(self._read_blocking, stop, deliver, connected)
        finally:
            stop.set()

    def _read_blocking(self, stop: threading.Event, deliver: Any, connected: Any) -> None:
        mode = os.stat(self.device).st_mode  # FileNotFoundError: unplugged
        if stat.S_ISCHR(mode):  # a UART, a USB receiver, a pty
            self._read_serial(stop, deliver, connected)
        else:
            self._read_file(stop, deliver, connected)

    def _read_serial(self, stop: threading.Event, deliver: Any, connected: Any) -> None:
        import serial  # type: ignore[import-untyped]  # pyserial: loaded only with a GPS

        try:
            port = serial.Serial(self.device, self.baud, timeout=0.5)
        except serial.SerialException as err:
            raise OSError(str(err)) from err
        connected()
        buffer = b""
        try:
            while not stop.is_set():
                try:
                    data = port.read(max(1, port.in_waiting))
                except serial.SerialException as err:
                    raise OSError(str(err)) from err  # unplugged, or the other end closed
                buffer = self._split(buffer + data, deliver)
        finally:
            port.close()

    def _read_file(self, stop: threading.Event, deliver: Any, connected: Any) -> None:
        with open(self.device, "rb") as source:
            connected()
            buffer = b""
            while not stop.is_set():
                data = source.read(4096)
                if not data:
                    stop.wait(0.2)  # a recorded log: its last fix goes stale, as a dead GPS does
                    continue
                buffer = self._split(buffer + data, deliver)

    def _split(self, buffer: bytes, deliver: Any) -> bytes:
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                deliver(line)
        if len(rest) > _MAX_LINE:
            deliver(rest[:_MAX_LINE])  # counted as corrupt by feed()
            return b""
        return rest


class GpsdGps(GpsReceiver):
    """A gpsd daemon's JSON reports over TCP (default ``127.0.0.1:2947``)."""

    kind = "gpsd"

    def __init__(self, host: str, port: int, clock: Clock, *, read_timeout: float = 5.0,
                 **kwargs: Any) -> None:
        super().__init__(clock, **kwargs)
        self.host = host
        self.port = port
        self.read_timeout = read_timeout
        self._hdop: float | None = None
        self._satellites: int | None = None

    @property
    def source(self) -> str:
        return f"gpsd {self.host}:{self.port}"

    async def _session(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.read_timeout
        )
        try:
            banner = json.loads(await asyncio.wait_for(reader.readline(), self.read_timeout))
            if not isinstance(banner, dict) or banner.get("class") != "VERSION":
                raise ValueError("not a gpsd server (no VERSION banner)")
            writer.write(b'?WATCH={"enable":true,"json":true}\n')
            await writer.drain()
            self._up()
            while True:
                # gpsd reports at least once a second while watching; silence is a dead link.
                line = await asyncio.wait_for(reader.readline(), self.read_timeout)
                if not line:
                    return
                self.feed(line)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    def feed(self, line: bytes | str) -> None:
        """Use one JSON report from gpsd."""
        try:
            report = json.loads(line)
            if not isinstance(report, dict):
                raise ValueError("not an object")
        except ValueError:
            self.corrupt += 1
            return
        self.sentences += 1
        kind = report.get("class")
        if kind == "SKY":
            self._sky(report)
        elif kind == "TPV":
            self._tpv(report)

    def _sky(self, sky: dict[str, Any]) -> None:
        hdop = sky.get("hdop")
        self._hdop = float(hdop) if isinstance(hdop, int | float) else self._hdop
        used = sky.get("uSat")
        if isinstance(used, int):
            self._satellites = used
        elif isinstance(sky.get("satellites"), list):
            self._satellites = sum(1 for s in sky["satellites"] if s.get("used"))

    def _tpv(self, tpv: dict[str, Any]) -> None:
        mode = tpv.get("mode", 0)
        lat, lon = tpv.get("lat"), tpv.get("lon")
        if not isinstance(mode, int) or mode < 2:
            self._lose(f"gpsd reports mode {mode} (no fix)")
            return
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            self.corrupt += 1
            return
        try:
            when = datetime.fromisoformat(str(tpv["time"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            when = self._clock.now()
        # gpsd's "status" (newer versions): 2 = DGPS, 3/4 = RTK; absent or 1 = plain GPS.
        status = tpv.get("status")
        quality = {2: 2, 3: 4, 4: 5}.get(status, 1) if isinstance(status, int) else 1
        altitude = tpv.get("altHAE", tpv.get("alt"))
        self._accept(
            Location(
                lat=float(lat),
                lon=float(lon),
                fix_time=when.astimezone(UTC),
                hdop=self._hdop,
                quality=quality,
                satellites=self._satellites,
                altitude_m=float(altitude) if isinstance(altitude, int | float) else None,
            )
        )


def open_gps(source: str, clock: Clock, *, baud: int = 9600, max_fix_age: float = 10.0,
             **kwargs: Any) -> GpsReceiver:
    """A receiver for ``source``: ``gpsd:HOST:PORT`` (or ``gpsd``) or a device/file path."""
    if source == "gpsd" or source.startswith("gpsd:"):
        _, _, address = source.partition(":")
        host, _, port = (address or "127.0.0.1:2947").rpartition(":")
        return GpsdGps(host or "127.0.0.1", int(port or 2947), clock,
                       max_fix_age=max_fix_age, **kwargs)
    path = source.removeprefix("serial:")
    return NmeaGps(path, clock, baud=baud, max_fix_age=max_fix_age, **kwargs)
