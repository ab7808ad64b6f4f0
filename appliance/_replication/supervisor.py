"""The box's replication: one supervised litestream process per database, gated and reported.

``alprbox.db`` always gets its own process; ``keys.db`` (the wrapped day keys) gets a second one
with its short snapshot retention, unless the site escrows it instead. Each target is put to the
policy gate before litestream is started: replication is hosting by the city's own storage
(Civil Code 1798.90.55(b)), and the gate refuses a denylisted or unlisted host.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .binary import LitestreamMissing, find_litestream
from .litestream_config import LitestreamJob, runtime_dir
from .process import LitestreamProcess, ReplicaStatus
from .segment_store import segment_store
from .segments import SegmentShipper
from .settings import ReplicationSettings, duration_seconds

if TYPE_CHECKING:
    from .._appliance import Appliance

logger = logging.getLogger(__name__)

MAIN_DB = "alprbox.db"
KEYS_DB = "keys.db"


def jobs_for(settings: ReplicationSettings, data_dir: Path) -> list[LitestreamJob]:
    """The databases to replicate and how: the main store, and keys.db unless escrowed."""
    assert settings.target is not None
    jobs = [
        LitestreamJob(MAIN_DB, data_dir / MAIN_DB, settings.target, settings.sync_interval,
                      settings.snapshot)
    ]
    if settings.keys.mode == "replicate":
        jobs.append(
            LitestreamJob(KEYS_DB, data_dir / KEYS_DB, settings.target, settings.sync_interval,
                          settings.keys.snapshot)
        )
    return jobs


async def gate_replication_target(appliance: Appliance, url: str) -> str | None:
    """Ask the policy gate (issue 7) whether ``url`` may receive replicas; the refusal's
    reasons, or None when allowed.

    A gate without ``check_replication_target`` (an older build) lets the target through
    and says so in the log.
    """
    if appliance.store is None:
        return None
    try:
        from .._policy.gate import PolicyGate
    except ImportError:
        logger.warning("No policy gate installed: replication target %s used unchecked", url)
        return None
    gate = PolicyGate(appliance.store, appliance.config.root, appliance.clock)
    try:
        decision = await gate.check_replication_target(url)
    except NotImplementedError:
        logger.warning(
            "The policy gate does not check replication targets yet: %s used unchecked", url
        )
        return None
    if decision.allowed:
        return None
    return "; ".join(decision.reasons) or "refused by the policy gate"


@dataclass
class ReplicationSupervisor:
    """Every litestream process of one appliance, and what the console shows about them."""

    settings: ReplicationSettings
    processes: list[LitestreamProcess] = field(default_factory=list)
    #: databases not replicated, with why (escrowed, refused by the gate, not present yet)
    idle: list[ReplicaStatus] = field(default_factory=list)
    problem: str | None = None
    run_dir: Path | None = None
    shipper: SegmentShipper | None = None
    shipper_stopped: bool = False

    def statuses(self) -> list[ReplicaStatus]:
        shipped = [self.shipper.status] if self.shipper is not None else []
        return [p.status for p in self.processes] + shipped + self.idle

    @property
    def healthy(self) -> bool:
        return self.problem is None and all(
            s.ok or s.state in ("escrow", "absent", "unsupported") for s in self.statuses()
        )

    def health(self) -> dict[str, Any]:
        """The ``replication`` part of ``/healthz``: states and reasons, never row data."""
        if not self.settings.enabled:
            return {"enabled": False}
        return {
            "enabled": True,
            "ok": self.healthy,
            "problem": self.problem,
            "databases": {
                s.database: {"state": s.state, "lag_seconds": s.as_dict()["lag_seconds"],
                             "reason": s.reason, "local_backlog_bytes": s.local_backlog_bytes}
                for s in self.statuses()
            },
        }

    async def start(self, appliance: Appliance) -> None:
        settings = self.settings
        if not settings.enabled or settings.target is None:
            return
        try:
            binary = find_litestream(settings.litestream)
        except LitestreamMissing as err:
            self.problem = str(err)
            logger.error("Replication is enabled but cannot run: %s", err)
            return
        self.run_dir = runtime_dir()
        appliance.metrics.registry.register(ReplicationCollector(self))
        for job in jobs_for(settings, appliance.data_dir):
            refusal = await gate_replication_target(appliance, job.gate_url())
            if refusal is not None:
                logger.error("Replication of %s to %s refused by the policy gate: %s",
                             job.name, job.replica_url(), refusal)
                self.idle.append(ReplicaStatus(job.name, job.replica_url(), state="refused",
                                               reason=refusal))
                continue
            if not job.db_path.exists():
                self.idle.append(ReplicaStatus(job.name, job.replica_url(), state="absent",
                                               reason=f"{job.db_path} does not exist (yet)"))
                continue
            process = LitestreamProcess(
                job, binary, self.run_dir,
                behind_after=duration_seconds(settings.behind_after),
                pid_file=appliance.data_dir / ".replication" / f"{job.name}.pid",
            )
            process.start()
            self.processes.append(process)
            logger.info("Replicating %s to %s", job.name, job.replica_url())
        if any(s.database == MAIN_DB and s.state == "refused" for s in self.idle):
            self.idle.append(ReplicaStatus("segments", settings.target.url(), state="refused",
                                           reason="the policy gate refused this target"))
        else:
            self._start_shipper(appliance)
        if settings.keys.mode == "escrow":
            self.idle.append(ReplicaStatus(
                KEYS_DB, "not replicated (escrow)", state="escrow",
                reason="keys.db is escrowed by city IT, not replicated"))

    def _start_shipper(self, appliance: Appliance) -> None:
        """Closed image segment files go to the target beside the databases, once each."""
        store, target = appliance.store, self.settings.target
        segments = getattr(store, "segments", None)
        if store is None or target is None or segments is None:
            return
        destination = segment_store(target)
        if destination is None:
            self.idle.append(ReplicaStatus(
                "segments", target.url(), state="unsupported",
                reason=f"image segments are not shipped to {target.type} targets yet"))
            return
        self.shipper = SegmentShipper(store, segments.folder, destination,
                                      duration_seconds(self.settings.segment_interval),
                                      duration_seconds(self.settings.segment_roll))
        self.shipper.start()

    async def stop_shipping(self) -> None:
        """Ship what closed just before stopping, then stop; needs the store still open."""
        if self.shipper is not None:
            await self.shipper.stop()
            self.shipper_stopped = True

    async def stop(self) -> None:
        """Stop shipping segments and every litestream process (each pushes what it has)."""
        if self.shipper is not None and not self.shipper_stopped:
            await self.shipper.stop()
        for process in self.processes:
            await process.stop()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)



class ReplicationCollector:
    """Replication state for ``/metrics``, read from the supervisor at each scrape."""

    def __init__(self, supervisor: ReplicationSupervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("alprbox_replication_up", "1 while litestream runs and the "
                               "target acknowledges syncs", labels=["database", "state"])
        lag = GaugeMetricFamily("alprbox_replication_lag_seconds",
                                "Seconds since the target last acknowledged a sync",
                                labels=["database"])
        restarts = CounterMetricFamily("alprbox_replication_restarts",
                                       "Times litestream was restarted", labels=["database"])
        errors = GaugeMetricFamily("alprbox_replication_sync_errors",
                                   "litestream's own sync error count", labels=["database"])
        backlog = GaugeMetricFamily("alprbox_replication_local_backlog_bytes",
                                    "litestream's change files kept beside the database",
                                    labels=["database"])
        for s in self.supervisor.statuses():
            up.add_metric([s.database, s.state], 1 if s.ok else 0)
            if s.lag_seconds is not None:
                lag.add_metric([s.database], s.lag_seconds)
            restarts.add_metric([s.database], s.restarts)
            errors.add_metric([s.database], s.sync_errors)
            if s.local_backlog_bytes is not None:
                backlog.add_metric([s.database], s.local_backlog_bytes)
        yield from (up, lag, restarts, errors, backlog)
