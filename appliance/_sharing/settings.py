"""Site settings for the public pages (the ``transparency:`` section)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TransparencySettings(BaseModel):
    """What the posted usage and privacy policy and the transparency report need beyond what
    the box enforces anyway."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    custodian_title: str = Field(
        default="",
        max_length=200,
        title="Official custodian",
        description="Title (not name) of the official custodian of ALPR data, e.g. 'Records "
        "Division Manager' (Civil Code 1798.90.51(b)(1)(E)); alprbox policy check flags it "
        "when empty.",
    )
    contact: str = Field(
        default="",
        max_length=300,
        title="Public contact",
        description="Where the public sends questions and records requests (an office, an "
        "address or a web page; not a person's name).",
    )
    suppress_below: int = Field(
        default=5,
        ge=2,
        le=50,
        title="Suppress counts below",
        description="Counts from 1 to this minus one are published as '<N' so that no figure "
        "points at one person.",
    )
