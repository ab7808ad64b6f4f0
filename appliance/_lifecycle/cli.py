"""``alprbox keys|retention|hold``: key rotation, retention status and purge, legal holds.

Each command opens the store the way the box does (same key provider), does its work, records it
in the audit trail and closes the store. Run them while the appliance is stopped, or accept that
the running box is told to restart after a key rotation.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._cli_args import add_store_args, resolve_site
from .keyring import MasterKeyError


def _common(parser: argparse.ArgumentParser) -> None:
    add_store_args(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object")


def add_lifecycle_parsers(sub: Any) -> None:
    keys = sub.add_parser("keys", help="the master key and data keys (rotate, status)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    rotate = keys_sub.add_parser("rotate", help="re-wrap every data key under a new master key")
    _common(rotate)
    rotate.add_argument(
        "--new-passphrase",
        help="passphrase mode: the new passphrase as env:NAME or file:/path",
    )
    status = keys_sub.add_parser("status", help="where the master key is, data keys per class")
    _common(status)
    keygen = keys_sub.add_parser(
        "city-keygen", help="make a city key pair for reading replicas (keys.city_public_key)"
    )
    keygen.add_argument("--out", type=Path, required=True, help="private key file (0600)")

    retention = sub.add_parser("retention", help="what is kept until when; purge due data")
    ret_sub = retention.add_subparsers(dest="retention_command", required=True, metavar="ACTION")
    ret_status = ret_sub.add_parser("status", help="held data per class and day, holds, >6 months")
    _common(ret_status)
    purge = ret_sub.add_parser("purge", help="purge every class and day whose retention ended")
    _common(purge)
    purge.add_argument("--now", action="store_true", required=True, help="purge now")

    hold = sub.add_parser("hold", help="legal holds: add, release, list")
    hold_sub = hold.add_subparsers(dest="hold_command", required=True, metavar="ACTION")
    add = hold_sub.add_parser("add", help="hold reads (by id, or by plate and window)")
    _common(add)
    add.add_argument("--case", required=True, help="case or incident number")
    add.add_argument("--reason", required=True, help="why (evidence, discovery...)")
    add.add_argument("--until", help="end of the hold (ISO date/time, UTC); default: released")
    add.add_argument("--read", action="append", default=[], help="a read id (repeatable)")
    add.add_argument("--plate", help="hold this plate's reads within --start/--end")
    add.add_argument("--start", help="window start (ISO date/time, UTC)")
    add.add_argument("--end", help="window end (ISO date/time, UTC)")
    release = hold_sub.add_parser("release", help="release a hold: back to normal retention")
    _common(release)
    release.add_argument("hold_id", type=int)
    release.add_argument("--why", default="", help="why it is released")
    listing = hold_sub.add_parser("list", help="every hold")
    _common(listing)


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _open(args: argparse.Namespace) -> tuple[Any, Path]:
    from .._appliance import Appliance

    host, config, data_dir = resolve_site(args)
    return Appliance(config=config, plugins=host, data_dir=data_dir), data_dir


def run_lifecycle(args: argparse.Namespace) -> int:
    """Entry point of the three commands; exit 2 on a key problem or bad input."""
    if args.command == "keys" and args.keys_command == "city-keygen":
        from .city import generate_city_key

        try:
            public = generate_city_key(args.out)
        except FileExistsError:
            print(f"{args.out} exists; not overwriting a key", file=sys.stderr)
            return 2
        print(f"city private key written to {args.out} (keep it at the city, 0600)")
        print(f"sites set keys.city_public_key: {public}")
        return 0
    box, data_dir = _open(args)
    if not (data_dir / "alprbox.db").is_file():
        print(f"no store at {data_dir / 'alprbox.db'}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, box))
    except (MasterKeyError, ValueError, LookupError) as err:
        print(str(err), file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, box: Any) -> int:
    store = await box.open_store()
    actor = getpass.getuser()
    try:
        if args.command == "keys":
            return await _keys(args, box, store, actor)
        if args.command == "retention":
            return await _retention(args, box, store, actor)
        return await _hold(args, box, store, actor)
    finally:
        await store.close()


def _print(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, default=str) if args.json else text)


async def _keys(args: argparse.Namespace, box: Any, store: Any, actor: str) -> int:
    from ..settings import SecretRef
    from .keyprovider import key_provider

    root = box.config.root
    provider = key_provider(root.keys, box.data_dir, root.site.name)
    ring = store.cipher.ring
    if args.keys_command == "status":
        keys = ring.list_keys()
        classes: dict[str, int] = {}
        for _, klass, _, _ in keys:
            classes[klass] = classes.get(klass, 0) + 1
        data = {
            "master_key": provider.description,
            "keys_db": str(ring.path),
            "data_keys": classes,
            "shredded": len(ring.shredded()),
        }
        _print(args, data, "\n".join(f"{k}: {v}" for k, v in data.items()))
        return 0
    new_passphrase = SecretRef(args.new_passphrase).get() if args.new_passphrase else None
    count = await asyncio.to_thread(provider.rotate, ring, new_passphrase)
    await store.record_event(
        "keys.rotated", actor, {"data_keys": count, "master_key": provider.description}
    )
    _print(
        args,
        {"rotated": count, "master_key": provider.description},
        f"re-wrapped {count} data keys under a new master key ({provider.description}); "
        "back up the new key now: the old one no longer opens this store",
    )
    return 0


async def _retention(args: argparse.Namespace, box: Any, store: Any, actor: str) -> int:
    from .service import LifecycleService
    from .status import retention_status

    settings = box.config.root.retention
    now = box.clock.now()
    if args.retention_command == "status":
        report = await retention_status(store, settings, now)
        await store.record_event("retention.status_viewed", actor, {"via": "cli"})
        if args.json:
            print(json.dumps(report))
            return 0
        print(f"retention policy {report['policy_version']} at {report['at']}")
        for klass, info in report["classes"].items():
            days = info["retention_days"]
            print(f"{klass}: kept {days if days is not None else 'indefinitely'} days")
            for day in info.get("days", []):
                held = f", {day['held']} held" if day["held"] else ""
                print(f"  {day['day']}: {day['items']}{held}, purge on {day['purge_on']}")
        for hold in report["holds"]:
            state = "active" if hold["active"] else "released"
            print(f"hold {hold['id']} case {hold['case_number']} ({state}): {hold['reads']} reads,"
                  f" until {hold['until'] or 'released'}")
        for old in report["older_than_six_months"]:
            print(f"older than six months: {old['class']} {old['day']} ({old['items']}):"
                  f" {old['reason']}")
        return 0
    service = LifecycleService(store, settings, box.clock)
    proofs = await service.tick(now, actor)
    data = [json.loads(p.body()) | {"signature": p.signature.hex()} for p in proofs]
    _print(args, data, "\n".join(
        f"purged {p.klass} {p.day}: {p.rows} reads, {p.images} images, {p.held} held"
        for p in proofs
    ) or "nothing due")
    return 0


async def _hold(args: argparse.Namespace, box: Any, store: Any, actor: str) -> int:
    from .holds import HoldError, Holds

    holds = Holds(store)
    now = box.clock.now()
    try:
        if args.hold_command == "add":
            hold = await holds.add(
                case_number=args.case,
                reason=args.reason,
                actor=actor,
                now=now,
                until=_when(args.until),
                read_ids=args.read or None,
                plate=args.plate,
                start=_when(args.start),
                end=_when(args.end),
            )
            _print(args, hold.as_dict(), f"hold {hold.id} placed on {hold.reads} read(s)")
        elif args.hold_command == "release":
            hold = await holds.release(args.hold_id, actor, now, args.why)
            _print(args, hold.as_dict(), f"hold {hold.id} released: its reads return to "
                   "normal retention")
        else:
            listed = await holds.list()
            await store.record_event("hold.listed", actor, {"via": "cli"})
            _print(args, [h.as_dict() for h in listed], "\n".join(
                f"{h.id}\t{h.case_number}\t{h.reads} reads\t"
                f"{'released' if h.released_at else 'active'}\t{h.reason}"
                for h in listed
            ) or "no holds")
    except HoldError as err:
        print(str(err), file=sys.stderr)
        return 2
    return 0


__all__ = ["add_lifecycle_parsers", "run_lifecycle"]
