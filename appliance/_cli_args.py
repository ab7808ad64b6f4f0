"""Arguments every ``alprbox`` command that opens a box's store shares."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

CONFIG_HELP = "site config (default $ALPRBOX_CONFIG, else the demo's)"


def add_store_args(parser: argparse.ArgumentParser) -> None:
    """``--config`` (default ``$ALPRBOX_CONFIG``, read when the parser is built) and
    ``--data-dir``: which box's store the command opens."""
    parser.add_argument(
        "--config", type=Path, default=os.environ.get("ALPRBOX_CONFIG"), help=CONFIG_HELP
    )
    parser.add_argument("--data-dir", type=Path, help="override the data directory")
