"""Arguments every ``alprbox`` command that opens a box's store shares."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._config import SiteConfig
    from ._plugins import PluginHost

CONFIG_HELP = "site config (default $ALPRBOX_CONFIG, else the demo's)"


def add_store_args(parser: argparse.ArgumentParser) -> None:
    """``--config`` (default ``$ALPRBOX_CONFIG``, read when the parser is built) and
    ``--data-dir``: which box's store the command opens."""
    parser.add_argument(
        "--config", type=Path, default=os.environ.get("ALPRBOX_CONFIG"), help=CONFIG_HELP
    )
    parser.add_argument("--data-dir", type=Path, help="override the data directory")


def resolve_site(args: argparse.Namespace) -> tuple[PluginHost, SiteConfig, Path]:
    """The plugin host, site config and data directory ``--config``/``--data-dir`` name: the
    config's own data_dir (else the site default), or the demo's when no config is given."""
    from .__main__ import default_data_dir
    from ._config import load_config_file
    from ._plugins import create_plugin_host

    host = create_plugin_host()
    if args.config:
        config = load_config_file(args.config, host)
        return host, config, args.data_dir or config.root.data_dir or default_data_dir("site")
    from ._demo import demo_config

    return host, demo_config(host, None), args.data_dir or default_data_dir("demo")
