"""Locally entered plates (BOLOs): who entered them, why, until when, and who approved them.

Vallejo 426.4(f)(5) asks for the entering member, a related case number and a short synopsis on
every locally entered plate, and approval by a supervisor or administrator; partial plates from
major crimes may be entered (426.4(c)), here as ``*`` wildcards. An entry is inactive until
approved, and an edit makes it pending again. The approver must be someone other than the
person who entered it (two people see every local entry before it can stop a car).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..base import HotlistEntry
from .plates import normalize_plate

BOLO_CATEGORIES = (
    "stolen vehicle",
    "stolen plate",
    "wanted person",
    "missing person",
    "AMBER alert",
    "Silver alert",
    "major crime (partial plate)",
    "officer safety",
)
APPROVER_ROLES = frozenset({"supervisor", "administrator"})
ENTRY_ROLES = frozenset({"administrator", "supervisor", "operator", "analyst"})
#: At most this long without re-approval; a stale BOLO stops innocent drivers.
MAX_DAYS = 90
DEFAULT_CASE_NUMBER = (
    r"^(?=.*[0-9])[A-Z0-9][A-Z0-9-]{3,19}$"  # a word like "INVESTIGATION" is not one
)


class BoloInput(BaseModel):
    """What an officer types into the BOLO form, validated."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    plate: str = Field(min_length=2, max_length=16)
    state: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    category: str
    case_number: str
    synopsis: str = Field(min_length=10, max_length=500)
    expires: date
    covert: bool = False

    @field_validator("plate")
    @classmethod
    def _plate(cls, value: str) -> str:
        # Separators are dropped; anything else that is not a letter, digit or * is refused
        # rather than silently stripped, so "<b>12" is an error and not the plate B12.
        if any(not (ch.isalnum() or ch in " -.*") for ch in value):
            raise ValueError("a plate holds only letters, digits, spaces, dashes and *")
        plate = normalize_plate(value, wildcards=True)
        # Three known characters keep a partial plate to about one car in 46,000 (36^3); fewer
        # would raise alerts on innocent drivers every day on a busy road.
        if not re.fullmatch(r"[A-Z0-9*]{2,8}", plate) or len(plate) - plate.count("*") < 3:
            raise ValueError(
                "a plate is 2–8 letters and digits; * stands for one unknown "
                "character, and at least three must be known"
            )
        return plate

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        return value.strip().upper() or None if isinstance(value, str) else value

    @field_validator("category")
    @classmethod
    def _category(cls, value: str) -> str:
        if value not in BOLO_CATEGORIES:
            raise ValueError(f"category must be one of: {', '.join(BOLO_CATEGORIES)}")
        return value

    @field_validator("case_number", mode="before")
    @classmethod
    def _case(cls, value: str) -> str:
        value = str(value).strip().upper()
        if not re.fullmatch(DEFAULT_CASE_NUMBER, value):
            raise ValueError(
                "a case number is 4–20 letters, digits or dashes, with at least one digit "
                "(e.g. 26-001234)"
            )
        return value


@dataclass(frozen=True)
class Bolo:
    id: str
    status: str  # pending | active | rejected | withdrawn
    created_at: datetime
    created_by: str
    approved_by: str | None
    approved_at: datetime | None
    expires_at: datetime
    updated_at: datetime
    data: BoloInput

    def is_active(self, now: datetime) -> bool:
        return self.status == "active" and now < self.expires_at

    def entry(self) -> HotlistEntry:
        return HotlistEntry(
            plate=self.data.plate,
            state=self.data.state,
            category=self.data.category,
            reason=self.data.synopsis,
            reference=self.data.case_number,
            agency=self.created_by,
            entered=self.created_at.date(),
            expires=self.expires_at.date(),
            covert=self.data.covert,
        )


class BoloError(ValueError):
    """A BOLO action that is not allowed; the message says why."""
