"""``alprbox hotlist import|status|match``: operate on the lists of a configured data directory."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from .._appliance import Appliance
from .._config import SiteConfig
from .._plugins import PluginHost
from .records import entry_to_dict


async def run_hotlist_command(
    args: argparse.Namespace, config: SiteConfig, host: PluginHost, data_dir: Path
) -> int:
    box = Appliance(config=config, plugins=host, data_dir=data_dir)
    store = await box.open_store()
    try:
        manager = await box.start_hotlists(schedule=False)
        now = box.clock.now()
        if args.hotlist_command == "import":
            if args.source not in manager.status or args.source == "bolo":
                known = ", ".join(n for n in manager.status if n != "bolo") or "none configured"
                print(f"unknown list {args.source!r} (configured: {known})", file=sys.stderr)
                return 2
            try:
                data = args.file.read_bytes()
            except OSError as err:
                print(f"{args.file}: {err.strerror}", file=sys.stderr)
                return 2
            ok = await manager.import_data(args.source, data)
            status = manager.status[args.source]
            if args.json:
                print(json.dumps({"imported": ok, **status.as_dict(now)}))
            elif ok:
                dropped = "".join(f"; dropped {n} ({why})" for why, n in status.dropped.items())
                print(
                    f"{args.source}: {status.entries} entries active{dropped}; "
                    f"{status.skipped} records skipped"
                )
            else:
                print(
                    f"{args.source}: not imported, previous list kept: {status.error}",
                    file=sys.stderr,
                )
            return 0 if ok else 1
        if args.hotlist_command == "status":
            rows = [s.as_dict(now) for s in manager.status.values()]
            if args.json:
                for row in rows:
                    print(json.dumps(row))
            else:
                for row in rows:
                    age = "never" if row["age_hours"] is None else f"{row['age_hours']:.1f} h"
                    flag = " STALE" if row["stale"] else ""
                    print(
                        f"{row['name']:10} {row['type']:8} {row['entries']:>9} entries  "
                        f"age {age}{flag}" + (f"  error: {row['error']}" if row["error"] else "")
                    )
            return 0
        # match
        hits = manager.match(args.plate, args.state)
        await store.record_event(
            "hotlist.match",
            getpass.getuser(),
            {"plate": args.plate, "state": args.state, "hits": len(hits), "via": "cli"},
        )
        out = [
            {
                "list": m.hit.listed.list_name,
                "kind": m.hit.kind,
                "explanation": m.hit.explain(),
                "state_matched": m.hit.state_matched,
                "stale": m.stale,
                "entry": entry_to_dict(m.hit.listed.entry),
            }
            for m in hits
        ]
        if args.json:
            for hit in out:
                print(json.dumps(hit))
        else:
            for hit in out:
                print(
                    f"{hit['list']}: {hit['explanation']}"
                    + (" [STALE LIST]" if hit["stale"] else "")
                )
            if not out:
                print("no hit")
        return 0 if out else 1
    finally:
        await box.stop()
