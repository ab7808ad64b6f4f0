"""Command-line parts of data leaving the box: ``alprbox evidence ...``, ``alprbox policy check``.

``appliance/__main__.py`` only registers these parsers and delegates here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .._cli_args import add_store_args, resolve_site
from .evidence import EvidenceError
from .evidence_cli import add_evidence_parser, cmd_evidence_verify, export_evidence
from .export_cli import ExportError, add_export_parser, run_export


def add_sharing_parsers(sub: Any) -> None:
    add_evidence_parser(sub)
    add_export_parser(sub)
    policy = sub.add_parser("policy", help="the posted usage and privacy policy")
    actions = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="flag drift between the posted policy and what the box enforces; 1 on drift"
    )
    add_store_args(check)
    check.add_argument("--json", action="store_true", help="findings as one JSON object")
    check.add_argument("--posted", type=Path, metavar="FILE",
                       help="the policy as posted (from 'alprbox policy show --json'): report "
                       "every section that differs from what the box enforces now")
    show = actions.add_parser("show", help="the usage and privacy policy generated from the "
                              "live config (what /policy shows)")
    add_store_args(show)
    show.add_argument("--json", action="store_true", help="the document as JSON (to post, and "
                      "to check later with policy check --posted)")


def run_evidence(args: argparse.Namespace) -> int:
    if args.evidence_command == "verify":
        return cmd_evidence_verify(args)
    from .._appliance import DB_NAME
    from .._crypto import MasterKeyError
    from .._storage.audit import AuditKeyError

    host, config, data_dir = resolve_site(args)
    if not (data_dir / DB_NAME).is_file():
        print(f"no store at {data_dir / DB_NAME}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(export_evidence(args, config, host, data_dir))
    except (EvidenceError, MasterKeyError, AuditKeyError, OSError) as err:
        print(f"evidence export refused: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print(f"evidence package written to {result['path']} ({result['files']} files); "
              f"manifest SHA-256 {result['manifest_sha256']}")
    return 0


def run_policy(args: argparse.Namespace) -> int:
    from .drift import run_policy_check

    host, config, data_dir = resolve_site(args)
    if args.policy_command == "show":
        from datetime import UTC, datetime

        from .policy_doc import policy_document, policy_text

        doc = policy_document(config.root, datetime.now(UTC).date())
        print(json.dumps(doc, indent=2) if args.json else policy_text(doc))
        return 0
    return int(asyncio.run(run_policy_check(args, config, host, data_dir)))


def run_export_command(args: argparse.Namespace) -> int:
    from .._crypto import MasterKeyError
    from .._storage.audit import AuditKeyError

    host, config, data_dir = resolve_site(args)
    try:
        result = asyncio.run(run_export(args, config, host, data_dir))
    except (ExportError, MasterKeyError, AuditKeyError) as err:
        print(f"export refused: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result))
    else:
        print(f"delivery {result['delivery_id']}: {result['reads']} read(s), {result['status']}")
    return 0 if not result["status"].startswith(("dead", "pending")) else 1
