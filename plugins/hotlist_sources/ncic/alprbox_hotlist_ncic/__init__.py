"""alprbox hot-list plugin: the FBI's NCIC extract for plate readers (``type: ncic``)."""

from .extract import FILE_CODES, HEADER, IMMIGRATION_VIOLATOR_REASON, normalize_plate, parse_extract
from .plugin import NcicSettings, NcicSource

__all__ = [
    "FILE_CODES",
    "HEADER",
    "IMMIGRATION_VIOLATOR_REASON",
    "NcicSettings",
    "NcicSource",
    "normalize_plate",
    "parse_extract",
]
