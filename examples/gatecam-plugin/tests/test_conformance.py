from typing import Any

import pytest
from gatecam_alprbox import plugin

from appliance.testing import CameraConformance

pytest_plugins = ["appliance.testing"]  # the host's test kit


class TestGateCam(CameraConformance):
    @pytest.fixture
    def camera_plugin(self) -> Any:
        return plugin

    @pytest.fixture
    def camera_settings(self, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        monkeypatch.setenv("GATECAM_PASSWORD", "secret")
        return {
            "type": "gatecam",
            "name": "gate",
            "address": "10.0.0.9:80",
            "password": "env:GATECAM_PASSWORD",
        }
