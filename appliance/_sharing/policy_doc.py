"""The Civil Code 1798.90.51(b) usage and privacy policy, generated from the live configuration.

Each section (A)–(G) of the statute, plus the end-user policy's periodic audits (1798.90.53(b)),
is filled from what the box enforces, so the posted policy cannot say one thing while the box
does another; :mod:`.drift` checks the rest (records older than posted retention, agencies
whose approval lapsed, users without current training).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import TYPE_CHECKING, Any

from .._config import IMMIGRATION_STATUTE, PURPOSE_CATALOGUE
from .transparency import agencies_with_access, retention_rows

if TYPE_CHECKING:
    from .._config import RootConfig

#: the console's roles (appliance/_auth.py ROLES) and what each may do; a test keeps them in step
ROLES = (
    ("operator", "live reads, alerts and their verification, searches with a purpose and case "
     "number"),
    ("supervisor", "as operator, and approving locally entered hot-list plates (BOLOs) and "
     "sharing requests (after re-entering a one-time code)"),
    ("analyst", "searches with a purpose and case number, and filing written sharing requests"),
    ("administrator", "as supervisor, and user accounts, training records and configuration"),
    ("auditor", "the audit trail and audit samples; no searches"),
)

PROHIBITED = (
    f"Immigration enforcement, or helping any agency with it ({IMMIGRATION_STATUTE}); ICE, CBP "
    "and their components are refused by name, ORI and domain, also when another agency asks on "
    "their behalf.",
    "Sharing with private entities, federal agencies or agencies outside California "
    "(Civil Code 1798.90.55(b)); selling ALPR data.",
    "Any use not listed as an authorized purpose, including personal use, and searching without "
    "a purpose and a case or incident number.",
    "Treating an alert as probable cause: every alert is verified (image, state, vehicle), "
    "validated by a live query and confirmed before action.",
)


def policy_document(root: RootConfig, today: date) -> dict[str, Any]:
    """The policy's sections, each a title and paragraphs or rows, from ``root``."""
    purposes = [{"name": p, "description": PURPOSE_CATALOGUE.get(p, "")}
                for p in root.policy.purposes]
    agencies = agencies_with_access(root, today)
    sharing = root.sharing
    training_days = root.console.training_max_days
    t = root.transparency
    custodian = (
        f"The official custodian of ALPR data for {root.site.name} is the {t.custodian_title}."
        if t.custodian_title else
        "No official custodian is configured (transparency.custodian_title): this policy is "
        "incomplete until one is."
    )
    doc: dict[str, Any] = {
        "site": root.site.name,
        "sections": [
            {"key": "A", "title": "Authorized purposes",
             "text": ["ALPR data is accessed and used only for these purposes; each search "
                      "records one of them with a case or incident number and a reason."],
             "items": [f"{p['name']}: {p['description']}" for p in purposes]},
            {"key": "A2", "title": "Prohibited uses", "text": [], "items": list(PROHIBITED)},
            {"key": "B", "title": "Who may use the system, and training",
             "text": [f"Only individually named accounts with multi-factor sign-in. Every user "
                      f"completes ALPR training before access and a refresher every "
                      f"{training_days} days; without current training the console shows no "
                      "ALPR data."],
             "items": [f"{role}: {what}" for role, what in ROLES]},
            {"key": "C", "title": "Monitoring for security and compliance",
             "text": ["Every sign-in, search, record view, export and sharing decision is "
                      "recorded with date and time, the data queried, the user and organization "
                      "and the purpose (Civil Code 1798.90.52) in a hash-chained, signed audit "
                      "trail. Auditors draw at least ten random inquiries from the preceding six "
                      "months for periodic audits (1798.90.53(b))."], "items": []},
            {"key": "D", "title": "Sharing, sale and transfer",
             "text": [
                 "ALPR data is never sold.",
                 ("Sharing is enabled only with the California public agencies listed below, on "
                  f"a written request (agency, person, purpose) that is reviewed and approved; "
                  f"approvals last {sharing.approval_days} days, standing approvals at most "
                  f"{sharing.standing_max_days} days. Partner agencies receive hit/no-hit "
                  "answers for their own lists, never bulk reads."
                  if sharing.enabled else
                  "Sharing is turned off: no agency receives ALPR data from this system."),
             ],
             "items": [f"{a['name']} ({a['ori']}, {a['kind']}), approved until {a['until']}"
                       for a in agencies]},
            {"key": "E", "title": "Official custodian",
             "text": [custodian, *([f"Questions and records requests: {t.contact}"]
                                   if t.contact else [])], "items": []},
            {"key": "F", "title": "Accuracy and correction of errors",
             "text": ["Hot lists refresh at least daily and entries older than their limit are "
                      "marked stale. Every alert shows the captured image beside the hot-list "
                      "entry; operators confirm characters, state and vehicle, validate with a "
                      "live query and record misreads, which are counted publicly."],
             "items": []},
            {"key": "G", "title": "Retention and destruction",
             "text": ["Data is destroyed on schedule by deleting it and destroying the day's "
                      "encryption key, so copies in replicas and backups cannot be read either. "
                      "Data under a legal hold is kept until the hold is released."],
             "items": [f"{r['class']}: {r['kept']}" for r in retention_rows(root)]},
        ],
    }
    doc["version"] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]
    return doc


def policy_text(doc: dict[str, Any]) -> str:
    """The document as plain text (for printing or pasting into a web page)."""
    lines = [f"ALPR usage and privacy policy: {doc['site']} (version {doc['version']})", ""]
    for section in doc["sections"]:
        lines.append(f"({section['key']}) {section['title']}")
        lines.extend(f"  {para}" for para in section["text"] if para)
        lines.extend(f"  - {item}" for item in section["items"])
        lines.append("")
    return "\n".join(lines)


def posted_differences(posted: dict[str, Any], live: dict[str, Any]) -> list[tuple[str, str]]:
    """(section key, what differs) for every section of a posted policy that no longer says
    what the live configuration enforces; retention items are named one by one."""
    if posted.get("version") == live.get("version"):
        return []
    before = {s["key"]: s for s in posted.get("sections", [])}
    out: list[tuple[str, str]] = []
    for section in live["sections"]:
        old = before.pop(section["key"], None)
        if old is None:
            out.append((section["key"], f"'{section['title']}' is not in the posted policy"))
            continue
        if section["key"] == "G":
            posted_items, live_items = set(old.get("items", [])), set(section["items"])
            for item in sorted(posted_items - live_items):
                out.append(("G", f"posted: {item}"))
            for item in sorted(live_items - posted_items):
                out.append(("G", f"enforced: {item}"))
        elif old.get("items") != section["items"] or old.get("text") != section["text"]:
            out.append((section["key"], f"'{section['title']}' differs from what the box "
                        "enforces"))
    out.extend((key, f"'{s.get('title', key)}' is posted but no longer generated")
               for key, s in before.items())
    return out
