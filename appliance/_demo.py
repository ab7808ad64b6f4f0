"""The demo's mock NCIC and DMV feeds: generated lists served over HTTP on loopback.

The demo shows the whole path a real site takes: the ncic and dmv sources download their lists
with authentication, the Immigration Violator records are dropped at import, and a few plates of
the bundled clip are on the lists so alerts appear. If the two hot-list plugins are not
installed the demo runs without hot lists.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from string import Template
from typing import Any

logger = logging.getLogger(__name__)

PASSWORD_ENV = "ALPRBOX_DEMO_FEED_PASSWORD"
FEED_USER = "demo"

#: Plates of the bundled clip put on the mock lists (see the replay plugin's demo-clip.txt).
_NCIC_RECORDS = (
    "VEH|V990000001|CA0010000|EMR7094|CA|PC|2027|2016|HOND|CIV|BLU|20261120|"
    "STOLEN VEHICLE - DEMO RECORD",
    # Dropped at import, whatever the demo does: California never alerts on these.
    "IVF|I990000002|DHS000000|CYZ5139|CA|PC|2027|2015|TOYT|COR|WHI|20261120|DEMO RECORD",
)
_DMV_RECORDS = (
    "5UVR090,CA,SUSPENDED,Registration suspended - demo record,2026-10-01,2014,FORD,FOC,GRY",
)

DEMO_HOTLISTS = Template("""
hotlists:
  - name: ncic
    type: ncic
    url: $feed/ncic.txt
    username: demo
    password: env:ALPRBOX_DEMO_FEED_PASSWORD
  - name: dmv
    type: dmv
    url: $feed/dmv.csv
    username: demo
    password: env:ALPRBOX_DEMO_FEED_PASSWORD
""")


@dataclass
class DemoFeeds:
    runner: Any
    base_url: str

    async def close(self) -> None:
        await self.runner.cleanup()


def _with_records(data: bytes, records: tuple[str, ...], trailer: str) -> bytes:
    """Append records before the trailer line and fix the trailer's count."""
    lines = data.decode().splitlines()
    body, last = lines[:-1], lines[-1]
    assert last.startswith(trailer), "generated list lacks its trailer"
    body += list(records)
    return ("\n".join([*body, f"{trailer}{len(body) - 1}"]) + "\n").encode()


async def start_demo_feeds(ncic_count: int = 20_000, dmv_count: int = 5_000) -> DemoFeeds | None:
    try:
        from alprbox_hotlist_dmv.generator import generate_dmv_file
        from alprbox_hotlist_ncic.generator import generate_extract
        from alprbox_hotlist_ncic.mock_server import start_feed_server
    except ImportError as err:
        logger.warning("Demo runs without hot lists: %s", err)
        return None
    ncic = _with_records(generate_extract(ncic_count, seed=1), _NCIC_RECORDS, "END|")
    dmv = _with_records(generate_dmv_file(dmv_count, seed=1), _DMV_RECORDS, "#END,")
    password = secrets.token_urlsafe(16)
    os.environ[PASSWORD_ENV] = password  # the sources read it as env:ALPRBOX_DEMO_FEED_PASSWORD
    runner, base_url = await start_feed_server(
        {"ncic.txt": ncic, "dmv.csv": dmv}, FEED_USER, password
    )
    logger.info("Demo mock NCIC and DMV feeds at %s", base_url)
    return DemoFeeds(runner, base_url)


def demo_hotlists_yaml(base_url: str) -> str:
    return DEMO_HOTLISTS.substitute(feed=base_url.rstrip("/"))


def demo_config(host: Any, feed_url: str | None) -> Any:
    """The embedded demo config, with the mock feeds' lists when their plugins are installed.

    ``feed_url`` None (offline commands such as ``alprbox hotlist status``) still names the
    lists, so their saved copies are found; nothing is fetched then.
    """
    from ._config import demo_config_text, parse_config

    text = demo_config_text()
    if host.type_for("hotlist_source", "ncic") and host.type_for("hotlist_source", "dmv"):
        text += demo_hotlists_yaml(feed_url or "http://127.0.0.1:9")
    return parse_config(text, "<embedded demo config>", host)
