"""alprbox hotlist import|status|match against a configured data directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from alprbox_hotlist_ncic.generator import generate_extract

KNOWN = "VEH|V990000001|CA0010000|4KXW183|CA|PC|2027|2016|HOND|CIV|BLU|20261120|STOLEN VEHICLE"
IMMIGRATION = "IVF|I990000002|DHS000000|8BNM442|CA|PC|2027|2015|TOYT|COR|WHI|20261120|ICE"


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Path]:
    config = tmp_path / "site.yaml"
    config.write_text(
        "recognition: {type: platedet}\n"
        "hotlists:\n"
        "  - {name: ncic, type: ncic, url: 'https://ncic.invalid/extract', username: box,\n"
        "     password: 'env:NCIC_PASSWORD'}\n"
    )
    lines = generate_extract(500, seed=3).decode().splitlines()
    records = [*lines[1:-1], KNOWN, IMMIGRATION]
    extract = tmp_path / "extract.txt"
    extract.write_text("\n".join([lines[0], *records, f"END|{len(records)}"]) + "\n")
    return {"config": config, "data": tmp_path / "data", "extract": extract}


def hotlist(site: dict[str, Path], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "hotlist",
            args[0],
            "--config",
            str(site["config"]),
            "--data-dir",
            str(site["data"]),
            *args[1:],
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_import_status_and_match(site: dict[str, Path]) -> None:
    imported = hotlist(site, "import", "ncic", str(site["extract"]))
    assert imported.returncode == 0, imported.stderr
    assert "entries active" in imported.stdout and "Immigration Violator" in imported.stdout

    [status] = [
        json.loads(line)
        for line in hotlist(site, "status", "--json").stdout.splitlines()
        if json.loads(line)["name"] == "ncic"
    ]
    assert status["error"] is None and not status["stale"]
    assert status["entries"] + sum(status["dropped"].values()) == 502  # every record accounted
    assert sum(status["dropped"].values()) >= 1

    exact = hotlist(site, "match", "4kxw-183", "--state", "CA", "--json")
    assert exact.returncode == 0
    [hit] = map(json.loads, exact.stdout.splitlines())
    assert hit["kind"] == "exact" and hit["state_matched"] is True
    assert hit["entry"]["reference"] == "V990000001"
    assert "state CA matched" in hit["explanation"]

    fuzzy = hotlist(site, "match", "4KXW1B3", "--json")  # B read for the listed 8
    [hit] = map(json.loads, fuzzy.stdout.splitlines())
    assert hit["kind"] == "confusion" and "position 6" in hit["explanation"]

    # Immigration Violator records are never imported, so never matched.
    assert hotlist(site, "match", "8BNM442", "--json").returncode == 1
    miss = hotlist(site, "match", "ZZZ9999")
    assert miss.returncode == 1 and "no hit" in miss.stdout


def test_a_malformed_file_keeps_the_previous_list(site: dict[str, Path], tmp_path: Path) -> None:
    assert hotlist(site, "import", "ncic", str(site["extract"])).returncode == 0
    page = tmp_path / "error.html"
    page.write_text("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>\n")
    failed = hotlist(site, "import", "ncic", str(page))
    assert failed.returncode == 1
    assert "previous list kept" in failed.stderr and "line 1" in failed.stderr
    assert hotlist(site, "match", "4KXW183", "--json").returncode == 0


def test_unknown_list_is_named(site: dict[str, Path]) -> None:
    result = hotlist(site, "import", "dmv", str(site["extract"]))
    assert result.returncode == 2 and "configured: ncic" in result.stderr
