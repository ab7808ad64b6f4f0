""""Test connection": run a camera plugin's ``probe()`` safely and say exactly what failed.

The console's button and ``alprbox cameras probe`` both come here. The probe runs on its own
event loop in a worker thread, so a plugin that blocks (a synchronous SDK call where an await
belonged) cannot freeze the console, and it is given up on after ``limit`` seconds. Whatever
comes back, answer or error, is scrubbed of the camera's secrets and of credentials in URLs
before anyone sees it: the probe result is shown on a page, printed and audited.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .base import Camera, PluginContext, SystemClock
from .errors import AuthFailed, DeviceUnavailable, PluginConfigError
from .settings import CameraSettings, SecretRef

logger = logging.getLogger(__name__)

#: seconds a probe may take; ONVIF walks several calls and opens the stream once
DEFAULT_TIMEOUT = 30.0

#: what failed, in the words an installer acts on, by the error the plugin raised
FAILURES: dict[type[BaseException], str] = {
    AuthFailed: "credentials refused",
    DeviceUnavailable: "unreachable",
    PluginConfigError: "configuration",
}

#: seconds past the limit before a probe stuck in blocking code is given up on
_GRACE = 2.0
#: secrets at least this long are scrubbed wherever they appear, shorter ones as whole words
_ANYWHERE = 6
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


@dataclass(frozen=True)
class ProbeResult:
    """One probe: ``ok`` with what the device said about itself, or the failure and why."""

    camera: str
    type: str
    ok: bool
    seconds: float
    info: dict[str, str] = field(default_factory=dict)
    #: ``unreachable``, ``credentials refused``, ``configuration``, ``timed out`` or
    #: ``plugin error``; None when ok
    failure: str | None = None
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def secrets_of(settings: CameraSettings) -> list[str]:
    """The values of every secret reference in ``settings`` that can be read here."""
    found = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretRef):
            try:
                secret = value.get()
            except LookupError:
                continue
            if secret:
                found.append(secret)
    return found


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` without credentials in URLs and without any of ``secrets``."""
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    # Longest first, so a secret that contains another is not left half-shown. A short one is
    # replaced only where it stands alone, or a password "is" would turn every "is" into "***".
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _ANYWHERE:
            text = text.replace(secret, "***")
        else:
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", "***", text)
    return text


async def probe_camera(
    cls: type[Camera],
    settings: CameraSettings,
    context: PluginContext,
    *,
    limit: float = DEFAULT_TIMEOUT,
) -> ProbeResult:
    """Create a fresh instance of ``cls`` (never the running camera's) and probe it."""
    started = time.monotonic()
    secrets = secrets_of(settings)
    # The probe gets the real clock: it runs on its own loop, and a test's fake clock is not
    # meant to be shared across threads.
    context = dataclasses.replace(context, clock=SystemClock())
    outcome: dict[str, Any] = {}
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    def worker() -> None:
        try:
            outcome["info"] = asyncio.run(_probe(cls, settings, context, limit))
        except BaseException as err:  # reported to the caller, who decides
            outcome["error"] = err
        finally:
            # A probe given up on may finish after the caller's loop has closed.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(done.set)

    thread = threading.Thread(target=worker, name=f"probe-{settings.name}", daemon=True)
    thread.start()
    try:
        # A probe stuck in blocking code ignores its own loop's timeout; the caller does not.
        await asyncio.wait_for(done.wait(), limit + _GRACE)
    except TimeoutError:
        outcome = {"error": TimeoutError()}
    elapsed = round(time.monotonic() - started, 2)

    def result(failure: str | None = None, message: str = "",
               info: dict[str, str] | None = None) -> ProbeResult:
        return ProbeResult(settings.name, settings.type, failure is None, elapsed, info or {},
                           failure, message)

    if "info" in outcome:
        return result(info={str(k): scrub(str(v), secrets)
                            for k, v in dict(outcome["info"]).items()})
    error: BaseException = outcome["error"]
    if isinstance(error, TimeoutError):
        return result("timed out", f"no answer within {limit:g} s (is the address right?)")
    for kind, failure in FAILURES.items():
        if isinstance(error, kind):
            return result(failure, scrub(str(error), secrets))
    # A bug in the plugin. No traceback in the log: its message may quote what the plugin was
    # given (a password); the scrubbed message says enough to report the bug.
    message = scrub(f"{type(error).__name__}: {error}", secrets)
    logger.warning("Camera '%s': probe() failed with an unexpected error: %s", settings.name,
                   message)
    return result("plugin error", message)


async def _probe(
    cls: type[Camera], settings: CameraSettings, context: PluginContext, limit: float
) -> dict[str, str]:
    camera = cls(settings, context)
    try:
        async with asyncio.timeout(limit):
            return await camera.probe()
    finally:
        try:
            await camera.close()
        except Exception:
            logger.debug("Camera '%s': close() after probe raised", settings.name, exc_info=True)
