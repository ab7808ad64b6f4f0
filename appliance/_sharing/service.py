"""The box's ways out at run time: exporter instances, their outbox and the hit stream.

:func:`start_sharing` is what the appliance calls after its store is open. Exporters are built
from the site config with a :class:`~appliance.base.PluginContext` (logger, their own data dir,
clock: no store, no keys, no host) and driven only by the outbox. An exporter configured with
``stream: hits`` and a standing ``approval`` gets each hot-list hit queued under that approval,
after the gate says the approval still covers it; the read pipeline never waits for any of it
(the stream listens on the alert bus with a lossless subscription: publishing never blocks,
and a burst of hits waits in memory for the outbox instead of being dropped).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from .._hotlist.alerts import Alert
from .._storage.outbox import OutboxFull
from ..base import Exporter
from ..settings import ExporterSettings
from .authority import DeliveryAuthority, DeliveryRefused
from .outbox import Outbox, backoff_delay
from .partner import CHANNEL as PARTNER_CHANNEL
from .partner import run_partner_query
from .payload import reads_payload

if TYPE_CHECKING:
    from .._appliance import Appliance

logger = logging.getLogger(__name__)


@dataclass
class SharingRuntime:
    outbox: Outbox
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.outbox.stop()


def build_exporters(appliance: Appliance) -> dict[str, tuple[Exporter, ExporterSettings]]:
    """One instance per configured exporter; one that fails to build is logged and left out."""
    built: dict[str, tuple[Exporter, ExporterSettings]] = {}
    for settings in appliance.config.exporters:
        cls = appliance.plugins.type_for("exporter", settings.type)
        if cls is None:
            continue
        if cls.deliver is Exporter.deliver:
            # An exporter written for 0.1's send(read) would fail every delivery: say so once.
            logger.error("Exporter '%s' (%s) does not implement deliver(delivery) (send(read) "
                         "was replaced in 0.2): it is not started", settings.name, cls.__name__)
            continue
        try:
            # No hardware either: an exporter gets a logger, its own directory and the clock.
            context = replace(appliance.context("exporters", settings.name), hardware=None)
            built[settings.name] = (cls(settings, context), settings)
        except Exception:
            logger.exception("Exporter '%s' (%s) could not be created", settings.name,
                             cls.__name__)
    return built


def default_authority(appliance: Appliance) -> DeliveryAuthority:
    from .._policy.gate import gate_for
    from .gate_adapter import GateAuthority

    assert appliance.store is not None
    return GateAuthority(gate_for(appliance.store, appliance.config.root, appliance.clock))


async def start_sharing(
    appliance: Appliance, authority: DeliveryAuthority | None = None, *, workers: bool = True
) -> SharingRuntime:
    assert appliance.store is not None
    outbox = Outbox(
        appliance.store,
        appliance.clock,
        authority or default_authority(appliance),
        build_exporters(appliance),
        registry=appliance.metrics.registry,
    )
    read_days = getattr(appliance.config.root.retention, "read_days", None)
    if isinstance(read_days, int):
        # A dead letter holds reads: never longer than non-hit reads themselves are kept.
        outbox.keep_dead = min(outbox.keep_dead, timedelta(days=read_days))
    await outbox.start(workers=workers)
    runtime = SharingRuntime(outbox)
    streaming = [
        (name, settings) for name, (_, settings) in outbox.exporters.items()
        if settings.stream == "hits" and settings.approval
    ]
    if workers:
        for name, (exporter, settings) in outbox.exporters.items():
            if exporter.channel == PARTNER_CHANNEL and settings.approval:
                runtime._tasks.append(asyncio.create_task(
                    _partner_loop(appliance, outbox, name, settings),
                    name=f"exporter-{name}-queries"))
    if streaming:
        alerts = appliance.alert_bus.subscribe(lossless=True)
        runtime._tasks.append(asyncio.create_task(
            _stream_hits(appliance, outbox, alerts, streaming), name="exporter-hit-stream"))
    return runtime


async def _partner_loop(appliance: Appliance, outbox: Outbox, name: str,
                        settings: ExporterSettings) -> None:
    """Answer the partner's list every ``query_minutes`` (its settings; default 15)."""
    every = float(getattr(settings, "query_minutes", 15)) * 60
    failures = 0
    while True:
        try:
            await run_partner_query(outbox, name, appliance.clock.now())
            failures = 0
        except asyncio.CancelledError:
            raise
        except Exception as err:
            failures += 1
            if failures == 1:
                logger.warning("Partner exporter '%s': cannot fetch the partner's list: %s",
                               name, err)
        delay = every if not failures else min(every, backoff_delay(failures, outbox.rng))
        await asyncio.sleep(delay)


async def _stream_hits(
    appliance: Appliance,
    outbox: Outbox,
    alerts: asyncio.Queue[Alert],
    streaming: list[tuple[str, ExporterSettings]],
) -> None:
    store = appliance.store
    assert store is not None
    try:
        while True:
            alert = await alerts.get()
            if alert.covert:
                continue  # covert hits are for privileged eyes on this box only
            for name, settings in streaming:
                try:
                    await queue_hit(outbox, name, settings, alert, store)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("Hit %s could not be queued for exporter '%s'", alert.id,
                                     name)
    finally:
        appliance.alert_bus.unsubscribe(alerts)


async def queue_hit(outbox: Outbox, name: str, settings: ExporterSettings, alert: Alert,
                    store: object) -> str | None:
    """Queue one hit for ``name`` under its standing approval; None when the gate refuses."""
    from .._storage import Store

    assert isinstance(store, Store) and settings.approval
    exporter = outbox.exporters[name][0]
    try:
        authorization = await outbox.authority.authorize_delivery(
            settings.approval, exporter=name, channel=exporter.channel, actor="system")
    except DeliveryRefused as err:
        outbox.metrics.refused.labels(name, "gate").inc()
        logger.warning("Exporter '%s': hit not shared: %s", name, err.reason)
        return None
    if "hits" not in authorization.scope.streams:
        outbox.metrics.refused.labels(name, "scope").inc()
        logger.warning("Exporter '%s': approval %s does not cover streaming hits", name,
                       settings.approval)
        return None
    read = alert.read or (await store.reads_by_id([alert.read_id])).get(alert.read_id)
    if read is None:
        return None
    payload, files = await reads_payload(store, authorization, [read])
    if not payload["reads"]:
        return None  # outside the approval's plates or window
    payload = {**payload, "kind": "hit", "alert_id": alert.id, "list": alert.list_name,
               "match": alert.kind}
    try:
        return await outbox.enqueue(authorization, name, payload, files=files, actor="system",
                                    key=f"hit:{alert.id}")
    except OutboxFull:
        logger.warning("Exporter '%s': outbox full, hit %s not queued", name, alert.id)
        return None
