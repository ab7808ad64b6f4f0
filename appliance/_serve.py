"""Run the appliance and its console until SIGINT/SIGTERM, then shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from ._appliance import Appliance
from ._config import SiteConfig
from ._crypto import MasterKeyError
from ._plugins import PluginHost

logger = logging.getLogger(__name__)


async def serve(
    config: SiteConfig,
    host: PluginHost,
    data_dir: Path,
    *,
    listen: str | None = None,
    port: int | None = None,
    config_problems: list[str] | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    from ._web.app import create_app

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    appliance = Appliance(config=config, plugins=host, data_dir=data_dir)
    appliance.config_problems = list(config_problems or [])
    try:
        await appliance.start()
    except MasterKeyError as err:
        # A missing, wrong or corrupt key is explained, never answered with a new empty store.
        logger.error("Cannot open the store in %s: %s", data_dir, err)
        return 2
    runner = web.AppRunner(create_app(appliance), handle_signals=False)
    await runner.setup()
    console = config.root.console
    bind_host = listen or console.host
    bind_port = console.port if port is None else port
    try:
        site = web.TCPSite(runner, bind_host, bind_port)
        await site.start()
    except OSError as err:
        logger.error("Console cannot listen on %s:%s: %s", bind_host, bind_port, err.strerror)
        await runner.cleanup()
        await appliance.stop()
        return 1
    _announce(appliance, f"http://{bind_host}:{bind_port}", data_dir)
    await stop.wait()
    logger.info("Shutting down: stopping cameras, storing reads in progress")
    await runner.cleanup()
    await appliance.stop()
    return 0


def _announce(appliance: Appliance, url: str, data_dir: Path) -> None:
    # Printed, not logged: the one-time password must not end up in a log collector.
    lines = [f"alprbox console: {url}", f"data: {data_dir}"]
    if appliance.first_admin:
        lines += [
            "First administrator account created:",
            f"  username: {appliance.first_admin.username}",
            f"  password: {appliance.first_admin.password}",
            "This password is shown only this once and stored only as a hash.",
            "At first sign-in you enrol an authenticator app (TOTP); keep its recovery codes.",
        ]
    else:
        lines.append("Log in with your account.")
    width = max(len(line) for line in lines) + 4
    print("=" * width, *(f"  {line}" for line in lines), "=" * width, sep="\n", flush=True)
    sys.stdout.flush()
