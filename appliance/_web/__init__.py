"""The local web console: aiohttp app factory, server-rendered pages, live reads over SSE."""

from .app import create_app

__all__ = ["create_app"]
