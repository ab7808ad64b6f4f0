"""``alprbox share check`` (issue 7): the gate's decision as JSON and an exit status, every call
audited like a real request."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_policy_gate import TABLE

from appliance.__main__ import main
from appliance._appliance import Appliance
from appliance._config import load_config_file
from appliance._plugins import create_plugin_host

OAKLAND = ["--agency", "Oakland Police Department", "--ori", "CA0010900", "--person",
           "Sgt. A. Rivera", "--email", "arivera@oaklandca.gov", "--purpose", "stolen vehicle",
           "--case-number", "26-004417"]


@pytest.fixture
def site(tmp_path: Path) -> tuple[Path, Path]:
    # The registry's approvals run through 2026-12-31; the CLI uses the real clock, so the
    # test moves them to cover today.
    registry = json.loads(json.dumps(TABLE["registry"], default=str))
    for agency in registry["agencies"]:
        if agency["ori"] not in ("CA0011100", "CA0011200"):
            agency["expires"] = "2099-12-31"
    config = tmp_path / "site.yaml"
    # The master key lives outside the data directory; each test keeps its own (a shared
    # default location would let parallel test runs replace each other's key).
    keys = {"master_key_file": str(tmp_path / "keys" / "master.key")}
    config.write_text(yaml.safe_dump({"sharing": registry, "keys": keys}))
    return config, tmp_path / "data"


def check(site: tuple[Path, Path], *args: str, capsys: Any) -> tuple[int, dict[str, Any]]:
    config, data = site
    status = main(["share", "check", "--config", str(config), "--data-dir", str(data), *args,
                   "--json"])
    out = capsys.readouterr().out
    return status, json.loads(out.strip().splitlines()[-1])


def events(site: tuple[Path, Path]) -> list[dict[str, Any]]:
    """The gate's audited decisions, read through the store the way the CLI opens it."""
    config, data = site
    host = create_plugin_host()
    box = Appliance(config=load_config_file(config, host), plugins=host, data_dir=data)

    async def read() -> list[dict[str, Any]]:
        store = await box.open_store()
        try:
            return await store.events(1000, kind="share.decision", oldest_first=True)
        finally:
            await store.close()

    return asyncio.run(read())


def test_an_approved_partner_passes_and_ice_on_whose_behalf_does_not(
    site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    status, allowed = check(site, *OAKLAND, capsys=capsys)
    assert status == 0 and allowed["allowed"] is True
    assert "registry:agency:CA0010900" in allowed["matched"]
    status, denied = check(site, *OAKLAND, "--on-behalf-of", "Alameda County Sheriff's Office",
                           "I.C.E.", capsys=capsys)
    assert status == 1 and denied["allowed"] is False
    assert any(m.startswith("denylist:on_behalf_of[1]") for m in denied["matched"])
    assert any("Gov. Code 7284.6" in r for r in denied["reasons"])
    status, federal = check(site, "--agency", "U.S. Border Patrol", "--ori", "CAUSB0000",
                            "--purpose", "stolen vehicle", "--case-number", "26-1",
                            capsys=capsys)
    assert status == 1 and any(m.startswith("denylist:ori") for m in federal["matched"])
    recorded = events(site)
    assert [e["detail"]["allowed"] for e in recorded] == [True, False, False]
    assert all(e["detail"]["via"] == "cli" for e in recorded)
    assert recorded[1]["detail"]["matched"] == denied["matched"]
    assert recorded[1]["detail"]["request"]["on_behalf_of"] == [
        "Alameda County Sheriff's Office", "I.C.E."
    ]


def test_usage_errors_exit_2(site: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    config, data = site
    with pytest.raises(SystemExit) as caught:
        main(["share", "check", "--config", str(config), "--json"])  # no --agency
    assert caught.value.code == 2
    bad = config.with_name("bad.yaml")
    bad.write_text("sharing:\n  agencies:\n    - {name: ICE, ori: VTINS07S0, kind: x}\n")
    assert main(["share", "check", "--config", str(bad), "--data-dir", str(data),
                 "--agency", "x"]) == 2
    assert "bad.yaml:3: sharing.agencies[0].name" in capsys.readouterr().err


def test_the_installed_command(site: tuple[Path, Path]) -> None:
    config, data = site
    env = {**os.environ, "ALPRBOX_CONFIG": str(config)}
    done = subprocess.run(
        [sys.executable, "-m", "appliance", "share", "check", "--data-dir", str(data),
         "--agency", "ＩＣＥ", "--purpose", "stolen vehicle", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    answer = json.loads(done.stdout)
    assert answer["allowed"] is False
    assert set(answer) >= {"allowed", "reasons", "matched"}
    assert any(m.startswith("denylist:agency") for m in answer["matched"])
    assert len(events(site)) == 1
