"""alprbox camera plugin: replay a video file, an image folder or a stream as a live camera."""

from .plugin import DEMO_CLIP, ReplayCamera, ReplaySettings

__all__ = ["DEMO_CLIP", "ReplayCamera", "ReplaySettings"]
