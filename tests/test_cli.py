"""The alprbox command line, and the demo end to end as a user runs it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def alprbox(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        **kw,  # type: ignore[arg-type]
    )


def test_help_lists_the_subcommands() -> None:
    result = alprbox("--help")
    assert result.returncode == 0
    for command in ("run", "demo", "check-config", "plugins", "recognize"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command
    assert "--config" in alprbox("run", "--help").stdout


def test_plugins_lists_builtins_with_origin() -> None:
    result = alprbox("plugins", "--json")
    plugins = {p["name"]: p for p in map(json.loads, result.stdout.splitlines())}
    assert plugins["replay"]["status"] == "ok"
    assert plugins["replay"]["distribution"] == "alprbox-camera-replay"
    assert plugins["recognizer-platedet"]["status"] == "ok"
    assert "recognizer:platedet" in plugins["recognizer-platedet"]["provides"]
    assert result.returncode == 0


@pytest.mark.slow
def test_recognize_prints_one_json_line_per_image(tmp_path: Path) -> None:
    photo = sorted(DATA.glob("*.jpg"))[0]
    truth = (DATA / f"{photo.stem}.txt").read_text().split()
    x, y, w, h = map(int, truth[1:5])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    result = alprbox("recognize", str(photo), str(broken), "--json")
    first, second = map(json.loads, result.stdout.splitlines())
    assert first["image"] == str(photo)
    plate = first["plates"][0]
    assert set(plate) >= {"text", "confidence", "box", "candidates"}
    px, py, pw, ph = plate["box"]
    assert px < x + w and x < px + pw and py < y + h and y < py + ph, "box misses the plate"
    assert plate["candidates"][0]["text"] == plate["text"]
    assert second == {"image": str(broken), "error": "not a readable image"}
    assert result.returncode == 1  # one image could not be read


def test_recognize_gives_a_photo_a_second_look_for_a_small_plate() -> None:
    # The detector's usual 512 px pass finds nothing in this photo; a photo has no next frame,
    # so the command looks again at 1280 px and reads the distant plate.
    photo = DATA / "wts-lg-000154.jpg"
    result = alprbox("recognize", str(photo), "--json")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert "1366026" in [p["text"] for p in json.loads(line)["plates"]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(port: int, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


@pytest.mark.slow
def test_demo_reads_plates_from_the_bundled_clip_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "appliance",
        "demo",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "demo"),
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        reads = 0.0
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError):
                reads = metric(port, "alprbox_reads_total")
            if reads >= 1:
                break
            time.sleep(1)
        assert reads >= 1, "the demo stored no read within 2 minutes"
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read())
        assert health["status"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}" in out
    assert re.search(r"username: admin\s+password: \S{12,}", out)
    assert "password" not in err, "the one-time password must not reach the logs"
    # Second start: the account exists, no new password is printed.
    again = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and again.poll() is None:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    again.send_signal(signal.SIGTERM)
    out2, _ = again.communicate(timeout=60)
    assert "password:" not in out2 and "Log in with your account" in out2
