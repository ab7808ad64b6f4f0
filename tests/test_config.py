"""Site config validation: errors name file, line and field; profiles merge; secrets are refs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field, ValidationError

from appliance import CameraSettings, ConfigError, Secret
from appliance._config import firmware_dir, load_hardware_profile, parse_config
from appliance._plugins import create_plugin_host
from appliance.testing import FAKES


@pytest.fixture
def host():  # type: ignore[no-untyped-def]
    return create_plugin_host(discover=False, plugins=[FAKES])


def problems_of(text: str, host) -> list[str]:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as err:
        parse_config(text, "site.yaml", host)
    return err.value.problems


def test_valid_config_gets_hardware_defaults(host) -> None:  # type: ignore[no-untyped-def]
    config = parse_config(
        "hardware: raspberry-pi-5\nrecognition: {type: fake}\n"
        "cameras:\n  - {name: gate, type: fake}\n",
        "site.yaml",
        host,
    )
    assert config.hardware.model == "raspberry-pi-5"
    assert config.recognition.threads == 3  # from the Pi 5 profile
    assert config.cameras[0].queue_size == 4  # camera_defaults


def test_site_value_overrides_profile(host) -> None:  # type: ignore[no-untyped-def]
    config = parse_config(
        "hardware: trailer-solar\nrecognition: {type: fake, threads: 1}\n"
        "cameras:\n  - {name: gate, type: fake, queue_size: 9}\n",
        "site.yaml",
        host,
    )
    assert config.recognition.threads == 1
    assert config.cameras[0].queue_size == 9


def test_errors_name_file_line_and_field(host) -> None:  # type: ignore[no-untyped-def]
    text = (
        "version: 1\n"  # 1
        "site:\n"  # 2
        "  nmae: typo\n"  # 3
        "recognition: {type: fake}\n"  # 4
        "cameras:\n"  # 5
        "  - name: gate\n"  # 6
        "    type: fake\n"  # 7
        "    frames: -3\n"  # 8
        "  - name: other\n"  # 9
        "    type: nosuch\n"  # 10
    )
    problems = problems_of(text, host)
    assert "site.yaml:3: site.nmae: unknown key" in problems[0]
    assert any(p.startswith("site.yaml:8: cameras[0].frames:") for p in problems)
    assert any(
        p.startswith("site.yaml:10: cameras[1].type: unknown camera type 'nosuch'")
        and "known: fake" in p
        for p in problems
    )
    assert len(problems) == 3


def test_duplicate_camera_names_rejected(host) -> None:  # type: ignore[no-untyped-def]
    problems = problems_of(
        "recognition: {type: fake}\ncameras:\n  - {name: a, type: fake}\n"
        "  - {name: a, type: fake}\n",
        host,
    )
    assert problems == ["site.yaml:4: cameras[1].name: 'a' is used twice"]


def test_invalid_yaml_names_the_line(host) -> None:  # type: ignore[no-untyped-def]
    problems = problems_of("site:\n  name: [unclosed\ncameras: []\n", host)
    assert problems[0].startswith("site.yaml:line ")
    assert "not valid YAML" in problems[0]


def test_unknown_hardware_lists_known_models(host) -> None:  # type: ignore[no-untyped-def]
    problems = problems_of("hardware: pi-zero\nrecognition: {type: fake}\n", host)
    assert "unknown hardware 'pi-zero'" in problems[0]
    assert "raspberry-pi-5" in problems[0] and problems[0].startswith("site.yaml:1:")


@pytest.mark.parametrize(
    "model", sorted(p.parent.name for p in firmware_dir().glob("*/profile.yaml"))
)
def test_every_firmware_profile_validates(model: str, host) -> None:  # type: ignore[no-untyped-def]
    profile = load_hardware_profile(model)
    assert profile.model == model
    config = parse_config(f"hardware: {model}\nrecognition: {{type: fake}}\n", "s.yaml", host)
    assert config.recognition.provider.endswith("ExecutionProvider")


def test_required_profiles_exist() -> None:
    for model in ("raspberry-pi-5", "x86-generic", "trailer-solar"):
        assert (firmware_dir() / model / "profile.yaml").is_file()
    assert load_hardware_profile("trailer-solar").gpio["tamper_switch"] == 22


class _WithSecret(CameraSettings):
    type: Literal["s"] = "s"
    password: Secret = Field(description="camera password")


def test_secrets_must_be_references(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="never the secret itself"):
        _WithSecret.model_validate({"name": "a", "password": "hunter2"})
    monkeypatch.setenv("CAM_PASSWORD", "s3cret")
    from_env = _WithSecret.model_validate({"name": "a", "password": "env:CAM_PASSWORD"})
    assert from_env.password.get() == "s3cret"
    secret_file = tmp_path / "pw"
    secret_file.write_text("fromfile\n")
    from_file = _WithSecret.model_validate({"name": "a", "password": f"file:{secret_file}"})
    assert from_file.password.get() == "fromfile"
    # A dumped config carries the reference, never the value.
    assert "s3cret" not in from_env.model_dump_json()
    monkeypatch.delenv("CAM_PASSWORD")
    with pytest.raises(LookupError, match="CAM_PASSWORD"):
        from_env.password.get()


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("cameras:\n  - {name: gate, type: replay, source: demo}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  - {name: gate, type: replay, sorce: demo}\n")
    cmd = [sys.executable, "-m", "appliance", "check-config"]
    ok = subprocess.run([*cmd, str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout
    fail = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, check=False)
    assert fail.returncode == 1
    assert f"{bad}:2: cameras[0].sorce: unknown key" in fail.stderr
    assert f"{bad}:2: cameras[0].source: Field required" in fail.stderr
