"""alprbox hot-list plugin: California DMV suspended and revoked registrations (``type: dmv``)."""

from .plugin import DmvSettings, DmvSource
from .records import CATEGORIES, HEADER, normalize_plate, parse_dmv

__all__ = ["CATEGORIES", "HEADER", "DmvSettings", "DmvSource", "normalize_plate", "parse_dmv"]
