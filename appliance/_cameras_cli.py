"""``alprbox cameras discover`` and ``alprbox cameras probe``: finding and checking cameras from
the box's shell, for an installer on site (issue 8)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._camera_probe import DEFAULT_TIMEOUT, ProbeResult, probe_camera
from ._config import load_config_file
from ._plugins import create_plugin_host
from .base import PluginContext, SystemClock
from .errors import ConfigError

logger = logging.getLogger(__name__)

#: the WS-Discovery port, for ``--address HOST`` without one
WS_DISCOVERY_PORT = 3702


def add_arguments(cameras: argparse.ArgumentParser) -> None:
    """The ``cameras`` command's actions."""
    actions = cameras.add_subparsers(dest="cameras_command", required=True, metavar="ACTION")
    discover = actions.add_parser(
        "discover", help="find ONVIF cameras on the local network (WS-Discovery probe)"
    )
    discover.add_argument(
        "--timeout", type=float, default=3.0, metavar="S",
        help="seconds to wait for answers (default 3)",
    )
    discover.add_argument(
        "--address", metavar="HOST[:PORT]",
        help="ask one device directly (unicast, port 3702 by default) instead of multicasting",
    )
    discover.add_argument("--json", action="store_true", help="one JSON object per camera")
    probe = actions.add_parser(
        "probe", help="test the connection to a configured camera and say exactly what failed"
    )
    probe.add_argument("name", help="the camera's name in the site config")
    probe.add_argument("--config", type=Path, required=True, help="site config file")
    probe.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
        help=f"give up after this many seconds (default {DEFAULT_TIMEOUT:g})",
    )
    probe.add_argument("--json", action="store_true", help="the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    if args.cameras_command == "discover":
        return asyncio.run(_discover(args))
    return asyncio.run(_probe(args))


def parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, WS_DISCOVERY_PORT
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--address {text!r}: the port must be a number from 1 to 65535")
    return host.strip("[]"), int(port)


async def _discover(args: argparse.Namespace) -> int:
    try:
        # Imported by name: the onvif plugin is a separate distribution the core does not need.
        discover = importlib.import_module("alprbox_camera_onvif").discover
    except ImportError:
        print("cameras discover needs the onvif camera plugin (alprbox-camera-onvif), which is "
              "not installed", file=sys.stderr)
        return 2
    kwargs: dict[str, Any] = {}
    if args.address:
        try:
            kwargs["address"] = parse_address(args.address)
        except ValueError as err:
            print(err, file=sys.stderr)
            return 2
    try:
        found = await discover(args.timeout, **kwargs)
    except OSError as err:
        print(f"cameras discover: could not send the probe: {err}", file=sys.stderr)
        return 1
    for device in sorted(found, key=lambda d: (d.host, d.port)):
        row = {
            "host": device.host, "port": device.port, "name": device.name,
            "endpoint": device.endpoint, "xaddrs": list(device.xaddrs),
            "types": list(device.types), "scopes": list(device.scopes),
        }
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{device.host}:{device.port}\t{device.name or '-'}\t{device.endpoint}")
    if not args.json:
        print(f"{len(found)} camera(s) answered within {args.timeout:g} s", file=sys.stderr)
    return 0


async def _probe(args: argparse.Namespace) -> int:
    host = create_plugin_host()
    try:
        config = load_config_file(args.config, host)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    settings = next((c for c in config.cameras if c.name == args.name), None)
    if settings is None:
        names = ", ".join(c.name for c in config.cameras) or "none"
        print(f"{args.config}: no camera named {args.name!r} (configured: {names})",
              file=sys.stderr)
        return 2
    cls = host.type_for("camera", settings.type)
    assert cls is not None  # the config validated against the registered types
    with tempfile.TemporaryDirectory(prefix="alprbox-probe-") as scratch:
        context = PluginContext(
            logger=logging.getLogger(f"appliance.plugins.cameras.{settings.name}"),
            data_dir=Path(scratch),
            clock=SystemClock(),
        )
        result = await probe_camera(cls, settings, context, limit=args.timeout)
    _print(result, args.json)
    return 0 if result.ok else 1


def _print(result: ProbeResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_dict()))
        return
    if result.ok:
        print(f"camera {result.camera} ({result.type}): OK in {result.seconds:g} s")
        width = max((len(k) for k in result.info), default=0)
        for key, value in result.info.items():
            print(f"  {key:{width}}  {value}")
    else:
        print(f"camera {result.camera} ({result.type}): {result.failure}: {result.message}",
              file=sys.stderr)
