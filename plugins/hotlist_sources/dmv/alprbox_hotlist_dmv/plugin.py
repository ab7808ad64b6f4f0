"""The ``dmv`` hot-list source: California DMV suspended and revoked registrations."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from appliance import HotlistBatch, HotlistSource, hookimpl
from appliance.feeds import HttpFeedSettings, HttpFeedSource

from .records import parse_dmv


class DmvSettings(HttpFeedSettings):
    type: Literal["dmv"] = Field(
        title="Source type", description="California DMV suspended and revoked registrations."
    )
    url: str = Field(
        title="List URL",
        description="https:// address of the DMV registration list file.",
        pattern=r"^https?://\S+$",
    )


class DmvSource(HttpFeedSource):
    settings_model = DmvSettings
    refresh_every = timedelta(hours=24)  # the DMV publishes the list daily
    feed_label = "dmv"

    settings: DmvSettings

    def parse(self, data: bytes) -> HotlistBatch:
        return parse_dmv(data)


@hookimpl
def appliance_hotlist_source_types() -> list[type[HotlistSource]]:
    return [DmvSource]
