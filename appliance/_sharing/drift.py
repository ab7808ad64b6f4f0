"""``alprbox policy check``: does the box do what its posted policy says?

Each finding names a rule, what the policy posts and what the box holds or does. Checks:

* retention: reads older than the posted retention still stored (the purge is not keeping up,
  or retention is not configured at all while a policy is posted);
* sharing: sharing on without any approved agency; agencies whose approval lapsed still listed;
  exporters streaming data with sharing off or without a standing approval;
* training: users whose training is missing or expired (1798.90.51(b)(2));
* audit: the audit trail does not verify (the monitoring the policy promises is broken);
* posted policy (``--posted FILE``, a saved ``alprbox policy show --json``): every retention
  line the posted text states that the box no longer enforces, and any other section changed;
* policy: no official custodian named.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._config import SiteConfig
    from .._plugins import PluginHost
    from .._storage import Store


@dataclass(frozen=True)
class Finding:
    rule: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def config_findings(config: SiteConfig, today: date) -> list[Finding]:
    """Drift visible from the configuration alone."""
    root = config.root
    found: list[Finding] = []
    sharing = root.sharing
    current = [a for a in sharing.agencies if a.expires >= today]
    if sharing.enabled and not current:
        found.append(Finding("sharing", "sharing is enabled but no agency has a current "
                             "approval: the posted policy would list no partner"))
    for agency in sharing.agencies:
        if agency.expires < today:
            found.append(Finding("partner approval", f"{agency.name} ({agency.ori}): approval "
                                 f"expired on {agency.expires}; renew it or remove the agency"))
    for exporter in config.exporters:
        if exporter.stream != "none" and not sharing.enabled:
            found.append(Finding("exporter", f"exporter '{exporter.name}' streams "
                                 f"{exporter.stream} but sharing is turned off"))
        if exporter.stream != "none" and not exporter.approval:
            found.append(Finding("exporter", f"exporter '{exporter.name}' streams "
                                 f"{exporter.stream} without a standing approval"))
    if not root.transparency.custodian_title.strip():
        found.append(Finding("policy", "the posted policy names no official custodian "
                             "(transparency.custodian_title; Civil Code 1798.90.51(b)(1)(E))"))
    if getattr(root, "retention", None) is None:
        found.append(Finding("retention", "no retention: section is configured, so the posted "
                             "policy cannot state how long data is kept"))
    return found


def posted_findings(path: Path, config: SiteConfig, today: date) -> list[Finding]:
    """Where the policy as posted (a saved ``alprbox policy show --json``) no longer matches the
    one generated from what the box enforces."""
    from .policy_doc import policy_document, posted_differences

    try:
        posted = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return [Finding("posted policy", f"cannot read {path}: {err}")]
    live = policy_document(config.root, today)
    rules = {"G": "posted retention"}
    return [Finding(rules.get(key, "posted policy"), f"({key}) {what}")
            for key, what in posted_differences(posted, live)]


async def store_findings(config: SiteConfig, store: Store, now: datetime) -> list[Finding]:
    """Drift between the posted policy and what the store holds."""
    from .._storage.audit import verify_audit
    from ..base import SystemClock

    found: list[Finding] = []
    retention = getattr(config.root, "retention", None)
    read_days = getattr(retention, "read_days", None)
    if isinstance(read_days, int):
        # A read of day D kept N days is purged on day D + N + 1; one day of grace for the run.
        cutoff = datetime.combine(now.date() - timedelta(days=read_days + 1), datetime.min.time(),
                                  tzinfo=now.tzinfo)
        old = await store.query(lambda c: c.execute(
            "SELECT count(*) FROM reads r WHERE r.seen_at < ? AND NOT EXISTS"
            " (SELECT 1 FROM alerts a WHERE a.read_id = r.id)",
            (cutoff.isoformat(),)).fetchone()[0])
        if old:
            found.append(Finding("retention", f"{old} non-hit read(s) older than the posted "
                                 f"{read_days} days are still stored (held, or the purge is "
                                 "not running)"))
    # Exporters riding on approvals that are not (or no longer) in force.
    from .._policy.gate import gate_for

    records = gate_for(store, config.root, SystemClock()).records
    for exporter in config.exporters:
        if not exporter.approval:
            continue
        row = await records.get(exporter.approval)
        if row is None:
            found.append(Finding("partner approval", f"exporter '{exporter.name}' names "
                                 f"approval {exporter.approval}, which is not on file"))
        elif row.status != "approved" or (row.expires_at is not None and row.expires_at <= now):
            state = row.status if row.status != "approved" else "expired"
            found.append(Finding("partner approval", f"exporter '{exporter.name}' rides on "
                                 f"approval {exporter.approval}, which is {state}"))
    users = await store.identity.users()
    max_days = config.root.console.training_max_days
    for user in users:
        if getattr(user, "disabled", False):
            continue
        until = await store.identity.trained_until(user.username, now.date(), max_days)
        if until is None or until < now.date():
            found.append(Finding("training", f"user {user.username} ({user.role}) has no "
                                 "current ALPR training"))
    report = await verify_audit(store)
    if not report.intact:
        found.append(Finding("audit", f"the audit trail does not verify: {report.reason}"))
    return found


async def run_policy_check(
    args: argparse.Namespace, config: SiteConfig, host: PluginHost, data_dir: Path
) -> int:
    import getpass

    from .._appliance import DB_NAME, Appliance
    from ..base import SystemClock

    now = SystemClock().now()
    findings = config_findings(config, now.date())
    if getattr(args, "posted", None) is not None:
        findings += posted_findings(Path(args.posted), config, now.date())
    if (data_dir / DB_NAME).is_file():
        store = await Appliance(config=config, plugins=host, data_dir=data_dir).open_store()
        try:
            findings += await store_findings(config, store, now)
            await store.record_event("policy.checked", getpass.getuser(),
                                     {"findings": [f.as_dict() for f in findings]})
        finally:
            await store.close()
    else:
        print(f"no store at {data_dir / DB_NAME}: only the configuration was checked",
              file=sys.stderr)
    out: dict[str, Any] = {"drift": bool(findings), "findings": [f.as_dict() for f in findings]}
    if args.json:
        print(json.dumps(out))
    elif findings:
        for f in findings:
            print(f"DRIFT {f.rule}: {f.problem}")
    else:
        print("no drift: the box enforces what its posted policy says")
    return 1 if findings else 0
