"""``alprbox export``: queue what an approved sharing request covers for one exporter.

The approval (a written request approved on the console, or a standing approval) names the
plates and the time window; the host selects those reads, asks the gate (channel: the
exporter's), builds the payload from what the approval allows and queues it in the outbox. The
running box delivers it; ``--deliver-now`` delivers it from this command instead (a box that is
not running, or media plugged into it now).
"""

from __future__ import annotations

import argparse
import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._cli_args import add_store_args
from ..models import PlateRead
from .authority import Authorization

if TYPE_CHECKING:
    from .._config import SiteConfig
    from .._plugins import PluginHost
    from .._storage import Store


class ExportError(Exception):
    """The export cannot be queued; the message says why."""


def add_export_parser(sub: Any) -> None:
    export = sub.add_parser("export", help="queue what an approved sharing request covers for "
                            "an exporter (through the policy gate, audited)")
    add_store_args(export)
    export.add_argument("--approval", required=True, help="the approved request's id")
    export.add_argument("--exporter", required=True, help="the exporter's name in the config")
    export.add_argument("--reads", nargs="+", metavar="ID",
                        help="only these reads (still limited to what the approval covers)")
    export.add_argument("--deliver-now", action="store_true",
                        help="deliver from this command instead of the running box's outbox")
    export.add_argument("--json", action="store_true", help="result as one JSON object")


async def select_reads(store: Store, authorization: Authorization,
                       read_ids: list[str] | None, now: datetime) -> list[PlateRead]:
    """The reads the approval covers (and, if given, only ``read_ids``)."""
    scope = authorization.scope
    if read_ids:
        found = list((await store.reads_by_id(read_ids)).values())
    elif scope.plates:
        found = [r for plate in sorted(scope.plates) for r in await store.find_plate(plate, 10_000)]
    elif scope.start is not None:
        found = await store.reads_between(scope.start, scope.end or now)
    else:
        raise ExportError("the approval names no plates and no time window: name --reads")
    return [r for r in found if scope.allows_read(r.id, r.first_seen, r.text)]


async def run_export(args: argparse.Namespace, config: SiteConfig, host: PluginHost,
                     data_dir: Path) -> dict[str, Any]:
    from .._appliance import Appliance
    from .._policy.gate import gate_for
    from ..base import SystemClock
    from .authority import DeliveryRefused
    from .gate_adapter import GateAuthority
    from .outbox import Outbox
    from .payload import reads_payload
    from .service import build_exporters

    actor = getpass.getuser()
    appliance = Appliance(config=config, plugins=host, data_dir=data_dir, clock=SystemClock())
    store = await appliance.open_store()
    exporters = build_exporters(appliance)
    outbox = Outbox(store, appliance.clock,
                    GateAuthority(gate_for(store, config.root, appliance.clock)), exporters)
    try:
        if args.exporter not in exporters:
            raise ExportError(f"no exporter named {args.exporter!r} in the config "
                              f"(configured: {', '.join(exporters) or 'none'})")
        exporter = exporters[args.exporter][0]
        try:
            authorization = await outbox.authority.authorize_delivery(
                args.approval, exporter=args.exporter, channel=exporter.channel, actor=actor)
        except DeliveryRefused as err:
            raise ExportError(f"the policy gate refused: {err.reason}") from err
        reads = await select_reads(store, authorization, args.reads, datetime.now(UTC))
        if not reads:
            raise ExportError("no stored read is covered by the approval")
        payload, files = await reads_payload(store, authorization, reads)
        delivery_id = await outbox.enqueue(authorization, args.exporter, payload, files=files,
                                           actor=actor, key=f"export:{args.approval}:"
                                           + ",".join(sorted(r.id for r in reads)))
        status = "queued"
        if args.deliver_now:
            await outbox.deliver_due(args.exporter)
            row = await outbox.records.get(delivery_id)
            status = row.status if row is not None else "unknown"
            if row is not None and row.status != "delivered":
                status += f" ({row.last_error})"
        return {"delivery_id": delivery_id, "reads": len(reads), "status": status}
    finally:
        await outbox.stop()
        await store.close()
