"""The plugin host: discovery through entry points, per-plugin status, loud misspellings."""

from __future__ import annotations

import inspect
from typing import Literal

import pytest

from appliance import Camera, CameraSettings, hookimpl, hookspecs
from appliance._plugins import create_plugin_host
from appliance.testing import FAKES, FakeCamera


@pytest.mark.parametrize("name", [n for n in dir(hookspecs) if n.startswith("appliance_")])
def test_every_hook_is_documented(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    summary = doc.splitlines()[0] if doc else ""
    assert summary.endswith("."), f"{name}: needs a one-line summary"
    assert ":return:" in doc or ":param" in doc, f"{name}: document params/return contract"
    assert "Called" in doc, f"{name}: say when it is called"
    assert "Added in" in doc, f"{name}: say which version added it"


def test_builtin_plugins_load_through_the_entry_point_group() -> None:
    host = create_plugin_host()
    replay = host.status_of("replay")
    assert replay is not None and replay.status == "ok"
    assert replay.distribution == "alprbox-camera-replay"
    assert replay.entry_point == "appliance.plugins: replay = alprbox_camera_replay.plugin"
    assert "camera:replay" in replay.provides
    assert host.type_for("camera", "replay") is not None
    recognizer = host.status_of("recognizer-platedet")
    assert recognizer is not None and recognizer.distribution == "alprbox"


class _Misspelled:
    __name__ = "misspelled"

    @hookimpl
    def appliance_camera_typess(self) -> list[type[Camera]]:  # note the typo
        return []


class _RaisesInHook:
    __name__ = "raises"

    @hookimpl
    def appliance_camera_types(self) -> list[type[Camera]]:
        raise RuntimeError("vendor bug")


class _ReturnsNonsense:
    __name__ = "nonsense"

    @hookimpl
    def appliance_camera_types(self) -> list[object]:
        return [object]


class _DuplicateSettings(CameraSettings):
    type: Literal["fake"] = "fake"


class _Duplicate(Camera):
    settings_model = _DuplicateSettings


class _DuplicatePlugin:
    __name__ = "duplicate"

    @hookimpl
    def appliance_camera_types(self) -> list[type[Camera]]:
        return [_Duplicate]


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        (_Misspelled(), "appliance_camera_typess"),
        (_RaisesInHook(), "vendor bug"),
        (_ReturnsNonsense(), "not a Camera subclass"),
        (_DuplicatePlugin(), "already provided"),
    ],
)
def test_a_broken_plugin_is_marked_failed_and_the_rest_still_load(
    plugin: object, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    host = create_plugin_host(discover=False, plugins=[FAKES, plugin])
    status = host.status_of(plugin.__name__)  # type: ignore[attr-defined]
    assert status is not None and status.status == "failed"
    assert error in (status.error or "")
    assert host.status_of("appliance.testing.fakes").status == "ok"  # type: ignore[union-attr]
    assert host.type_for("camera", "fake") is FakeCamera
    assert any(plugin.__name__ in r.getMessage() for r in caplog.records)  # type: ignore[attr-defined]


def test_blocklisted_distribution_is_not_loaded() -> None:
    host = create_plugin_host(blocklist=["alprbox-camera-replay"])
    status = host.status_of("replay")
    assert status is not None and status.status == "blocked"
    assert host.type_for("camera", "replay") is None


def test_each_host_is_independent() -> None:
    first = create_plugin_host(discover=False, plugins=[FAKES])
    second = create_plugin_host(discover=False)
    assert first.type_for("camera", "fake") is FakeCamera
    assert second.type_for("camera", "fake") is None
