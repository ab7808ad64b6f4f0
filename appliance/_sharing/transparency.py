"""The public transparency report, computed from the box's own records on every request.

Nothing here is typed in by a person: counts come from the reads, alerts and audit tables, the
policy from the live configuration. Only counts leave this module, never a plate, a location, a
camera position or a person's name, and small counts are suppressed (1–4 shown as "<5") so a
month with one hit cannot point at one person.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._config import RootConfig
    from .._storage import Store

#: counts from 1 to SUPPRESS_BELOW - 1 are shown as "<SUPPRESS_BELOW"
SUPPRESS_BELOW = 5
#: audit events read per kind for the counts
EVENT_SCAN = 1_000_000

#: hit outcomes as the public report names them, from the alert lifecycle's final steps
_REJECT_OUTCOMES = {
    "misread (characters do not match)": "misread",
    "state mismatch": "misread (state)",
    "vehicle mismatch (make, model or colour)": "vehicle mismatch",
    "record cleared or no longer valid": "record no longer valid",
    "vehicle not located": "vehicle not located",
    "duplicate alert": "duplicate",
}


def suppress(count: int, below: int = SUPPRESS_BELOW) -> str:
    """A count as published: exact from ``below``, "<5" under it (but 0 stays 0)."""
    if 0 < count < below:
        return f"<{below}"
    return str(count)


@dataclass
class Table:
    """Counts by month (YYYY-MM) and by a label, unsuppressed until :meth:`published`."""

    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, month: str, label: str = "total", n: int = 1) -> None:
        self.counts[month][label] += n

    def labels(self) -> list[str]:
        return sorted({label for c in self.counts.values() for label in c})

    def published(self, below: int = SUPPRESS_BELOW) -> list[dict[str, Any]]:
        labels = self.labels()
        return [
            {"month": month,
             **{label: suppress(self.counts[month][label], below) for label in labels}}
            for month in sorted(self.counts, reverse=True)
        ]


@dataclass
class TransparencyReport:
    reads: Table
    hits: Table
    outcomes: Table
    searches: Table
    sharing: Table
    exports: Table
    purges: Table

    def published(self, below: int = SUPPRESS_BELOW) -> dict[str, Any]:
        return {name: {"labels": table.labels(), "rows": table.published(below)}
                for name, table in vars(self).items()}


async def _events(store: Store, kinds: Iterable[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for kind in kinds:
        out.extend(await store.events(EVENT_SCAN, kind=kind))
    return out


async def _event_kinds(store: Store) -> list[str]:
    rows = await store.query(lambda c: c.execute("SELECT DISTINCT kind FROM events").fetchall())
    return [r[0] for r in rows]


async def build_report(store: Store) -> TransparencyReport:
    report = TransparencyReport(Table(), Table(), Table(), Table(), Table(), Table(), Table())
    for month, n in await store.query(lambda c: c.execute(
        "SELECT substr(seen_at, 1, 7), count(*) FROM reads GROUP BY 1").fetchall()):
        report.reads.add(month, "reads", n)
    for month, state, n in await store.query(lambda c: c.execute(
        "SELECT substr(created_at, 1, 7), state, count(*) FROM alerts GROUP BY 1, 2").fetchall()):
        report.hits.add(month, "hits", n)
        if state in ("confirmed", "closed"):
            report.outcomes.add(month, "confirmed", n)
        elif state == "alert":
            report.outcomes.add(month, "not yet verified", n)
        elif state in ("tentative", "validated"):
            report.outcomes.add(month, "being verified", n)
    rejected = await store.query(lambda c: c.execute(
        "SELECT a.created_at, e.alert_id, e.at, e.detail FROM alert_events e"
        " JOIN alerts a ON a.id = e.alert_id WHERE e.to_state = 'rejected'").fetchall())
    for created, alert_id, at, blob in rejected:
        ad = f"alert-event|{alert_id}|{at}".encode()
        detail = json.loads(store.cipher.decrypt(bytes(blob), ad))
        outcome = _REJECT_OUTCOMES.get(str(detail.get("reason", "")), "rejected (other)")
        report.outcomes.add(created[:7], outcome)

    kinds = await _event_kinds(store)
    for event in await _events(store, [k for k in kinds if k in ("search", "record.view")]):
        report.searches.add(event["at"][:7], str(event["detail"].get("purpose", "not given")))
    for event in await _events(store, [k for k in kinds if k == "search.refused"]):
        report.searches.add(event["at"][:7], "refused")
    for event in await _events(store, [k for k in kinds if k == "share.decision"]):
        _count_sharing(report.sharing, event)
    # Written requests and standing approvals as kept on file (appliance/_storage/sharing.py):
    # kind, status and month are clear columns; nothing is decrypted for these counts.
    for month, kind, status, n in await _optional(store, (
            "SELECT substr(created_at, 1, 7), kind, status, count(*) FROM sharing_requests"
            " GROUP BY 1, 2, 3")):
        label = "standing approvals" if kind == "standing" else "requests"
        report.sharing.add(month, f"{label} {status}", n)
    for event in await _events(store, [k for k in kinds if k in (
            "export.delivered", "export.refused", "evidence.exported")]):
        report.exports.add(event["at"][:7], event["kind"].replace(".", " "))
    # Scheduled purges with their signed proofs (appliance/_lifecycle/retention.py).
    for month, klass, n, rows in await _optional(store, (
            "SELECT substr(at, 1, 7), class, count(*), coalesce(sum(rows), 0) FROM purges"
            " GROUP BY 1, 2")):
        report.purges.add(month, f"days purged ({klass})", n)
        report.purges.add(month, "records destroyed", rows)
    return report


async def _optional(store: Store, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a query on a table another part of the box adds; none if it is not there yet."""
    def op(c: sqlite3.Connection) -> list[tuple[Any, ...]]:
        try:
            return list(c.execute(sql).fetchall())
        except sqlite3.OperationalError:
            return []

    return await store.query(op)


def _count_sharing(table: Table, event: Mapping[str, Any]) -> None:
    month, kind, detail = event["at"][:7], event["kind"], event["detail"]
    if kind != "share.decision":
        return
    allowed = bool(detail.get("allowed"))
    table.add(month, "decisions allowed" if allowed else "decisions denied")
    matched = detail.get("matched") or []
    if not allowed and any(str(m).startswith("denylist") for m in matched):
        table.add(month, "denylist blocks")


# -- the policy in force ---------------------------------------------------------------------


def retention_rows(root: RootConfig) -> list[dict[str, str]]:
    """Retention per class as the box enforces it (H3's ``retention:`` section when present)."""
    settings = getattr(root, "retention", None)
    if settings is None:
        return [{"class": "all data", "kept": "retention is not configured on this box"}]

    def days(value: int | None, what: str) -> str:
        if value is None:
            return "until released by hand (no automatic purge)"
        if value == 0:
            return "not kept past the day of capture"
        return f"{value} days, then destroyed ({what})"

    crypto = "rows deleted and the day's encryption key destroyed"
    return [
        {"class": "reads that matched no hot list",
         "kept": days(getattr(settings, "read_days", None), crypto)},
        {"class": "reads that matched a hot list (hits)",
         "kept": days(getattr(settings, "hit_days", None), crypto)},
        {"class": "images of non-hits", "kept": days(getattr(settings, "image_days", None),
                                                      crypto)},
        {"class": "audit records", "kept": days(getattr(settings, "audit_days", None),
                                                 "deleted after the retention period")},
        {"class": "data under a legal hold", "kept": "until the hold is released"},
    ]


def agencies_with_access(root: RootConfig, today: date) -> list[dict[str, str]]:
    """The approved agencies (organizations only: never the people who approved them)."""
    sharing = root.sharing
    if not sharing.enabled:
        return []
    return [
        {"name": a.name, "ori": a.ori, "kind": a.kind, "until": a.expires.isoformat()}
        for a in sharing.agencies
        if a.expires >= today
    ]
