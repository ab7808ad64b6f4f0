"""Site settings for keys and retention (the ``keys:`` and ``retention:`` sections)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..settings import SecretRef

#: CJIS Security Policy 5.4.7 (audit record retention): at least one year.
AUDIT_MIN_DAYS = 365

#: Named retention policies a site can start from; explicit fields override them.
PRESETS: dict[str, dict[str, int | None]] = {
    # Vehicle Code 2413(c): CHP keeps plate data no more than 60 days unless it is evidence.
    "chp-60": {"read_days": 60, "hit_days": 60, "image_days": 60},
    # SB 274 (2023): data not matching a hot list destroyed within 30 days.
    "sb274": {"read_days": 30, "hit_days": 365, "image_days": 30},
    # Non-hit images not kept past their day (as Berkeley's parking unit does); hits one year.
    "minimal-images": {"read_days": 30, "hit_days": 365, "image_days": 0},
}


class KeySettings(BaseModel):
    """Where the master key comes from. It never lives inside the data directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    master_key_file: Path | None = Field(
        default=None,
        title="Master key file",
        description="A 32-byte key file (0600) outside the data directory. Default: "
        "$ALPRBOX_KEY_FILE, else ~/.config/alprbox/<site>/master.key.",
    )
    city_public_key: str | None = Field(
        default=None,
        title="City public key",
        description="Optional: base64 X25519 public key (alprbox keys city-keygen). Every data "
        "key is also sealed to it, so the city can read a restored replica without this box's "
        "master key; a purged day then stays unreadable only once the city drops the keys.db "
        "copies it kept.",
    )
    passphrase: SecretRef | None = Field(
        default=None,
        title="Passphrase",
        description="Derive the master key from a passphrase (scrypt) instead of a key file: "
        "env:NAME or file:/path. The salt is kept in keys.db.",
    )

    @field_validator("city_public_key")
    @classmethod
    def _city_key(cls, value: str | None) -> str | None:
        if value is not None:
            from .city import parse_public_key

            parse_public_key(value)
        return value

    def city_public_bytes(self) -> bytes | None:
        if self.city_public_key is None:
            return None
        from .city import parse_public_key

        return parse_public_key(self.city_public_key)


class RetentionSettings(BaseModel):
    """How long each class of data is kept, in whole UTC days after the day it was captured.

    Data of day D kept N days is purged on day D + N + 1 ("on the 366th day" for 365).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Literal["custom", "chp-60", "sb274", "minimal-images"] = Field(
        default="custom",
        description="A named policy to start from; fields given here override it.",
    )
    read_days: int = Field(
        default=30, ge=1, le=3650, description="Reads that matched no hot list (non-hits)."
    )
    hit_days: int | None = Field(
        default=365,
        ge=1,
        le=36500,
        description="Reads that matched a hot list; null keeps them until released by hand.",
    )
    image_days: int = Field(
        default=30,
        ge=0,
        le=3650,
        description="Plate crops and vehicle images of non-hits (0: purged the day after). "
        "Images of hits are kept as long as the hit.",
    )
    audit_days: int = Field(
        default=AUDIT_MIN_DAYS,
        description="Audit records; the CJIS Security Policy asks for at least 365.",
    )
    batch_rows: int = Field(
        default=500,
        ge=10,
        le=100_000,
        description="Rows deleted per transaction while purging, so ingest never waits long.",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data

    @model_validator(mode="after")
    def _guards(self) -> RetentionSettings:
        if self.audit_days < AUDIT_MIN_DAYS:
            raise ValueError(
                f"audit_days {self.audit_days} is below the CJIS minimum of {AUDIT_MIN_DAYS} "
                "days (CJIS Security Policy 5.4.7)"
            )
        if self.image_days > self.read_days:
            raise ValueError(
                f"image_days ({self.image_days}) cannot exceed read_days ({self.read_days}): "
                "an image without its read could not be found or purged with it"
            )
        if self.hit_days is not None and self.hit_days < self.read_days:
            raise ValueError(
                f"hit_days ({self.hit_days}) shorter than read_days ({self.read_days}) would "
                "purge hits before non-hits"
            )
        return self

    def days(self, klass: str) -> int | None:
        """Retention of a class in days (None: indefinitely)."""
        return {
            "read": self.read_days,
            "hit": self.hit_days,
            "image": self.image_days,
            "audit": self.audit_days,
        }[klass]

    def version(self) -> str:
        """A short hash of this policy, recorded in every purge proof."""
        body = self.model_dump_json(exclude={"batch_rows"})
        return hashlib.sha256(body.encode()).hexdigest()[:12]
