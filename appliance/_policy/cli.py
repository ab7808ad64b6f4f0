"""``alprbox share check``: ask the policy gate about a partner without sharing anything.

Operators use it before filing a request; tests use it too. Every call is decided and audited
exactly like a real request (``share.decision``, ``via: cli``). Exit status: 0 allowed, 1
denied, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .gate import CHANNELS, Recipient, ShareRequest, gate_for

if TYPE_CHECKING:
    from .._config import SiteConfig
    from .._plugins import PluginHost


def add_arguments(check: argparse.ArgumentParser) -> None:
    """The ``share check`` options (``__main__`` adds ``--config``/``--data-dir``)."""
    check.add_argument("--agency", required=True, help="the requesting agency's name")
    check.add_argument("--ori", help="its ORI (California: CA and 7 letters or digits)")
    check.add_argument("--email", help="the requester's e-mail address")
    check.add_argument("--person", help="the person asking (default: you)")
    check.add_argument("--purpose", default="", help="a purpose from the site's policy")
    check.add_argument("--case-number", default="", help="the case or incident number")
    check.add_argument("--reason", default="", help="what the data is for, in words")
    check.add_argument(
        "--on-behalf-of", action="extend", nargs="+", default=[], metavar="NAME",
        help="each agency the request is made for (repeatable; NAME may include its ORI)",
    )
    check.add_argument(
        "--recipient", action="append", default=[], metavar="ADDRESS",
        help="where data would go: an e-mail address or URL (repeatable)",
    )
    check.add_argument("--channel", choices=CHANNELS, default="export", help="how it would leave")
    check.add_argument("--json", action="store_true", help="print the decision as JSON")


def request_from_args(args: argparse.Namespace) -> ShareRequest:
    recipients = tuple(
        Recipient(email=a) if "@" in a and "://" not in a else Recipient(url=a)
        for a in args.recipient
    )
    return ShareRequest(
        agency=args.agency,
        ori=args.ori or None,
        person=args.person if args.person is not None else getpass.getuser(),
        email=args.email or None,
        purpose=args.purpose,
        case_number=args.case_number,
        on_behalf_of=tuple(args.on_behalf_of),
        recipients=recipients,
        channel=args.channel,
        reason=args.reason,
    )


async def run_share_command(
    args: argparse.Namespace, config: SiteConfig, host: PluginHost, data_dir: Path
) -> int:
    from .._appliance import Appliance

    request = request_from_args(args)
    box = Appliance(config=config, plugins=host, data_dir=data_dir)
    store = await box.open_store()
    try:
        gate = gate_for(store, config.root, box.clock)
        decision = await gate.check(request, getpass.getuser(), via="cli")
    finally:
        await store.close()
    if args.json:
        print(json.dumps({
            "allowed": decision.allowed,
            "reasons": decision.reasons,
            "matched": decision.matched,
            "policy_version": decision.policy_version,
        }))
    else:
        print("ALLOWED" if decision.allowed else "DENIED")
        for reason in decision.reasons:
            print(f"  - {reason}")
        for match in decision.matched:
            print(f"  matched {match}")
    if not decision.allowed:
        print("denied: nothing may be shared on this request", file=sys.stderr)
    return 0 if decision.allowed else 1
