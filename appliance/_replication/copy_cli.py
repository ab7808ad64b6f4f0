"""``alprbox copy search|log|log-key``: a restored copy, searched read-only, and its access log.

The work is in :mod:`.copy` (searching) and :mod:`.copy_log` (the signed access log).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .._crypto import MasterKeyError
from ..settings import SecretRef
from .copy import CopyError, KeySource, Query, copy_cipher, format_result, search
from .copy_log import (
    LOG_NAME,
    CopyLogError,
    append,
    default_log_key,
    load_log_key,
    public_key_hex,
    verify_log,
)


def add_log_key_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-key", type=Path, default=None,
        help="the city's copy log key (Ed25519, 0600, outside the copy; default "
        f"$ALPRBOX_COPY_LOG_KEY, else {default_log_key()}); made on first use",
    )


def add_copy_parser(sub: Any) -> None:
    copy = sub.add_parser(
        "copy", help="a restored copy: search it read-only (audited), check its access log"
    )
    copy_sub = copy.add_subparsers(dest="copy_command", required=True, metavar="ACTION")
    find = copy_sub.add_parser(
        "search", help="search a restored copy read-only; recorded in its access log"
    )
    find.add_argument("copy_dir", type=Path, metavar="DIR", help="the directory restored into")
    what = find.add_mutually_exclusive_group(required=True)
    what.add_argument("--plate", help="exact plate (through the keyed plate index)")
    what.add_argument("--pattern", help="plate pattern with * and ? (needs --start and --end)")
    what.add_argument("--read", action="append", dest="read_ids", help="a read id (repeatable)")
    find.add_argument("--start", help="window start (ISO date/time, UTC)")
    find.add_argument("--end", help="window end (ISO date/time, UTC)")
    find.add_argument("--limit", type=int, default=100)
    find.add_argument("--purpose", required=True, help="why this search is made")
    find.add_argument("--case", required=True, help="case or incident number")
    key = find.add_mutually_exclusive_group()
    key.add_argument("--key-file", type=Path, help="the site's master key file")
    key.add_argument("--passphrase", help="the site's passphrase: env:NAME or file:/path")
    key.add_argument("--city-key", type=Path, help="the city's private key (keys sealed to it)")
    key.add_argument("--config", type=Path, help="a config whose keys: section names the key")
    add_log_key_arg(find)
    find.add_argument("--json", action="store_true", help="the result as one JSON object")

    log = copy_sub.add_parser("log", help="verify a copy's access log (exit 1 if broken)")
    log.add_argument("copy_dir", type=Path, metavar="DIR")
    log.add_argument("--public-key", help="the copy log key's public key (hex), to check with")
    add_log_key_arg(log)
    log.add_argument(
        "--details", action="store_true", help="decrypt each record's details (needs the key)"
    )
    log.add_argument("--json", action="store_true")

    log_key = copy_sub.add_parser(
        "log-key", help="print the copy log key's public key (made if missing): publish it"
    )
    add_log_key_arg(log_key)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _key_source(args: argparse.Namespace) -> KeySource:
    if args.key_file is not None:
        return KeySource(key_file=args.key_file)
    if args.passphrase is not None:
        try:
            return KeySource(passphrase=SecretRef(args.passphrase))
        except ValueError as err:
            raise CopyError(f"--passphrase: {err}") from err
    if args.city_key is not None:
        return KeySource(city_key=args.city_key)
    if args.config is not None:
        try:
            return KeySource.from_config(args.config.read_text())
        except OSError as err:
            raise CopyError(f"{args.config}: cannot read: {err.strerror}") from err
    raise CopyError("say which key opens the copy: --key-file, --passphrase, --city-key or "
                    "--config")


def run_copy(args: argparse.Namespace) -> int:
    try:
        if args.copy_command == "log-key":
            key = load_log_key(args.log_key or default_log_key(), None, create=True)
            print(public_key_hex(key))
            return 0
        if args.copy_command == "log":
            return _log(args)
        return _search(args)
    except (CopyError, CopyLogError) as err:
        print(str(err), file=sys.stderr)
        return 2


def _search(args: argparse.Namespace) -> int:
    copy_dir: Path = args.copy_dir
    if not (copy_dir / "alprbox.db").is_file():
        raise CopyError(f"no restored copy in {copy_dir} (no alprbox.db)")
    try:
        query = Query(
            purpose=args.purpose,
            case_number=args.case,
            plate=args.plate,
            pattern=args.pattern,
            read_ids=args.read_ids or [],
            start=_when(args.start),
            end=_when(args.end),
            limit=args.limit,
        )
    except ValueError as err:
        raise CopyError(f"--start/--end: {err}") from err
    query.check()
    source = _key_source(args)
    log_key = load_log_key(args.log_key or default_log_key(), copy_dir, create=True)
    try:
        cipher = copy_cipher(copy_dir, source)
    except MasterKeyError as err:
        # A failed attempt is what an auditor most wants to see.
        head = append(copy_dir, log_key, "copy.search_refused",
                      {**query.as_detail(), "key": source.describe(), "why": str(err)})
        print(f"refused: {err}", file=sys.stderr)
        print(f"access log: record {head.seq}, head {head.hash}", file=sys.stderr)
        return 1
    try:
        result = search(copy_dir, cipher, query)
    except MasterKeyError as err:
        head = append(copy_dir, log_key, "copy.search_refused",
                      {**query.as_detail(), "key": source.describe(), "why": str(err)})
        print(f"refused: {err}", file=sys.stderr)
        return 1
    finally:
        cipher.detach()
    # Recorded before anything is shown: a search that cannot be logged shows nothing.
    head = append(copy_dir, log_key, "copy.searched", {
        **query.as_detail(),
        "key": source.describe(),
        "copy": result.copy_id,
        "shown": [r["id"] for r in result.reads],
        "unreadable": result.unreadable,
    })
    print(format_result(result, args.json))
    print(f"access log: record {head.seq}, head {head.hash}", file=sys.stderr)
    return 0


def _log(args: argparse.Namespace) -> int:
    import json

    log = args.copy_dir / LOG_NAME
    private: Ed25519PrivateKey | None = None
    if args.details or args.public_key is None:
        private = load_log_key(args.log_key or default_log_key(), args.copy_dir, create=False)
    if args.public_key is not None:
        public = args.public_key
    else:
        assert private is not None
        public = public_key_hex(private)
    report = verify_log(log, public, private_key=private if args.details else None)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        for entry in report.entries or []:
            line = (f"{entry['seq']:>5} {entry['at']} {entry['kind']:22} "
                    f"{entry['actor']}@{entry['host']}")
            if "detail" in entry:
                line += " " + json.dumps(entry["detail"], sort_keys=True)
            print(line)
        state = "intact" if report.intact else f"BROKEN: {report.problem}"
        print(f"{log}: {report.records} record(s) verified, {state}; head {report.head}")
    return 0 if report.intact else 1
