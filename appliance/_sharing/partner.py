"""Regional partner share: answer a partner agency's own list hit or no-hit, nothing more.

A partner sends the plates it is looking for; the box answers, per plate, whether it read that
plate (and how often, and when last) within the approval's window. Matching goes through the
store's keyed plate index, so reads of other plates are never even decrypted, let alone sent:
the partner learns nothing about cars it did not ask about (DESIGN "Past one box"). The answer
goes out as an outbox delivery under the partner's approval (channel ``partner_query``), asked
of the gate first and audited like every delivery (what was asked, what was answered).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .._hotlist.plates import normalize_plate
from .._storage.plate_keys import PLATE_READS, plate_reads_args
from ..base import PartnerQuery
from .authority import Authorization, DeliveryRefused
from .outbox import Outbox, OutboxFull

if TYPE_CHECKING:
    from .._storage import Store

logger = logging.getLogger(__name__)

CHANNEL = "partner_query"
#: at most this many plates per query (a partner's list is a hot list, not a census)
MAX_PLATES = 100_000
#: how far back an answer looks when the approval names no window
DEFAULT_WINDOW = timedelta(days=30)


def _counter(
    index: bytes, start: datetime, end: datetime
) -> Callable[[sqlite3.Connection], tuple[int, str | None]]:
    """Reads of one plate index in [start, end): count and latest time; nothing decrypted."""
    args = (*plate_reads_args(index, start, end),
            start.astimezone(UTC).isoformat(timespec="microseconds"),
            end.astimezone(UTC).isoformat(timespec="microseconds"))

    def op(c: sqlite3.Connection) -> tuple[int, str | None]:
        count, last = c.execute(
            f"{PLATE_READS} SELECT count(*), max(seen_at) FROM reads"
            " WHERE id IN (SELECT id FROM plate_reads) AND seen_at >= ? AND seen_at < ?",
            args).fetchone()
        return int(count), last

    return op


async def answer(store: Store, authorization: Authorization, query: PartnerQuery,
                 now: datetime) -> dict[str, Any]:
    """The hit/no-hit answer to ``query``: one entry per plate the partner listed, in order."""
    scope = authorization.scope
    start = scope.start or now - DEFAULT_WINDOW
    end = min(scope.end or now, now)
    answers: list[dict[str, Any]] = []
    hits = 0
    seen: set[str] = set()
    for listed in query.plates[:MAX_PLATES]:
        plate = normalize_plate(listed)
        if not plate or plate in seen:
            continue
        seen.add(plate)
        count, last = await store.query(_counter(store.cipher.plate_index(plate), start, end))
        if count:
            hits += 1
            answers.append({"plate": listed, "hit": True, "reads": int(count), "last_seen": last})
        else:
            answers.append({"plate": listed, "hit": False})
    return {
        "kind": "partner_answer",
        "query_id": query.id,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "answers": answers,
        "plates_answered": len(answers),
        "hits": hits,
    }


async def run_partner_query(outbox: Outbox, exporter_name: str, now: datetime) -> str | None:
    """Fetch the partner's list through its exporter, answer it and queue the answer.

    Returns the delivery id, or None when there was no list or the gate refused (audited by the
    gate; counted). Raises what the exporter's ``fetch_query`` raises (the caller backs off).
    """
    exporter, settings = outbox.exporters[exporter_name]
    if not settings.approval:
        logger.warning("Partner exporter '%s' has no standing approval: not answering",
                       exporter_name)
        return None
    query = await exporter.fetch_query()
    if query is None:
        return None
    try:
        authorization = await outbox.authority.authorize_delivery(
            settings.approval, exporter=exporter_name, channel=CHANNEL, actor="system")
    except DeliveryRefused as err:
        outbox.metrics.refused.labels(exporter_name, "gate").inc()
        logger.warning("Partner exporter '%s': query %s not answered: %s", exporter_name,
                       query.id, err.reason)
        return None
    payload = await answer(outbox.store, authorization, query, now)
    try:
        return await outbox.enqueue(authorization, exporter_name, payload, actor="system",
                                    key=f"partner:{query.id}")
    except OutboxFull:
        return None
