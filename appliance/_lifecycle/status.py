"""``alprbox retention status``: what is held, per class and day, until when, and why.

Alameda's policy (462.3(b)5) asks audits to explain any data kept past six months: every class
and day older than that is listed with its reason (the class's retention, or the legal holds).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .holds import Holds
from .records import HIT, IMAGE, READ, utc
from .retention import SIX_MONTHS, purge_day
from .settings import RetentionSettings

if TYPE_CHECKING:
    from .._storage import Store


async def retention_status(
    store: Store, settings: RetentionSettings, now: datetime
) -> dict[str, Any]:
    today = now.date()
    stamp = utc(now)

    def counts(c: Any) -> dict[str, list[tuple[str, int, int]]]:
        # Counts come from the (class, day) indexes alone; the (few) held rows are joined apart,
        # so this stays fast over millions of reads.
        active = (
            "FROM hold_items i JOIN holds h ON h.id = i.hold_id"
            " WHERE h.released_at IS NULL AND (h.until IS NULL OR h.until > ?)"
        )
        out: dict[str, list[tuple[str, int, int]]] = {}
        for klass, table, key in ((READ, "reads", "id"), (HIT, "reads", "id"),
                                  (IMAGE, "images", "read_id")):
            totals = c.execute(
                f"SELECT day, count(*) FROM {table} WHERE class = ? GROUP BY day ORDER BY day",
                (klass,),
            ).fetchall()
            held = dict(
                c.execute(
                    f"SELECT t.day, count(*) FROM {table} t WHERE t.class = ? AND t.{key} IN"
                    f" (SELECT i.read_id {active}) GROUP BY t.day",
                    (klass, stamp),
                ).fetchall()
            )
            out[klass] = [(day, n, int(held.get(day, 0))) for day, n in totals]
        return out

    by_class = await store.query(counts)
    holds = await Holds(store).list()
    active = [h for h in holds if h.active(now)]
    held_by_day = await store.query(
        lambda c: c.execute(
            "SELECT r.day, r.class, count(DISTINCT r.id), group_concat(DISTINCT h.case_number)"
            " FROM reads r JOIN hold_items i ON i.read_id = r.id"
            " JOIN holds h ON h.id = i.hold_id WHERE h.released_at IS NULL"
            " AND (h.until IS NULL OR h.until > ?) GROUP BY r.day, r.class",
            (stamp,),
        ).fetchall()
    )
    cases_by_day: dict[str, set[str]] = {}
    for held_day, _, _, cases in held_by_day:
        cases_by_day.setdefault(held_day, set()).update((cases or "").split(","))
    classes: dict[str, Any] = {}
    older: list[dict[str, Any]] = []
    six_months_ago = (today - SIX_MONTHS).isoformat()
    for klass, rows in by_class.items():
        days = settings.days(klass)
        listed = []
        for day, count, held in rows:
            until = purge_day(day, days) if days is not None else None
            entry = {
                "day": day,
                "items": count,
                "held": int(held or 0),
                "purge_on": until.isoformat() if until else None,
                "overdue": bool(until and until <= today),
            }
            listed.append(entry)
            if day < six_months_ago:
                reason = (
                    f"{klass} retention is {days} days (policy {settings.version()})"
                    if days is not None and not entry["overdue"]
                    else "kept indefinitely by policy"
                    if days is None
                    else "overdue: purge has not run"
                )
                if entry["held"]:
                    cases = sorted(c for c in cases_by_day.get(day, set()) if c)
                    reason = f"legal hold, case {', '.join(cases)}"
                older.append({"class": klass, "day": day, "items": count, "reason": reason})
        classes[klass] = {"retention_days": days, "days": listed}
    classes["audit"] = {
        "retention_days": settings.audit_days,
        "note": "audit records are kept at least this long; pruned only by audit checkpoints",
    }
    purges = await store.query(
        lambda c: c.execute(
            "SELECT class, day, at, rows, images, held FROM purges ORDER BY id DESC LIMIT 50"
        ).fetchall()
    )
    return {
        "at": utc(now),
        "policy_version": settings.version(),
        "classes": classes,
        "holds": [
            {**h.as_dict(), "active": h.active(now)} for h in holds
        ],
        "held_by_day": [
            {"day": d, "class": k, "reads": n, "cases": sorted((c or "").split(","))}
            for d, k, n, c in held_by_day
        ],
        "active_holds": len(active),
        "older_than_six_months": older,
        "recent_purges": [
            {"class": k, "day": d, "at": a, "rows": r, "images": i, "held": h}
            for k, d, a, r, i, h in purges
        ],
    }


def next_purge(settings: RetentionSettings, klass: str, day: date) -> date | None:
    days = settings.days(klass)
    return None if days is None else day + timedelta(days=days + 1)
