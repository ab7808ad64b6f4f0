"""The outbox: the only road from the store to an exporter.

A delivery is queued only with an :class:`~.authority.Authorization` the policy gate gave (an
approved request or a standing approval), carries a payload the host built from what that
approval's scope allows, and is stored encrypted until delivered. One worker per exporter hands
deliveries over, oldest first:

* idempotent: the delivery id is the idempotency key, stable across retries;
* the gate is asked again before every attempt, so a revoked or expired approval stops
  deliveries still queued under it;
* failures are retried with exponential backoff and jitter (``base * 2**(n-1)``, capped, each
  delay drawn between half and all of it) and dead-lettered after ``max_attempts``;
* bounded: past ``max_pending`` queued deliveries new ones are refused and counted, so a dead
  destination never fills the disk, and nothing here is ever awaited by the read pipeline;
* audited: every delivery, refusal and dead letter is an audit event with the access-record
  fields of Civil Code 1798.90.52 (when, what data, recipient agency and organization, purpose).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from .._storage import Store
from .._storage.outbox import (
    OutboxCounts,
    OutboxFull,
    OutboxRecords,
    OutboxRow,
    decode_files,
    encode_files,
)
from ..base import Clock, Delivery, Exporter, Recipient
from ..settings import ExporterSettings
from .authority import Authorization, DeliveryAuthority, DeliveryRefused
from .payload import freeze, thaw

logger = logging.getLogger(__name__)

#: first retry delay and the longest one
BACKOFF_BASE = 2.0
BACKOFF_CAP = 3600.0
#: how often an idle worker looks again even without being woken (seconds of real time)
POLL_SECONDS = 5.0
#: delivered rows (ids only, payload dropped) are kept this long for idempotency and status
KEEP_DELIVERED = timedelta(days=30)
#: dead letters (payload kept for a retry) are kept at most this long by default; the box's
#: retention for non-hit reads, when shorter, applies (see :meth:`Outbox.prune`)
KEEP_DEAD = timedelta(days=30)
#: how often a worker prunes (seconds on the clock's monotonic time)
PRUNE_EVERY = 3600.0

__all__ = ["Outbox", "OutboxFull", "backoff_delay"]


def backoff_delay(attempt: int, rng: random.Random, *, base: float = BACKOFF_BASE,
                  cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped,
    with jitter so many boxes retrying one destination do not retry in step."""
    delay = min(cap, base * 2.0 ** (attempt - 1))
    return float(delay / 2 + rng.uniform(0, delay / 2))


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.pending = Gauge("alprbox_outbox_pending", "Deliveries waiting", ["exporter"],
                             registry=r)
        self.dead = Gauge("alprbox_outbox_dead", "Deliveries dead-lettered", ["exporter"],
                          registry=r)
        self.delivered = Counter("alprbox_outbox_delivered", "Deliveries handed over",
                                 ["exporter"], registry=r)
        self.failures = Counter("alprbox_outbox_failures", "Failed delivery attempts",
                                ["exporter"], registry=r)
        self.refused = Counter("alprbox_outbox_refused",
                               "Deliveries refused (outbox full or gate refused)",
                               ["exporter", "why"], registry=r)
        self.oldest = Gauge("alprbox_outbox_oldest_pending_seconds",
                            "Age of the oldest waiting delivery", ["exporter"], registry=r)


@dataclass
class ExporterState:
    """What the console shows per exporter."""

    name: str
    type: str
    counts: OutboxCounts = field(default_factory=OutboxCounts)
    last_error: str | None = None
    last_delivered_at: datetime | None = None
    failing_since: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "pending": self.counts.pending,
            "delivered": self.counts.delivered,
            "dead": self.counts.dead,
            "oldest_pending": self.counts.oldest_pending,
            "last_error": self.last_error,
            "last_delivered_at": self.last_delivered_at,
            "failing_since": self.failing_since,
        }


class Outbox:
    """Queue deliveries the gate authorized; deliver them with one worker per exporter."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        authority: DeliveryAuthority,
        exporters: Mapping[str, tuple[Exporter, ExporterSettings]],
        *,
        registry: CollectorRegistry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.records = OutboxRecords(store)
        self.clock = clock
        self.authority = authority
        self.exporters = dict(exporters)
        self.metrics = OutboxMetrics(registry or CollectorRegistry())
        self.rng = rng or random.Random()
        self.states = {
            name: ExporterState(name, settings.type) for name, (_, settings) in exporters.items()
        }
        self._wake = {name: asyncio.Event() for name in exporters}
        self._tasks: list[asyncio.Task[None]] = []
        #: how long a dead letter (with its payload) is kept; the site's retention shortens it
        self.keep_dead = KEEP_DEAD
        self._pruned_at: float | None = None

    # -- queueing ----------------------------------------------------------------------------

    async def enqueue(
        self,
        authorization: Authorization,
        exporter: str,
        payload: Mapping[str, Any],
        *,
        files: Mapping[str, bytes] | None = None,
        actor: str,
        key: str | None = None,
    ) -> str:
        """Queue ``payload`` for ``exporter`` under ``authorization``; returns the delivery id.

        ``key`` makes queueing idempotent (the same key queues once). Raises
        :class:`OutboxFull` (audited, counted) when the exporter's outbox is full, ``KeyError``
        for an exporter that is not configured.
        """
        if exporter not in self.exporters:
            raise KeyError(f"no exporter named {exporter!r} is configured")
        settings = self.exporters[exporter][1]
        delivery_id = (
            uuid.uuid5(uuid.NAMESPACE_URL, f"alprbox:{exporter}:{key}").hex
            if key
            else uuid.uuid4().hex
        )
        now = self.clock.now()
        body = {
            "recipient": _recipient_dict(authorization.recipient),
            "purpose": authorization.purpose,
            "case_number": authorization.case_number,
            "requested_by": authorization.requested_by,
            "actor": actor,
            "payload": thaw(payload),
            "files": encode_files(files or {}),
        }
        try:
            added = await self.records.add(
                delivery_id, exporter, authorization.approval_id, authorization.channel, now,
                body, max_pending=settings.max_pending,
            )
        except OutboxFull as err:
            self.metrics.refused.labels(exporter, "outbox full").inc()
            await self.store.record_event("export.refused", actor, {
                **_access(authorization, exporter, delivery_id, payload, now),
                "why": str(err),
            })
            raise
        if added:
            await self.store.record_event(
                "export.queued", actor, _access(authorization, exporter, delivery_id, payload, now)
            )
            await self._refresh_counts()
            self._wake[exporter].set()
        return delivery_id

    # -- delivering --------------------------------------------------------------------------

    async def deliver_due(self, exporter: str) -> int:
        """Hand every due delivery of ``exporter`` over once; returns how many were tried."""
        instance, settings = self.exporters[exporter]
        tried = 0
        while rows := await self.records.due(exporter, self.clock.now()):
            for row in rows:
                tried += 1
                await self._attempt(instance, settings, row)
        await self._refresh_counts()
        return tried

    async def _attempt(self, exporter: Exporter, settings: ExporterSettings,
                       row: OutboxRow) -> None:
        state = self.states[row.exporter]
        now = self.clock.now()
        try:
            authorization = await self.authority.authorize_delivery(
                row.approval_id, exporter=row.exporter, channel=row.channel, actor="outbox"
            )
        except DeliveryRefused as err:
            # A revoked or expired approval stops what is still queued under it, for good.
            await self.records.mark_failed(row, now, f"refused by the policy gate: {err}", None)
            self.metrics.refused.labels(row.exporter, "gate").inc()
            await self.store.record_event("export.refused", "outbox", {
                "delivery_id": row.id, "exporter": row.exporter, "approval_id": row.approval_id,
                "channel": row.channel, "at": now.isoformat(), "why": err.reason,
                "matched": list(err.matched),
            })
            return
        delivery = _delivery(row, authorization.recipient)
        try:
            await asyncio.wait_for(exporter.deliver(delivery), settings.timeout_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            await self._failed(settings, row, state, _describe(err, settings))
            return
        done = self.clock.now()
        await self.records.mark_delivered(row, done)
        self.metrics.delivered.labels(row.exporter).inc()
        if state.failing_since is not None:
            logger.info("Exporter '%s' delivers again", row.exporter)
        state.failing_since, state.last_error, state.last_delivered_at = None, None, done
        await self.store.record_event("export.delivered", row.body.get("actor", "outbox"), {
            **_access(authorization, row.exporter, row.id, row.body["payload"], done),
            "queued_at": row.created_at.isoformat(),
            "attempt": row.attempts + 1,
            "files": sorted(row.body.get("files", {})),
        })

    async def _failed(self, settings: ExporterSettings, row: OutboxRow, state: ExporterState,
                      error: str) -> None:
        now = self.clock.now()
        attempt = row.attempts + 1
        self.metrics.failures.labels(row.exporter).inc()
        if state.failing_since is None:
            # Logged once when a destination goes down, not on every retry.
            logger.warning("Exporter '%s' failed to deliver: %s (retrying with backoff)",
                           row.exporter, error)
            state.failing_since = now
        state.last_error = error
        if attempt >= settings.max_attempts:
            await self.records.mark_failed(row, now, error, None)
            logger.error("Exporter '%s': delivery %s dead-lettered after %d attempts: %s",
                         row.exporter, row.id, attempt, error)
            await self.store.record_event("export.dead_letter", "outbox", {
                "delivery_id": row.id, "exporter": row.exporter, "approval_id": row.approval_id,
                "channel": row.channel, "at": now.isoformat(), "attempts": attempt,
                "error": error,
            })
            return
        retry_at = now + timedelta(seconds=backoff_delay(attempt, self.rng))
        await self.records.mark_failed(row, now, error, retry_at)

    async def retry_dead(self, delivery_id: str, actor: str) -> bool:
        """Requeue a dead-lettered delivery (audited); False if it is not dead-lettered."""
        ok = await self.records.requeue(delivery_id, self.clock.now())
        if ok:
            row = await self.records.get(delivery_id)
            await self.store.record_event("export.requeued", actor, {"delivery_id": delivery_id})
            if row is not None and row.exporter in self._wake:
                self._wake[row.exporter].set()
            await self._refresh_counts()
        return ok

    async def prune(self) -> int:
        """Forget delivered rows after :data:`KEEP_DELIVERED` and dead letters after
        ``keep_dead``: the outbox must not keep data longer than the box's retention does."""
        now = self.clock.now()
        gone = await self.records.prune(now - KEEP_DELIVERED, now - self.keep_dead)
        self._pruned_at = self.clock.monotonic()
        if gone:
            logger.info("Outbox: %d finished deliveries pruned", gone)
            await self._refresh_counts()
        return gone

    async def _refresh_counts(self) -> None:
        counts = await self.records.counts()
        now = self.clock.now()
        for name, state in self.states.items():
            state.counts = counts.get(name, OutboxCounts())
            self.metrics.pending.labels(name).set(state.counts.pending)
            self.metrics.dead.labels(name).set(state.counts.dead)
            oldest = state.counts.oldest_pending
            self.metrics.oldest.labels(name).set(
                0 if oldest is None else max(0.0, (now - oldest).total_seconds())
            )

    # -- workers -----------------------------------------------------------------------------

    def wake(self, exporter: str | None = None) -> None:
        """Have a worker (or all) look for due deliveries now, e.g. after a clock moved."""
        for name, event in self._wake.items():
            if exporter is None or name == exporter:
                event.set()

    async def start(self, *, workers: bool = True) -> None:
        """Start one worker per exporter (without ``workers``, callers drive :meth:`deliver_due`
        themselves, as tests do with a fake clock)."""
        await self._refresh_counts()
        for name in self.exporters if workers else ():
            self._tasks.append(asyncio.create_task(self._worker(name), name=f"exporter-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for instance, _ in self.exporters.values():
            try:
                await instance.close()
            except Exception:
                logger.exception("Exporter %s failed to close", type(instance).__name__)

    async def _worker(self, name: str) -> None:
        wake = self._wake[name]
        while True:
            wake.clear()
            try:
                if (self._pruned_at is None
                        or self.clock.monotonic() - self._pruned_at > PRUNE_EVERY):
                    await self.prune()
                await self.deliver_due(name)
                next_due = await self.records.next_due(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store closing under us or a bug: never let it end the worker silently.
                logger.exception("Outbox worker for exporter '%s' failed; retrying", name)
                next_due = None
            wait = POLL_SECONDS
            if next_due is not None:
                wait = min(wait, max(0.0, (next_due - self.clock.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(wait, 0.01))

    def status(self) -> list[dict[str, Any]]:
        return [state.as_dict() for state in self.states.values()]


def _recipient_dict(recipient: Recipient) -> dict[str, str]:
    return {"agency": recipient.agency, "ori": recipient.ori,
            "organization": recipient.organization, "person": recipient.person}


def _delivery(row: OutboxRow, recipient: Recipient) -> Delivery:
    body = row.body
    return Delivery(
        id=row.id,
        exporter=row.exporter,
        approval_id=row.approval_id,
        channel=row.channel,
        recipient=recipient,
        purpose=body["purpose"],
        case_number=body["case_number"],
        created_at=row.created_at,
        payload=freeze(body["payload"]),
        files=freeze(decode_files(body.get("files", {}))),
        attempt=row.attempts + 1,
    )


def _data_elements(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What data went out, for the access record: read ids, plates and fields (never images)."""
    reads = payload.get("reads") or ()
    fields = sorted({k for r in reads for k in r}) if reads else []
    out: dict[str, Any] = {"kind": payload.get("kind", "")}
    if reads:
        out["read_ids"] = [r.get("read_id") for r in reads if r.get("read_id")]
        out["plates"] = sorted({r["plate"] for r in reads if r.get("plate")})
        out["fields"] = fields
    answers = payload.get("answers") or ()
    if answers:  # a partner's hit/no-hit query: the plates it asked about, and which hit
        out["plates"] = [a.get("plate") for a in answers]
        out["hit_plates"] = [a.get("plate") for a in answers if a.get("hit")]
    for key in ("plates_answered", "hits"):
        if key in payload:
            value = payload[key]
            out[key] = len(value) if isinstance(value, tuple | list) else value
    return out


def _access(authorization: Authorization, exporter: str, delivery_id: str,
            payload: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    """The 1798.90.52(a) fields: when, what data, who (agency and organization), purpose."""
    recipient = authorization.recipient
    return {
        "delivery_id": delivery_id,
        "exporter": exporter,
        "channel": authorization.channel,
        "approval_id": authorization.approval_id,
        "at": at.isoformat(),
        "data": _data_elements(payload),
        "recipient_agency": recipient.agency,
        "recipient_ori": recipient.ori,
        "organization": recipient.organization or recipient.agency,
        "recipient_person": recipient.person,
        "requested_by": authorization.requested_by,
        "purpose": authorization.purpose,
        "case_number": authorization.case_number,
    }


def _describe(err: BaseException, settings: ExporterSettings) -> str:
    if isinstance(err, TimeoutError):
        return f"timed out after {settings.timeout_seconds:g} s"
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}"[:500]
