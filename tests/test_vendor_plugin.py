"""A vendor's camera plugin, built as its own distribution, is found and run by the host.

The example package in examples/gatecam-plugin is built into a wheel, installed into a fresh
directory (as pip would into site-packages) and the host is run from a separate process that has
only that directory added: no host code knows the plugin exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "gatecam-plugin"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("vendor")
    wheels, target = work / "wheels", work / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(EXAMPLE)],
        check=True,
        cwd=work,
    )
    broken = work / "brokencam"
    (broken / "brokencam").mkdir(parents=True)
    (broken / "brokencam" / "__init__.py").write_text("import no_such_vendor_sdk\n")
    (broken / "pyproject.toml").write_text(
        '[project]\nname = "brokencam"\nversion = "0.1"\n'
        '[project.entry-points."appliance.plugins"]\nbrokencam = "brokencam"\n'
    )
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(broken)],
        check=True,
        cwd=work,
    )
    for wheel in wheels.glob("*.whl"):
        subprocess.run(
            [*pip, "install", "--no-deps", "--target", str(target), str(wheel)], check=True
        )
    env = {**os.environ, "PYTHONPATH": str(target), "GATECAM_PASSWORD": "secret"}
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=False, timeout=300
    )


def test_vendor_plugin_is_listed_with_its_origin(installed_plugin: dict[str, str]) -> None:
    result = run(installed_plugin, "-m", "appliance", "plugins", "--json")
    plugins = {p["name"]: p for p in map(json.loads, result.stdout.splitlines())}
    gatecam = plugins["gatecam"]
    assert gatecam["status"] == "ok"
    assert gatecam["distribution"] == "gatecam-alprbox" and gatecam["version"] == "1.0.0"
    assert gatecam["entry_point"] == "appliance.plugins: gatecam = gatecam_alprbox.plugin"
    assert gatecam["provides"] == ["camera:gatecam"]
    # A plugin that cannot be imported is reported, and the others still load.
    assert plugins["brokencam"]["status"] == "failed"
    assert "No module named 'no_such_vendor_sdk'" in plugins["brokencam"]["error"]
    assert plugins["replay"]["status"] == "ok"
    assert result.returncode == 1
    assert "Plugin 'brokencam' (brokencam) failed to import" in result.stderr
    # Without the package on the path the host has never heard of it.
    clean = {k: v for k, v in installed_plugin.items() if k != "PYTHONPATH"}
    without = run(clean, "-m", "appliance", "plugins", "--json")
    assert "gatecam" not in without.stdout


def test_vendor_camera_runs_through_the_host(installed_plugin: dict[str, str]) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys, tempfile
        from pathlib import Path
        from appliance import SystemClock
        from appliance.testing import make_appliance

        async def main():
            config = {
                "recognition": {"type": "fake", "plate": "GATE123"},
                "cameras": [{"name": "vendor", "type": "gatecam", "address": "cam:80",
                             "password": "env:GATECAM_PASSWORD"}],
            }
            with tempfile.TemporaryDirectory() as tmp:
                async with make_appliance(
                    Path(tmp), config=config, discover=True, clock=SystemClock()
                ) as box:
                    for _ in range(500):
                        if box.cameras["vendor"].frames >= 20:
                            break
                        await asyncio.sleep(0.01)
                    print("state", box.cameras["vendor"].state, box.cameras["vendor"].frames)
                async with make_appliance(Path(tmp), config={}) as box:
                    print("reads", [r.text for r in await box.store.recent_reads()])

        asyncio.run(main())
        """
    )
    result = run(installed_plugin, "-c", script)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    state, frames = lines[0].split()[1:]
    assert state == "running" and int(frames) >= 20
    assert lines[1] == "reads ['GATE123']"


def test_vendor_reuses_the_host_conformance_suite(installed_plugin: dict[str, str]) -> None:
    result = run(
        installed_plugin,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(EXAMPLE),
        "-c",
        str(EXAMPLE / "pyproject.toml"),
        str(EXAMPLE / "tests"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout.splitlines()[-1]
