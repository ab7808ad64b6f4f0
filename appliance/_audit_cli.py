"""``alprbox audit prune``, ``alprbox audit public-key`` and ``alprbox audit verify --public-key``.

``verify --public-key FILE`` checks a database (the box's, or a replica restored at the city)
against a key the city holds, not the one stored in the database or beside it: whoever could
rewrite the database and its stored key still cannot make it verify. ``public-key`` prints the
box's key as PEM for the city to keep (do that once, at installation).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from ._cli_args import add_store_args, resolve_site


def add_audit_parsers(audit_sub: Any) -> None:
    """The ``prune`` and ``public-key`` actions under ``alprbox audit``."""
    prune = audit_sub.add_parser(
        "prune", help="remove audit records older than a date (≥ 365 days), leaving a signed "
                      "checkpoint so the rest still verifies",
    )
    add_store_args(prune)
    prune.add_argument("--before", required=True, help="YYYY-MM-DD (UTC midnight)")
    prune.add_argument("--retention-days", type=int, default=365,
                       help="the site's audit retention; at least 365 (CJIS 5.4.7)")
    key = audit_sub.add_parser("public-key", help="print the audit signing public key (PEM)")
    add_store_args(key)
    key.add_argument("--out", type=Path, help="write it here (default stdout)")




def verify_with_public_key(args: argparse.Namespace) -> int:
    """``audit verify --public-key FILE``: read-only, trusting only the given key."""
    from ._appliance import DB_NAME
    from ._storage.audit import load_public_key, verify_database

    try:
        key = load_public_key(args.public_key)
    except (OSError, ValueError) as err:
        print(f"cannot use the public key: {err}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or resolve_site(args)[2]
    database = data_dir / DB_NAME
    if not database.is_file():
        print(f"no store at {database}", file=sys.stderr)
        return 2
    report = verify_database(database, key, key_source=f"given key {args.public_key}")
    if args.json:
        print(json.dumps(report.as_dict()))
    elif report.intact:
        print(f"audit trail intact: {report.reason}")
        print(f"signing key {report.public_key} (from the {report.key_source})")
    else:
        where = "" if report.first_broken_id is None else f" at record {report.first_broken_id}"
        print(f"audit trail BROKEN{where}: {report.reason}")
    return 0 if report.intact else 1


def run(args: argparse.Namespace) -> int:
    if args.audit_command == "prune":
        return _prune(args)
    return _public_key(args)


def _prune(args: argparse.Namespace) -> int:
    from ._appliance import DB_NAME, Appliance
    from ._storage.audit import AuditPruneRefused, PruneResult, prune_audit

    try:
        before = datetime.combine(date.fromisoformat(args.before), time(), UTC)
    except ValueError:
        print(f"--before must be YYYY-MM-DD, not {args.before!r}", file=sys.stderr)
        return 2
    host, config, data_dir = resolve_site(args)
    if not (data_dir / DB_NAME).is_file():
        print(f"no store at {data_dir / DB_NAME}", file=sys.stderr)
        return 2

    async def go() -> PruneResult:
        store = await Appliance(config=config, plugins=host, data_dir=data_dir).open_store()
        try:
            return await prune_audit(store, before, actor=f"{getpass.getuser()} (cli)",
                                     retention_days=args.retention_days)
        finally:
            await store.close()

    try:
        result = asyncio.run(go())
    except AuditPruneRefused as err:
        print(f"prune refused: {err}", file=sys.stderr)
        return 1
    if result.through_id is None:
        print(f"nothing to prune before {before.date().isoformat()} (recorded as event "
              f"{result.event_id})")
    else:
        print(f"pruned {result.pruned} audit record(s) through record {result.through_id}; "
              f"signed checkpoint stored; recorded as event {result.event_id}")
    return 0


def _public_key(args: argparse.Namespace) -> int:
    import sqlite3

    from cryptography.hazmat.primitives import serialization

    from ._appliance import DB_NAME
    from ._storage.audit import (
        AuditKeyError,
        load_signing_key,
        public_key_pem,
        signing_key_path,
    )

    data_dir = resolve_site(args)[2]
    try:
        key = load_signing_key(signing_key_path(data_dir / DB_NAME), create=False)
    except AuditKeyError as err:
        print(str(err), file=sys.stderr)
        return 2
    if key is not None:
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
    else:
        # A replica without the key file: the key stored in it (compare it with the city's copy).
        database = data_dir / DB_NAME
        if not database.is_file():
            print(f"no signing key and no store in {data_dir}", file=sys.stderr)
            return 2
        conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'audit_public_key'").fetchone()
        finally:
            conn.close()
        if row is None:
            print("no audit signing key recorded yet", file=sys.stderr)
            return 2
        raw = bytes(row[0])
    pem = public_key_pem(raw)
    if args.out:
        args.out.write_text(pem)
        print(f"wrote {args.out} (key {raw.hex()})", file=sys.stderr)
    else:
        print(pem, end="")
    return 0
