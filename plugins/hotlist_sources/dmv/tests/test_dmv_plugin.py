"""The dmv plugin through the host."""

from __future__ import annotations

from alprbox_hotlist_dmv import DmvSettings, DmvSource

from appliance._plugins import create_plugin_host


def test_the_host_discovers_and_loads_the_plugin() -> None:
    host = create_plugin_host()
    status = host.status_of("dmv")
    assert status is not None, [s.name for s in host.statuses]
    assert (status.status, status.error) == ("ok", None)
    assert status.distribution == "alprbox-hotlist-dmv"
    assert status.provides == ["hotlist_source:dmv"]
    assert host.type_for("hotlist_source", "dmv") is DmvSource


def test_refreshes_daily() -> None:
    assert DmvSource.refresh_every.total_seconds() == 24 * 3600


def test_every_setting_has_a_title_and_description() -> None:
    for name, field in DmvSettings.model_fields.items():
        assert field.title and field.description, name
    DmvSettings.model_json_schema()
