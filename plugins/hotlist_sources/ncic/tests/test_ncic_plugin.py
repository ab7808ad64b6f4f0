"""The ncic plugin through the host: discovery, registration, settings and site config."""

from __future__ import annotations

import textwrap

import pytest
from alprbox_hotlist_ncic import NcicSettings, NcicSource
from pydantic import ValidationError

from appliance import ConfigError
from appliance._config import parse_config
from appliance._plugins import create_plugin_host

SITE = """
hotlists:
  - name: ncic
    type: ncic
    url: https://cjis.example.gov/lpr/ncic-extract.txt
    username: vallejo-alpr
    password: env:NCIC_PASSWORD
"""


def test_the_host_discovers_and_loads_the_plugin() -> None:
    host = create_plugin_host()
    status = host.status_of("ncic")
    assert status is not None, [s.name for s in host.statuses]
    assert (status.status, status.error) == ("ok", None)
    assert status.distribution == "alprbox-hotlist-ncic"
    assert status.provides == ["hotlist_source:ncic"]
    assert host.type_for("hotlist_source", "ncic") is NcicSource


def test_refreshes_twice_a_day() -> None:
    assert NcicSource.refresh_every.total_seconds() == 12 * 3600


def test_a_site_config_validates_through_the_host() -> None:
    config = parse_config(SITE, "site.yaml", create_plugin_host())
    (settings,) = config.hotlists
    assert isinstance(settings, NcicSettings)
    assert settings.password.ref == "env:NCIC_PASSWORD"


@pytest.mark.parametrize(
    "key",
    [
        "include_immigration_violator",
        "include_immigration_violators",
        "keep_ivf",
        "files",
        "excluded_files",
    ],
)
def test_no_setting_re_enables_immigration_violator_records(key: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        NcicSettings(
            type="ncic",
            name="ncic",
            url="https://cjis.example.gov/x",
            username="u",
            password="env:X",
            **{key: True},
        )
    site = SITE + f"    {key}: true\n"
    with pytest.raises(ConfigError, match=key):
        parse_config(site, "site.yaml", create_plugin_host())


def test_no_field_is_about_which_files_are_imported() -> None:
    for name, field in NcicSettings.model_fields.items():
        text = f"{name} {field.title} {field.description}".lower()
        assert "immigra" not in text and "file code" not in text, name


def test_every_setting_has_a_title_and_description() -> None:
    for name, field in NcicSettings.model_fields.items():
        assert field.title and field.description, name
    NcicSettings.model_json_schema()  # the console builds its form from this


def test_a_dumped_config_holds_the_reference_not_the_secret() -> None:
    settings = NcicSettings(
        type="ncic", name="n", url="https://x.example/x", username="u", password="env:X"
    )
    assert settings.model_dump(mode="json")["password"] == "env:X"
    assert "env:X" in textwrap.shorten(repr(settings), 1000)
