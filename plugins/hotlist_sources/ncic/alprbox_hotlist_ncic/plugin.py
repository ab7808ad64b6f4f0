"""The ``ncic`` hot-list source: the FBI's twice-daily NCIC extract for plate readers."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field

from appliance import HotlistBatch, HotlistSource, hookimpl
from appliance.feeds import HttpFeedSettings, HttpFeedSource

from .extract import parse_extract


class NcicSettings(HttpFeedSettings):
    # Immigration Violator records are dropped in extract.py with no setting to keep them
    # (Cal. Gov. Code 7284.6; Vallejo 426.6); unknown keys are rejected by the base model.
    type: Literal["ncic"] = Field(
        title="Source type", description="The FBI NCIC extract for plate readers."
    )
    url: str = Field(
        title="Extract URL",
        description="https:// address of the extract file, as given by the state's CJIS "
        "systems agency.",
        pattern=r"^https?://\S+$",
    )


class NcicSource(HttpFeedSource):
    settings_model = NcicSettings
    refresh_every = timedelta(hours=12)  # the FBI refreshes the extract twice a day
    feed_label = "ncic"

    settings: NcicSettings

    def parse(self, data: bytes) -> HotlistBatch:
        return parse_extract(data)


@hookimpl
def appliance_hotlist_source_types() -> list[type[HotlistSource]]:
    return [NcicSource]
