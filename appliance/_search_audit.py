"""``alprbox audit sample``: the detection-browsing audit memo (Vallejo 462.7, Alameda 462.3(b)5).

At least ``count`` search events from the preceding ``months`` months are drawn at random (a
recorded seed makes the draw repeatable), each checked against the site policy: purpose on the
list, case number matching the pattern, reason not vague, and the access record complete (Civil
Code 1798.90.52). The memo is addressed to the Chief of Police, lists data kept longer than six
months, and is itself recorded as an ``audit.sample`` event with its SHA-256.
"""

from __future__ import annotations

import hashlib
import random
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ._config import PolicySettings
from ._search import check_case_number, check_purpose, reason_problem
from ._storage import Store

#: Alameda 462.3(b)5: explain any data retained longer than six months
RETENTION_DAYS = 183
_FIELDS = ("username", "organization", "purpose", "query")


@dataclass(frozen=True)
class Inquiry:
    id: int
    at: str
    actor: str
    detail: dict[str, Any]
    problems: tuple[str, ...]

    @property
    def compliant(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class SampleMemo:
    text: str
    sha256: str
    seed: int
    total: int
    sampled: tuple[Inquiry, ...]
    start: datetime
    end: datetime
    old_reads: int


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (clamped to the month's end)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for day in range(moment.day, 27, -1):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))


async def search_events(store: Store, start: datetime, end: datetime) -> list[Inquiry]:
    """Every ``search`` event with ``start <= at < end``, oldest first (not yet judged)."""
    events = await store.events(
        limit=-1, kind="search", start=start, end=end, oldest_first=True
    )  # -1: SQLite's "no limit"
    return [
        Inquiry(
            e["id"], e["at"], e["actor"], e["detail"] if isinstance(e["detail"], dict) else {}, ()
        )
        for e in events
    ]


def judge(inquiry: Inquiry, policy: PolicySettings) -> Inquiry:
    """The inquiry with what, if anything, makes it non-compliant."""
    d = inquiry.detail
    problems = [f"access record lacks {f}" for f in _FIELDS if not d.get(f)]
    try:
        check_purpose(str(d.get("purpose", "")), policy)
    except ValueError as err:
        problems.append(f"purpose not authorized: {err}")
    try:
        check_case_number(str(d.get("case_number", "")), policy)
    except ValueError:
        problems.append("case number missing or not matching the pattern")
    problem = reason_problem(str(d.get("reason", "")), policy)
    if problem:
        problems.append(problem)
    if d.get("username") and d["username"] != inquiry.actor:
        problems.append("username in the record differs from the event's actor")
    return Inquiry(inquiry.id, inquiry.at, inquiry.actor, d, tuple(problems))


async def old_read_count(store: Store, now: datetime) -> int:
    return await store.count_reads_before(now - timedelta(days=RETENTION_DAYS))


async def sample_memo(
    store: Store,
    policy: PolicySettings,
    *,
    months: int = 6,
    count: int = 10,
    seed: int | None = None,
    now: datetime | None = None,
    auditor: str = "",
    site: str = "",
) -> SampleMemo:
    """Draw, judge and write the memo (not yet recorded; see :func:`record_memo`)."""
    now = now or datetime.now(UTC)
    seed = secrets.randbelow(2**32) if seed is None else seed
    start = months_before(now, months)
    # Up to and including ``now``: an inquiry recorded this very instant belongs to the window.
    found = await search_events(store, start, now + timedelta(microseconds=1))
    drawn = list(found) if len(found) <= count else random.Random(seed).sample(found, count)
    sampled = tuple(judge(i, policy) for i in sorted(drawn, key=lambda i: i.id))
    old = await old_read_count(store, now)
    text = _render(
        sampled, total=len(found), count=count, seed=seed, start=start, end=now,
        months=months, old_reads=old, auditor=auditor, site=site, policy=policy,
    )  # fmt: skip
    digest = hashlib.sha256(text.encode()).hexdigest()
    return SampleMemo(text, digest, seed, len(found), sampled, start, now, old)


async def record_memo(
    store: Store, memo: SampleMemo, actor: str, out: str | None, *, keep_text: bool = False
) -> None:
    """Record the memo as an audit event; ``keep_text`` keeps the memo itself in it (encrypted
    like every event detail), which is how the console files its memos."""
    extra = {"memo_text": memo.text} if keep_text else {}
    await store.record_event(
        "audit.sample",
        actor,
        {
            "sha256": memo.sha256,
            "seed": memo.seed,
            "from": _utc(memo.start),
            "to": _utc(memo.end),
            "inquiries": memo.total,
            "sampled_event_ids": [i.id for i in memo.sampled],
            "non_compliant": sum(1 for i in memo.sampled if not i.compliant),
            "reads_older_than_6_months": memo.old_reads,
            "memo": out or ("(kept in this record)" if keep_text else "(stdout)"),
            **extra,
        },
    )


def _render(
    sampled: tuple[Inquiry, ...],
    *,
    total: int,
    count: int,
    seed: int,
    start: datetime,
    end: datetime,
    months: int,
    old_reads: int,
    auditor: str,
    site: str,
    policy: PolicySettings,
) -> str:
    bad = [i for i in sampled if not i.compliant]
    lines = [
        "# Memorandum: ALPR detection browsing audit",
        "",
        "**To:** Chief of Police  ",
        f"**From:** {auditor or 'Professional Standards Division'}  ",
        f"**Date:** {end.astimezone(UTC).date().isoformat()}  ",
        f"**Site:** {site or 'alprbox'}  ",
        "**Subject:** Random audit of ALPR detection browsing inquiries (Vallejo Policy 462.7)",
        "",
        "## Scope and method",
        "",
        f"- Period audited: {_day(start)} to {_day(end)} (the preceding {months} months).",
        f"- Inquiries (searches) recorded in the period: {total}.",
    ]
    if total <= count:
        lines.append(
            f"- Fewer than {count} inquiries were available ({total}): **all {total} were "
            "audited**; the policy's minimum sample of "
            f"{count} could not be drawn."
        )
    else:
        lines.append(
            f"- {len(sampled)} of {total} inquiries drawn at random without replacement "
            f"(Python random.Random.sample, seed {seed}); rerunning with --seed {seed} on the "
            "same trail draws the same inquiries."
        )
    lines += [
        f"- Each was checked against the site policy (version {policy.version()}): purpose on "
        "the authorized list, case or incident number matching the pattern "
        f"`{policy.case_number_pattern}`, a reason that is not vague (Vallejo 426.5(e)), and a "
        "complete access record — date and time, data queried, username and organization, "
        "purpose (Civil Code 1798.90.52).",
        "",
        "## Inquiries sampled",
        "",
        "| # | Event | When (UTC) | User | Organization | Purpose | Case number | Results "
        "| Verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, i in enumerate(sampled, 1):
        d = i.detail
        verdict = "compliant" if i.compliant else "**NOT COMPLIANT**"
        lines.append(
            f"| {n} | {i.id} | {_cell(i.at[:19])} | {_cell(i.actor)} | "
            f"{_cell(d.get('organization'))} | {_cell(d.get('purpose'))} | "
            f"{_cell(d.get('case_number'))} | {_cell(d.get('results'))} | {verdict} |"
        )
    lines += ["", "## Findings", ""]
    if bad:
        for i in bad:
            lines.append(f"- Event {i.id} ({_cell(i.actor)}, {i.at[:19]}):")
            lines += [f"  - {_cell(p)}" for p in i.problems]
    else:
        lines.append("- No data errors or policy violations found in the sample.")
    lines += [
        "",
        f"**Summary:** {len(sampled)} inquiries audited: {len(sampled) - len(bad)} compliant, "
        f"{len(bad)} not compliant.",
        "",
        "## Data retained longer than six months (Alameda 462.3(b)5)",
        "",
    ]
    if old_reads:
        lines.append(
            f"- {old_reads} plate read(s) older than {RETENTION_DAYS} days are stored. Reason: "
            "no retention purge yet (the appliance does not yet delete reads on a schedule); "
            "none is recorded as held as evidence."
        )
    else:
        lines.append(f"- None: no plate read older than {RETENTION_DAYS} days is stored.")
    lines += [
        "",
        "After review by the Chief of Police, this memorandum and its documentation are to be "
        "filed and retained by the Professional Standards Division. Its SHA-256 is recorded in "
        "the appliance's audit trail (event `audit.sample`).",
        "",
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return re.sub(r"[|\r\n]+", " ", text).strip() or "—"


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
