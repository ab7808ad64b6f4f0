"""``alprbox restore``: argument parsing and output; the work is in :mod:`.restore`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .binary import LitestreamMissing
from .copy_cli import add_log_key_arg
from .copy_log import LOG_NAME, CopyLogError, append, default_log_key, load_log_key
from .restore import RestoreError, format_report, restore, site_replication


def add_restore_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "restore",
        help="restore a site's replica (alprbox.db, keys.db) into a new directory, checked",
    )
    parser.add_argument("--config", type=Path, required=True,
                        help="the site's config (its replication: section and data_dir)")
    parser.add_argument("--to", type=Path, required=True, help="a new or empty directory")
    parser.add_argument("--data-dir", type=Path,
                        help="the box's data directory, if its config does not name it")
    point = parser.add_mutually_exclusive_group()
    point.add_argument("--txid", help="restore alprbox.db up to this litestream txid (hex)")
    point.add_argument("--timestamp",
                       help="restore alprbox.db as of this time (RFC 3339; rounds down)")
    parser.add_argument("--json", action="store_true", help="the report as one JSON object")
    parser.add_argument("--purpose", default="", help="why the copy is made (access log)")
    parser.add_argument("--case", default="", help="case or incident number (access log)")
    add_log_key_arg(parser)


def run_restore(args: argparse.Namespace) -> int:
    try:
        settings, data_dir = site_replication(args.config.read_text())
    except OSError as err:
        print(f"{args.config}: cannot read: {err.strerror}", file=sys.stderr)
        return 2
    except RestoreError as err:
        print(f"{args.config}: {err}", file=sys.stderr)
        return 2
    box_dir = args.data_dir or data_dir
    if box_dir is None:
        print("the box's data directory is unknown: give --data-dir (its path on the box)",
              file=sys.stderr)
        return 2
    try:
        # Loaded first: a restore that could not be recorded is not made.
        log_key = load_log_key(args.log_key or default_log_key(), args.to, create=True)
    except CopyLogError as err:
        print(str(err), file=sys.stderr)
        return 2
    try:
        report = restore(settings, box_dir, args.to, txid=args.txid, timestamp=args.timestamp)
    except (RestoreError, LitestreamMissing) as err:
        print(f"restore failed: {err}", file=sys.stderr)
        return 1
    head = append(args.to, log_key, "copy.restored", {
        "purpose": args.purpose,
        "case_number": args.case,
        "config": str(args.config.resolve()),
        "box_data_dir": str(box_dir),
        "txid": args.txid,
        "timestamp": args.timestamp,
        **report.as_dict(),
    })
    print(format_report(report, args.json))
    print(f"access log: {args.to / LOG_NAME} record {head.seq}, head {head.hash}",
          file=sys.stderr)
    return 0
