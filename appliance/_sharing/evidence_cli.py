"""``alprbox evidence export|verify``: evidence packages through the policy gate, and their check.

Export asks the gate (channel ``evidence``) with the requesting agency, person, purpose and case
number; only an allowed decision builds the package, and the export is audited
(``evidence.exported``) with the access-record fields of Civil Code 1798.90.52 and the
manifest's SHA-256. Verify needs no store and no key file: only the package and, ideally, the
box's published public key.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._cli_args import add_store_args
from .evidence import (
    MANIFEST,
    EvidenceError,
    build_package,
    load_public_key,
    verify_package,
    write_package,
)

if TYPE_CHECKING:
    from .._config import SiteConfig
    from .._plugins import PluginHost


def add_evidence_parser(sub: Any) -> None:
    evidence = sub.add_parser("evidence", help="evidence packages: export through the gate, verify")
    actions = evidence.add_subparsers(dest="evidence_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="export reads as a signed evidence package")
    add_store_args(export)
    export.add_argument("--case-number", help="the case (default: the legal hold's case)")
    export.add_argument("--reads", nargs="+", metavar="ID", help="read ids")
    export.add_argument("--hold", type=int, metavar="HOLD_ID",
                        help="export every read under this legal hold (alprbox hold list)")
    export.add_argument("--out", type=Path, required=True,
                        help="new directory, or a file ending in .zip")
    export.add_argument("--purpose", required=True, help="one of the site's authorized purposes")
    export.add_argument("--agency", help="requesting agency (default: the site name)")
    export.add_argument("--ori", help="requesting agency's ORI")
    export.add_argument("--approval", help="sharing request / standing approval id, if any")
    export.add_argument("--json", action="store_true", help="result as one JSON object")
    verify = actions.add_parser("verify", help="check every hash and the signature of a package")
    verify.add_argument("path", type=Path)
    verify.add_argument("--public-key", type=Path, help="the box's published key (PEM or hex)")
    verify.add_argument("--json", action="store_true", help="the report as one JSON object")


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    key = None
    if args.public_key is not None:
        try:
            key = load_public_key(args.public_key.read_bytes())
        except (OSError, EvidenceError) as err:
            print(f"cannot use public key {args.public_key}: {err}", file=sys.stderr)
            return 2
    report = verify_package(args.path, key)
    if args.json:
        print(json.dumps(report.as_dict()))
    elif report.ok:
        print(f"evidence package OK: {report.problem}; case {report.case_number}")
        print(f"signing key fingerprint {report.public_key_fingerprint}"
              + ("" if key else " (from the package: compare it with the box's published key)"))
    else:
        print(f"evidence package NOT OK: {report.problem}")
    return 0 if report.ok else 1


async def export_evidence(
    args: argparse.Namespace, config: SiteConfig, host: PluginHost, data_dir: Path
) -> dict[str, Any]:
    """Ask the gate, build, write and audit the package; returns what the CLI prints."""
    from .._appliance import DB_NAME, Appliance
    from .._policy.gate import PolicyGate, ShareRequest, ShareScope
    from .._storage.audit import load_signing_key, signing_key_path
    from ..base import SystemClock

    actor = getpass.getuser()
    clock = SystemClock()
    store = await Appliance(config=config, plugins=host, data_dir=data_dir).open_store()
    try:
        read_ids, case_number = await _chosen_reads(store, args)
        args.reads, args.case_number = read_ids, case_number
        reads = await store.reads_by_id(list(args.reads))
        agency = args.agency or config.root.site.name
        request = ShareRequest(
            agency=agency,
            ori=args.ori,
            person=actor,
            purpose=args.purpose,
            case_number=args.case_number,
            channel="evidence",
            scope=ShareScope(
                plates=tuple(sorted({r.text for r in reads.values()})),
                description=f"evidence package of {len(args.reads)} read(s) to {args.out.name}",
            ),
            reason=f"evidence for case {args.case_number}",
        )
        gate = PolicyGate(store, config.root, clock)
        decision = await gate.check(request, actor, via="cli", approval_id=args.approval)
        if not decision.allowed:
            raise EvidenceError("the policy gate refused: " + "; ".join(decision.reasons))
        key = load_signing_key(signing_key_path(data_dir / DB_NAME), create=True)
        assert key is not None
        approval = {"approval_id": decision.approval_id or args.approval,
                    "policy_version": decision.policy_version, "reasons": decision.reasons,
                    "matched": decision.matched}
        if args.hold is not None:
            approval["legal_hold"] = args.hold
        files = await build_package(
            store, key, read_ids=list(args.reads), case_number=args.case_number,
            purpose=args.purpose, exported_by=actor, organization=agency, approval=approval,
            site=config.root.site.name, now=clock.now(),
        )
        written = write_package(files, args.out)
        manifest_sha = hashlib.sha256(files[MANIFEST]).hexdigest()
        await store.record_event("evidence.exported", actor, {
            "at": clock.now().isoformat(),
            "organization": agency,
            "recipient_agency": agency,
            "purpose": args.purpose,
            "case_number": args.case_number,
            "data": {"read_ids": list(args.reads),
                     "plates": sorted({r.text for r in reads.values()}),
                     "files": len(files)},
            "approval": approval,
            "destination": str(written),
            "manifest_sha256": manifest_sha,
        })
        return {"ok": True, "path": str(written), "files": len(files),
                "manifest_sha256": manifest_sha}
    finally:
        await store.close()


async def _chosen_reads(store: Any, args: argparse.Namespace) -> tuple[list[str], str]:
    """The read ids named with ``--reads`` and/or under ``--hold``, and the case number."""
    read_ids = list(args.reads or [])
    case_number = args.case_number or ""
    if args.hold is not None:
        from .._lifecycle.holds import Holds

        hold = await Holds(store).get(args.hold)
        if hold is None:
            raise EvidenceError(f"no legal hold {args.hold}")
        held = await store.query(lambda c: [row[0] for row in c.execute(
            "SELECT read_id FROM hold_items WHERE hold_id = ? ORDER BY read_id",
            (args.hold,))])
        read_ids += [i for i in held if i not in read_ids]
        case_number = case_number or hold.case_number
    if not read_ids:
        raise EvidenceError("name the reads to export: --reads ID... or --hold HOLD_ID")
    if not case_number:
        raise EvidenceError("name the case: --case-number")
    return read_ids, case_number
