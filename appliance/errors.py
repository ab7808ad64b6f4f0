"""The error vocabulary plugins raise and the host understands.

Plugins wrap their SDK's exceptions in one of these (``raise DeviceUnavailable(...) from err``).
Anything else escaping a plugin is treated as a bug: logged once with a traceback, that instance
marked failed, the rest of the box kept running.
"""

from __future__ import annotations


class ApplianceError(Exception):
    """Base class of every error the host raises on purpose."""


class DeviceUnavailable(ApplianceError):
    """A device or remote is temporarily unreachable; the host retries with backoff."""


class AuthFailed(ApplianceError):
    """The device refused our credentials; the console asks an administrator for new ones."""


class PluginConfigError(ApplianceError):
    """The plugin's settings cannot work (wrong path, unsupported mode); that instance stops."""


class HotlistFormatError(ApplianceError):
    """A hot-list file cannot be trusted as a whole (truncated, wrong encoding, not a list).

    The message names the line (``line 12: ...``); the host keeps the previous list active.
    """


class ConfigError(ApplianceError):
    """A site configuration file is invalid. ``problems`` holds one message per error."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))
