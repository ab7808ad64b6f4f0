"""Test rigs for network cameras: a real RTSP server on loopback, as a pytest plugin.

Enable it beside the test kit in your ``conftest.py``::

    pytest_plugins = ["appliance.testing", "appliance.testing_rigs"]

Fixtures:

* ``rtsp_server`` — a started :class:`RtspServer` looping an H.264 clip at
  ``rtsp://127.0.0.1:PORT/stream``; stopped after the test. Call ``kill()`` (a crash),
  ``freeze()``/``thaw()`` (a hung camera) and ``start()`` (back on the same port) to test how a
  camera plugin survives them.
* ``rtsp_server_factory`` — make more servers: ``rtsp_server_factory(clip=..., user=...,
  password=...)``, each stopped after the test.

The server is Debian's gst-rtsp-server driven by ``/usr/bin/python3`` (a virtual environment
cannot import ``gi``). Tests using these fixtures are skipped, with the reason, when those
packages are missing: ``apt-get install gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gi
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad``.
:func:`make_h264_clip` writes test clips of any size with ``ffmpeg``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

__all__ = [
    "RtspServer",
    "default_clip",
    "free_port",
    "make_h264_clip",
    "rtsp_rig_missing",
]

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).parent / "rigs" / "rtsp_server.py"
_START_TIMEOUT = 20.0


@functools.cache
def rtsp_rig_missing() -> str | None:
    """Why the RTSP rig cannot run here, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found (the RTSP rig runs outside the venv)"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "missing = [e for e in ('qtdemux', 'h264parse', 'rtph264pay') "
        "if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))"
    )
    try:
        done = subprocess.run(
            [SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"cannot run {SYSTEM_PYTHON}: {err}"
    if done.returncode != 0:
        return (
            "gst-rtsp-server is not installed for /usr/bin/python3 (apt-get install "
            "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gi gstreamer1.0-plugins-base "
            "gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)"
        )
    if done.stdout.strip():
        return f"GStreamer elements missing: {done.stdout.strip()} (gstreamer1.0-plugins-good/bad)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_h264_clip(
    path: Path, *, width: int = 1280, height: int = 720, fps: int = 10, seconds: float = 10
) -> Path:
    """Write an H.264 MP4 test pattern (with a running clock) using ``ffmpeg`` and libx264."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FileNotFoundError("ffmpeg is not installed (apt-get install ffmpeg)")
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(fps * 2),
            "-movflags",
            "+faststart",
            str(path),
        ],
        check=True,
        timeout=300,
    )
    return path


def default_clip(tmp_dir: Path) -> Path:
    """The replay plugin's bundled demo clip (real cars) if installed, else a generated clip."""
    spec = importlib.util.find_spec("alprbox_camera_replay")
    if spec is not None and spec.origin is not None:
        clip = Path(spec.origin).parent / "clips" / "demo-clip.mp4"
        if clip.exists():
            return clip
    return make_h264_clip(tmp_dir / "rig-clip.mp4", seconds=20)


class RtspServer:
    """One gst-rtsp-server process on 127.0.0.1 serving ``clip`` in a loop at ``path``.

    The port stays the same across :meth:`kill` and :meth:`start`, as a rebooted camera's would.
    """

    def __init__(
        self,
        clip: Path,
        *,
        port: int | None = None,
        path: str = "/stream",
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        self.clip = clip
        self.port = port or free_port()
        self.path = path
        self.user = user
        self.password = password
        self._process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        """The stream URL without credentials."""
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    def url_with_credentials(self, user: str | None = None, password: str | None = None) -> str:
        """The stream URL with ``user:password@`` (defaults: the server's own)."""
        user = user if user is not None else self.user or ""
        password = password if password is not None else self.password or ""
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return f"rtsp://{auth}@127.0.0.1:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it listens. Raises RuntimeError with its output."""
        if self.running:
            return
        command = [
            SYSTEM_PYTHON,
            str(SERVER_SCRIPT),
            "--clip",
            str(self.clip),
            "--port",
            str(self.port),
            "--path",
            self.path,
        ]
        if self.user is not None:
            command += ["--user", self.user, "--password", self.password or ""]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        deadline = time.monotonic() + _START_TIMEOUT
        # A port just released by a killed server can take a moment to be bindable again.
        while True:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            )
            line = _first_line(process, deadline)
            if line.startswith("READY"):
                self._process = process
                return
            _reap(process)
            if not line.startswith("ERROR cannot listen") or time.monotonic() > deadline:
                raise RuntimeError(f"RTSP rig did not start: {line or 'no output'}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM), killing it if it does not exit."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            process.terminate()
        _reap(process)

    def kill(self) -> None:
        """Kill the server as a crash or power cut would (SIGKILL)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        _reap(process)

    def freeze(self) -> None:
        """Stop the process without closing its sockets (SIGSTOP): a hung camera."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume a frozen server (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        self.start()


def _first_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    seen: list[str] = []  # the server's output so far, to explain a failed start
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.1):
                line = process.stdout.readline()
                if line.startswith(("READY", "ERROR")):
                    return line.strip()
                if not line:
                    return "".join(seen).strip()[-800:]
                seen.append(line)
            elif process.poll() is not None:
                return "".join(seen).strip()[-800:]
    return "timed out"


def _reap(process: subprocess.Popen[str]) -> None:
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def rtsp_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., RtspServer]]:
    reason = rtsp_rig_missing()
    if reason is not None:
        pytest.skip(reason)
    servers: list[RtspServer] = []

    def factory(
        clip: Path | None = None,
        *,
        user: str | None = None,
        password: str | None = None,
        path: str = "/stream",
    ) -> RtspServer:
        server = RtspServer(
            clip or default_clip(tmp_path_factory.mktemp("rtsp")),
            user=user,
            password=password,
            path=path,
        )
        servers.append(server)
        server.start()
        return server

    try:
        yield factory
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def rtsp_server(rtsp_server_factory: Callable[..., RtspServer]) -> RtspServer:
    return rtsp_server_factory()
