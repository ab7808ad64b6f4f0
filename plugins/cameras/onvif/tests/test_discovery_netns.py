"""WS-Discovery over real multicast, only inside a private network namespace made for the test.

Multicasting in the main namespace would reach whatever network this machine is on, so the
probe and the responder run together in a fresh namespace whose only interface is loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

SCRIPT = """
import asyncio, json
from alprbox_camera_onvif import discover
from appliance.testing_discovery import DiscoveryResponder

async def main():
    xaddr = "http://192.0.2.10:8080/onvif/device_service"
    async with DiscoveryResponder([xaddr], multicast=True) as responder:
        found = await discover(1.5)
    print(json.dumps({
        "probes": responder.probes,
        "found": [{"xaddrs": list(d.xaddrs), "host": d.host, "port": d.port} for d in found],
    }))

asyncio.run(main())
"""


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def netns() -> Iterator[str]:
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    name = f"alprbox-wsd-{os.getpid()}"
    created = _ip("netns", "add", name)
    if created.returncode != 0:
        pytest.skip(f"network namespaces unavailable here: {created.stderr.strip()}")
    try:
        for step in (
            ("link", "set", "lo", "up", "multicast", "on"),
            ("route", "add", "224.0.0.0/4", "dev", "lo"),
        ):
            done = _ip("netns", "exec", name, "ip", *step)
            assert done.returncode == 0, done.stderr
        yield name
    finally:
        _ip("netns", "del", name)


def test_multicast_probe_finds_the_device_inside_a_namespace(netns: str) -> None:
    done = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["probes"] == 1
    assert result["found"] == [
        {
            "xaddrs": ["http://192.0.2.10:8080/onvif/device_service"],
            "host": "192.0.2.10",
            "port": 8080,
        }
    ]
