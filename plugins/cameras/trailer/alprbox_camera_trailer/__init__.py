"""alprbox camera plugin: a solar trailer's RTSP camera with GPS-stamped reads and IR control."""

from .plugin import TrailerCamera, TrailerSettings

__all__ = ["TrailerCamera", "TrailerSettings"]
