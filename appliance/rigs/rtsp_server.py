#!/usr/bin/python3
"""RTSP test server: serves an H.264 MP4 in a loop, without re-encoding, on loopback.

Run it with Debian's Python (a virtual environment cannot import ``gi``)::

    /usr/bin/python3 appliance/rigs/rtsp_server.py --port 8554 --clip demo.mp4 [--path /stream]

Needs the Debian packages ``gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp python3-gi
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad``. It prints
``READY rtsp://127.0.0.1:PORT/PATH`` on stdout once it listens, and exits on SIGTERM/SIGINT.

The pipeline is ``filesrc ! qtdemux ! h264parse ! rtph264pay``: the clip's own H.264 is sent
as is, so the server costs almost no CPU. At the clip's end the EOS is held back and the
demuxer seeks back to the start, so clients see one unbroken stream (the clock restarts at the
loop, which FFmpeg clients take in their stride: a 46 s read of the 39.6 s demo clip got 485
frames). One media is shared by every client, like a real camera's single encoder.
With ``--user``/``--password`` the server asks for Digest authentication.

This file must not import the appliance package: it runs outside the venv.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi  # type: ignore[import-not-found]  # Debian python3-gi, outside the venv

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # type: ignore[import-not-found]  # noqa: E402


def _restart(demux: Gst.Element) -> bool:
    # A flushing seek: after EOS, qtdemux ignores a non-flushing one (tried: no data follows).
    demux.seek_simple(Gst.Format.TIME, Gst.SeekFlags.FLUSH, 0)
    return False  # a one-shot idle callback


def _on_parser_event(
    _pad: Gst.Pad, info: Gst.PadProbeInfo, demux: Gst.Element
) -> Gst.PadProbeReturn:
    event = info.get_event()
    if event is not None and event.type == Gst.EventType.EOS:
        # The clip ended: hide that from the rest of the pipeline and play it again. The seek
        # runs on the main loop; seeking from this streaming thread could deadlock.
        GLib.idle_add(_restart, demux)
        return Gst.PadProbeReturn.DROP
    return Gst.PadProbeReturn.OK


def _on_configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
    element = media.get_element()
    demux = element.get_by_name("demux")
    sink = element.get_by_name("parse").get_static_pad("sink")
    sink.add_probe(Gst.PadProbeType.EVENT_DOWNSTREAM, _on_parser_event, demux)


def build_server(
    clip: str, port: int, path: str, user: str | None, password: str | None
) -> GstRtspServer.RTSPServer:
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = clip.replace("\\", "\\\\").replace('"', '\\"')
    factory.set_launch(
        f'( filesrc location="{location}" ! qtdemux name=demux '
        "! h264parse name=parse config-interval=-1 "
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    factory.set_shared(True)
    factory.connect("media-configure", _on_configure)
    if user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
        auth.add_digest(user, password or "", token)
        # Digest only, as IP cameras do (the binding takes one method, not a mask).
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_role("viewer")
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(path, factory)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True, help="an MP4 file holding H.264 video")
    parser.add_argument("--port", type=int, default=8554, help="TCP port on 127.0.0.1")
    parser.add_argument("--path", default="/stream", help="mount path, e.g. /stream")
    parser.add_argument("--user", help="require this user (Digest authentication)")
    parser.add_argument("--password", help="the user's password")
    args = parser.parse_args(argv)
    Gst.init(None)
    server = build_server(args.clip, args.port, args.path, args.user, args.password)
    if server.attach(None) == 0:
        print(f"ERROR cannot listen on 127.0.0.1:{args.port}", flush=True)
        return 1
    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
