"""Read an RTSP, HTTP or file video source with OpenCV/FFmpeg, without ever blocking the loop.

This is the host's capture helper for camera plugins whose device hands out a stream URL (ONVIF,
plain RTSP, MJPEG over HTTP, a trailer camera, a recorded file)::

    from appliance.capture import StreamCapture

    class GateCam(Camera):
        async def open(self) -> None:
            self._capture = StreamCapture(url, clock=self.context.clock, name=self.name)
            await self._capture.open()          # DeviceUnavailable if it cannot be opened

        async def frames(self) -> AsyncIterator[Frame]:
            async for frame in self._capture.frames():
                yield frame

        async def close(self) -> None:
            await self._capture.close()         # safe twice, never hangs on a frozen server

What it does for you:

* RTSP goes over TCP (``OPENCV_FFMPEG_CAPTURE_OPTIONS=rtsp_transport;tcp``): interleaved RTP
  survives NAT and loses no packets to UDP drops, which show up as smeared frames.
* Opening and every read have timeouts, and both happen in one worker thread per capture, so a
  server that stops answering never blocks the event loop. A read stuck in FFmpeg returns after
  about three times ``read_timeout``; :meth:`StreamCapture.close` does not wait for it.
* Frames are :class:`appliance.Frame` values: BGR ``uint8`` images stamped with the clock's UTC
  time when they were decoded. For a live stream, a consumer slower than the camera gets the
  newest frames (the oldest buffered one is dropped and counted in :attr:`StreamCapture.dropped`);
  a file is read no faster than it is consumed, so nothing is dropped.
* Frames that fail to decode are skipped and counted (:attr:`StreamCapture.decode_errors`);
  ``max_decode_errors`` in a row mean the stream is broken and raise ``DeviceUnavailable``.
* Credentials in the URL never reach a log line or an error message: :func:`mask_credentials`.

A stream that stops (server gone, connection reset) raises :class:`appliance.DeviceUnavailable`
from :meth:`StreamCapture.frames`; the host's camera supervisor then closes the camera and
reconnects with backoff, and its watchdog catches a stream that freezes without closing. A file
that reaches its end just ends the iteration.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from .base import Clock, SystemClock
from .errors import DeviceUnavailable, PluginConfigError
from .models import Frame

if TYPE_CHECKING:
    from .models import Image

__all__ = ["StreamCapture", "StreamInfo", "is_stream_url", "mask_credentials"]

logger = logging.getLogger(__name__)

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")

# OpenCV reads OPENCV_FFMPEG_CAPTURE_OPTIONS from the environment while a capture opens, so the
# variable is set around each open under this lock (captures opened elsewhere in the process
# without the helper may see it too; they would want TCP anyway).
_ENV_LOCK = threading.Lock()
_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


def mask_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, safe for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def is_stream_url(source: str | Path) -> bool:
    """Whether ``source`` names a network stream (as opposed to a local file)."""
    if isinstance(source, Path):
        return False
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.lower() in STREAM_SCHEMES


@dataclass(frozen=True)
class StreamInfo:
    """What the source says about itself once opened (0 where FFmpeg does not know)."""

    width: int
    height: int
    fps: float
    codec: str

    def as_dict(self) -> dict[str, str]:
        return {
            "width": str(self.width),
            "height": str(self.height),
            "fps": f"{self.fps:g}",
            "codec": self.codec,
        }


class _Ended:
    """Marks the end of the worker's frames; ``error`` is None for a file's clean end."""

    __slots__ = ("error",)

    def __init__(self, error: str | None) -> None:
        self.error = error


class StreamCapture:
    """One open video source read by a worker thread. See the module docstring.

    ``source`` is a URL (``rtsp://user:pass@host/path``, ``http://…``) or a file path.
    ``open_timeout`` and ``read_timeout`` are seconds handed to FFmpeg. ``transport`` picks RTSP
    over ``"tcp"`` (default) or ``"udp"``. ``buffer`` is how many decoded frames may wait for the
    consumer. ``name`` labels log lines (a camera name); ``clock`` stamps frames (default: the
    system clock). An instance opens once; make a new one to reconnect.
    """

    def __init__(
        self,
        source: str | Path,
        *,
        open_timeout: float = 10.0,
        read_timeout: float = 5.0,
        transport: Literal["tcp", "udp"] = "tcp",
        buffer: int = 2,
        max_decode_errors: int = 50,
        name: str = "",
        clock: Clock | None = None,
    ) -> None:
        if buffer < 1:
            raise ValueError("buffer must be at least 1")
        self._source = source
        self._live = is_stream_url(source)
        self._open_timeout = open_timeout
        self._read_timeout = read_timeout
        self._transport = transport
        self._buffer = buffer
        self._max_decode_errors = max_decode_errors
        self._label = f"Capture '{name or self.display_source}'"
        self._clock: Clock = clock or SystemClock()
        self._queue: collections.deque[Frame | _Ended] = collections.deque()
        self._ready = asyncio.Event()
        self._finished = asyncio.Event()  # set when the worker thread is done
        self._room = threading.Semaphore(buffer)  # files: the reader waits for the consumer
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._info: StreamInfo | None = None
        self._ended = False
        self.frames_read = 0
        """Frames decoded so far."""
        self.decode_errors = 0
        """Frames FFmpeg received but could not decode (skipped)."""
        self.dropped = 0
        """Decoded frames of a live stream dropped because the consumer was behind."""

    @property
    def display_source(self) -> str:
        """The source as it may be shown and logged: credentials masked."""
        return mask_credentials(str(self._source))

    @property
    def info(self) -> StreamInfo | None:
        """Size, rate and codec once opened."""
        return self._info

    @property
    def is_open(self) -> bool:
        return self._thread is not None and not self._stop.is_set()

    async def open(self) -> StreamInfo:
        """Open the source in the worker thread; raise if it cannot be opened in time.

        Raises :class:`DeviceUnavailable` for a stream that cannot be reached or opened, and
        :class:`PluginConfigError` for a missing or unreadable file.
        """
        if self._thread is not None:
            raise RuntimeError(f"{self._label} is already open; make a new StreamCapture")
        self._loop = asyncio.get_running_loop()
        opened: asyncio.Future[StreamInfo] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(opened,), name=f"capture-{self._label}", daemon=True
        )
        self._thread.start()
        try:
            # FFmpeg honours open_timeout itself; the margin covers a slow probe of the codec.
            self._info = await asyncio.wait_for(opened, self._open_timeout * 2 + 5)
        except TimeoutError:
            self._stop.set()
            raise DeviceUnavailable(
                f"{self.display_source} did not open within {self._open_timeout:g} s"
            ) from None
        except BaseException:
            self._stop.set()
            raise
        return self._info

    async def frames(self) -> AsyncIterator[Frame]:
        """Yield frames as they are decoded.

        Raises :class:`DeviceUnavailable` when a stream stops or keeps failing to decode; ends
        when a file ends.
        """
        if self._thread is None:
            raise RuntimeError(f"{self._label} is not open")
        while True:
            while not self._queue:
                if self._ended:
                    return
                self._ready.clear()
                await self._ready.wait()
            item = self._queue.popleft()
            if isinstance(item, _Ended):
                self._ended = True
                if item.error is not None:
                    raise DeviceUnavailable(item.error)
                return
            if not self._live:
                self._room.release()
            yield item

    async def read(self) -> Frame:
        """The next frame; raises :class:`DeviceUnavailable` if the source has ended."""
        async for frame in self.frames():
            return frame
        raise DeviceUnavailable(f"{self.display_source} has ended")

    async def close(self, wait: float = 1.0) -> None:
        """Stop reading and release the source. Safe twice.

        Waits up to ``wait`` seconds for the worker to finish; a worker stuck in a frozen read
        releases the source by itself when FFmpeg's read timeout fires.
        """
        self._stop.set()
        self._room.release()  # wake a file reader waiting for room
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._finished.wait(), wait)

    # -- worker thread -----------------------------------------------------------------------

    def _run(self, opened: asyncio.Future[StreamInfo]) -> None:
        try:
            try:
                capture = self._open_capture()
            except Exception as err:
                self._call(_resolve, opened, None, err)
                return
            try:
                self._call(_resolve, opened, _stream_info(capture), None)
                self._call(self._push, _Ended(self._read_loop(capture)))
            finally:
                capture.release()
        finally:
            self._call(self._finished.set)

    def _open_capture(self) -> Any:
        # FFmpeg prints its own complaint to stderr on every failed attempt, which would make a
        # camera that is down log once per retry; the helper reports failures itself. -8 is
        # AV_LOG_QUIET; an operator who sets the variable gets FFmpeg's messages back.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        import cv2  # imported here: `import appliance` must not pay for OpenCV

        _quiet_opencv_warnings(cv2)

        if not self._live and not Path(self._source).exists():
            raise PluginConfigError(f"source {self._source} does not exist")

        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self._open_timeout * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self._read_timeout * 1000),
        ]
        with _ENV_LOCK:
            previous = os.environ.get(_OPTIONS_ENV)
            os.environ[_OPTIONS_ENV] = f"rtsp_transport;{self._transport}"
            try:
                capture = cv2.VideoCapture(str(self._source), cv2.CAP_FFMPEG, params)
            finally:
                if previous is None:
                    os.environ.pop(_OPTIONS_ENV, None)
                else:
                    os.environ[_OPTIONS_ENV] = previous
        if not capture.isOpened():
            capture.release()
            if self._live:
                raise DeviceUnavailable(f"{self.display_source} cannot be opened")
            raise PluginConfigError(f"source {self._source} is not a readable video")
        return capture

    def _read_loop(self, capture: Any) -> str | None:
        """Read until stopped or the source ends; return why a stream ended (None: clean end)."""
        errors_in_row = 0
        while not self._stop.is_set():
            if not self._live:
                self._room.acquire()
                if self._stop.is_set():
                    return None
            if not capture.grab():
                if self._stop.is_set() or not self._live:
                    return None
                return f"{self.display_source} stopped sending frames"
            ok, image = capture.retrieve()
            if not ok or image is None or image.ndim != 3 or image.shape[2] != 3:
                self.decode_errors += 1
                errors_in_row += 1
                if not self._live:
                    self._room.release()
                if errors_in_row >= self._max_decode_errors:
                    return f"{self.display_source}: {errors_in_row} frames in a row did not decode"
                continue
            errors_in_row = 0
            self.frames_read += 1
            frame = Frame(image=_as_image(image), timestamp=self._now())
            if not self._call(self._push, frame):
                return None  # the loop is gone: nobody is reading
        return None

    def _now(self) -> datetime:
        return self._clock.now()

    def _call(self, func: Any, *args: Any) -> bool:
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(func, *args)
        except RuntimeError:  # loop closed
            return False
        return True

    # -- event loop side ---------------------------------------------------------------------

    def _push(self, item: Frame | _Ended) -> None:
        if self._live and isinstance(item, Frame):
            frames = sum(1 for q in self._queue if isinstance(q, Frame))
            if frames >= self._buffer:
                self._queue.popleft()  # live: the newest frames matter, not the backlog
                self.dropped += 1
        self._queue.append(item)
        self._ready.set()


def _resolve(
    future: asyncio.Future[StreamInfo], info: StreamInfo | None, error: BaseException | None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    elif info is not None:
        future.set_result(info)


def _stream_info(capture: Any) -> StreamInfo:
    import cv2

    fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
    codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ")
    return StreamInfo(
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        codec=codec if codec.isprintable() else "",
    )


def _as_image(image: Any) -> Image:
    return image  # type: ignore[no-any-return]


_OPENCV_LOG_LEVEL_ERROR = 2  # cv::utils::logging::LOG_LEVEL_ERROR


def _quiet_opencv_warnings(cv2: Any) -> None:
    """Keep OpenCV's own ``[ WARN ]`` line ("backend ... can't be used to capture by name") off
    stderr: it comes on every failed open, so a camera that is down would log once per retry
    while the host's supervisor already says it once on failure and once on recovery (issue 8).

    ``OPENCV_LOG_LEVEL`` is read only when cv2 is first imported, which the pipeline does long
    before a capture opens, so the level is set here instead. An operator who sets the variable
    (``OPENCV_LOG_LEVEL=DEBUG`` to chase a camera problem) keeps what they asked for.
    """
    if "OPENCV_LOG_LEVEL" not in os.environ:
        cv2.setLogLevel(_OPENCV_LOG_LEVEL_ERROR)
