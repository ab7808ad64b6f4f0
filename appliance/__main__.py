"""The ``alprbox`` command line: run, demo, check-config, plugins, recognize."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from . import __version__
from ._cli_args import add_store_args, resolve_site
from ._config import SiteConfig, load_config_file, parse_config
from ._logging import configure_logging
from ._plugins import PluginHost, create_plugin_host
from .errors import ConfigError

logger = logging.getLogger("appliance")


def default_data_dir(kind: str) -> Path:
    base = os.environ.get("ALPRBOX_DATA_DIR")
    if base:
        return Path(base)
    xdg = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return xdg / "alprbox" / kind


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alprbox",
        description="Self-hosted automated license plate reader appliance.",
    )
    parser.add_argument("--version", action="version", version=f"alprbox {__version__}")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("ALPRBOX_LOG_LEVEL", "INFO"),
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=os.environ.get("ALPRBOX_LOG_FORMAT", "text"),
        help="text for people, json for log collectors",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the appliance from a site config file")
    run.add_argument("--config", type=Path, required=True, help="site config (YAML)")
    run.add_argument("--data-dir", type=Path, help="override the config's data_dir")
    run.add_argument("--port", type=int, help="override the console port")
    run.add_argument("--host", help="override the console listen address")

    demo = sub.add_parser("demo", help="run on the embedded defaults: replayed clip, console")
    demo.add_argument("--data-dir", type=Path, help="where the demo keeps its store")
    demo.add_argument("--port", type=int, help="console port (default 8080)")
    demo.add_argument("--host", help="console listen address (default 127.0.0.1)")

    check = sub.add_parser("check-config", help="validate a site config; non-zero on errors")
    check.add_argument("file", type=Path)

    plugins = sub.add_parser("plugins", help="list loaded plugins, where they came from, status")
    plugins.add_argument("--json", action="store_true", help="one JSON object per plugin")

    hotlist = sub.add_parser("hotlist", help="hot lists: import a file, show status, match a plate")
    hotlist_sub = hotlist.add_subparsers(dest="hotlist_command", required=True, metavar="ACTION")
    for name, text in (
        ("import", "import a list file in a source's format (e.g. an NCIC extract)"),
        ("status", "each list's size, age, last refresh and error"),
        ("match", "match a plate against the active lists, explaining each hit"),
    ):
        action = hotlist_sub.add_parser(name, help=text)
        add_store_args(action)
        if name == "import":
            action.add_argument("source", help="the list's name in the config (e.g. ncic)")
            action.add_argument("file", type=Path)
        if name == "match":
            action.add_argument("plate")
            action.add_argument("--state", help="two-letter state of the read, if known")
        action.add_argument("--json", action="store_true", help="JSON output")

    # -- audit (issue 6): alprbox audit verify -------------------------------------------------
    audit = sub.add_parser("audit", help="the tamper-evident audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_verify = audit_sub.add_parser(
        "verify", help="recompute the hash chain and check its signed head; 1 if tampered"
    )
    add_store_args(audit_verify)
    audit_verify.add_argument("--json", action="store_true", help="the report as one JSON object")
    audit_verify.add_argument(
        "--public-key", type=Path, help="trust only this key (PEM or hex, e.g. the city's copy)"
    )
    # -- audit sample: detection-browsing audit memo (Vallejo 462.7) --------------------------
    audit_sample = audit_sub.add_parser(
        "sample", help="draw random searches, check them against the policy, write a memo"
    )
    add_store_args(audit_sample)
    audit_sample.add_argument("--months", type=int, default=6, help="how far back (default 6)")
    audit_sample.add_argument("--count", type=int, default=10, help="at least this many (10)")
    audit_sample.add_argument("--seed", type=int, help="random seed (recorded; default random)")
    audit_sample.add_argument("--out", type=Path, help="write the memo here (default stdout)")
    from ._audit_cli import add_audit_parsers

    add_audit_parsers(audit_sub)  # audit prune, audit public-key
    # -- end audit ---------------------------------------------------------------------------
    # -- evidence and policy (issue 7 part B, issue 5 evidence) -------------------------------
    from ._sharing.cli import add_sharing_parsers

    add_sharing_parsers(sub)
    # -- end evidence and policy ------------------------------------------------------------

    # -- restore (issue 5, replication) ---------------------------------------------------------
    from ._replication.cli import add_restore_parser

    add_restore_parser(sub)
    from ._replication.copy_cli import add_copy_parser

    add_copy_parser(sub)  # alprbox copy search|log|log-key: a restored copy, read-only

    # -- keys, retention, legal holds (issue 5, lifecycle) -------------------------------------
    from ._lifecycle.cli import add_lifecycle_parsers

    add_lifecycle_parsers(sub)

    # -- share check (issue 7 part A): ask the policy gate, audited like a real request -------
    share = sub.add_parser("share", help="sharing policy gate: check a partner before a request")
    share_sub = share.add_subparsers(dest="share_command", required=True, metavar="ACTION")
    share_check = share_sub.add_parser(
        "check", help="would the gate allow this request? exit 0 allowed, 1 denied (audited)"
    )
    add_store_args(share_check)
    from ._policy.cli import add_arguments as add_share_arguments

    add_share_arguments(share_check)
    # -- end share check ---------------------------------------------------------------------

    # -- cameras (issue 8): WS-Discovery and "Test connection" from the shell ----------------
    cameras = sub.add_parser("cameras", help="find ONVIF cameras; test a configured camera")
    from ._cameras_cli import add_arguments as add_camera_arguments

    add_camera_arguments(cameras)

    recognize = sub.add_parser("recognize", help="read the plates in image files")
    recognize.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    recognize.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line per image (the only format for now)",
    )
    recognize.add_argument("--recognizer", default="platedet", help="recognizer type")
    recognize.add_argument("--hardware", default="x86-generic", help="hardware profile")
    recognize.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a recognizer setting over the hardware profile's, e.g. ocr_engine=combined",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    command = args.command.replace("-", "_")
    handler = globals()[f"cmd_{command}"]
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        return 130


def cmd_check_config(args: argparse.Namespace) -> int:
    host = create_plugin_host()
    try:
        config = load_config_file(args.file, host)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        print(f"{args.file}: {len(err.problems)} error(s)", file=sys.stderr)
        return 1
    print(
        f"{args.file}: OK (hardware {config.hardware.model}, {len(config.cameras)} camera(s), "
        f"recognizer {config.recognition.type})"
    )
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    host = create_plugin_host()
    if args.json:
        for status in host.statuses:
            print(json.dumps(status.as_dict()))
    else:
        for status in host.statuses:
            origin = f"{status.distribution} {status.version}" if status.distribution else "-"
            print(f"{status.name:24} {status.status:7} {origin:32} {status.entry_point or ''}")
            if status.provides:
                print(f"{'':24} provides {', '.join(status.provides)}")
            if status.error:
                print(f"{'':24} error: {status.error}")
    return 1 if any(s.status == "failed" for s in host.statuses) else 0


def cmd_recognize(args: argparse.Namespace) -> int:
    import cv2

    from ._config import load_hardware_profile
    from ._recognition.colour import colour_fields
    from .base import PluginContext, SystemClock

    host = create_plugin_host()
    cls = host.type_for("recognizer", args.recognizer)
    if cls is None:
        print(
            f"unknown recognizer {args.recognizer!r}; known: {sorted(host.types['recognizer'])}",
            file=sys.stderr,
        )
        return 2
    profile = load_hardware_profile(args.hardware)
    overrides = dict(item.partition("=")[::2] for item in args.setting)
    settings = cls.settings_model.model_validate(
        {**profile.inference, **overrides, "type": args.recognizer}
    )
    recognizer = cls(
        settings, PluginContext(logging.getLogger("appliance.recognize"), Path("."), SystemClock())
    )
    recognizer.load()
    failures = 0
    for path in args.images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            failures += 1
            print(json.dumps({"image": str(path), "error": "not a readable image"}))
            continue
        try:
            detections = recognizer.recognize_still(image)  # a photo: no next frame
        except ValueError as err:  # an image the recognizer refuses: say so, go on
            failures += 1
            print(json.dumps({"image": str(path), "error": str(err)}))
            continue
        plates = [
            {
                "text": d.text,
                "confidence": round(d.confidence, 4),
                "box": list(d.box),
                "candidates": [
                    {"text": c.text, "confidence": round(c.confidence, 4)} for c in d.candidates
                ],
                **(
                    {"state": d.state, "state_confidence": round(d.state_confidence, 4)}
                    if d.state
                    else {}
                ),
                **colour_fields(image, d.box),
            }
            for d in detections
        ]
        print(json.dumps({"image": str(path), "plates": plates}), flush=True)
    return 1 if failures else 0


def cmd_share(args: argparse.Namespace) -> int:
    """``alprbox share check``: the policy gate's decision on a request (issue 7)."""
    from ._policy.cli import run_share_command

    host = create_plugin_host()
    try:
        if args.config:
            config = load_config_file(args.config, host)
            data_dir = args.data_dir or config.root.data_dir or default_data_dir("site")
        else:
            from ._demo import demo_config

            config = demo_config(host, None)
            data_dir = args.data_dir or default_data_dir("demo")
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    return asyncio.run(run_share_command(args, config, host, data_dir))


def cmd_cameras(args: argparse.Namespace) -> int:
    """``alprbox cameras discover|probe`` (issue 8)."""
    from ._cameras_cli import run as run_cameras_command

    return run_cameras_command(args)


def cmd_hotlist(args: argparse.Namespace) -> int:
    from ._hotlist.cli import run_hotlist_command

    host, config, data_dir = resolve_site(args)
    return asyncio.run(run_hotlist_command(args, config, host, data_dir))


# -- audit (issue 6) --------------------------------------------------------------------------


def cmd_audit(args: argparse.Namespace) -> int:
    """``alprbox audit verify``: 0 when the audit trail is intact, 1 naming the first break.

    On the box (master key present) the store is opened and the head is checked against the
    signing key file; with only a database (a replica), it is checked read-only against the
    public key stored in it, which the auditor compares with the box's published key.
    """
    if getattr(args, "audit_command", "verify") == "sample":
        return cmd_audit_sample(args)
    if getattr(args, "audit_command", "verify") in ("prune", "public-key"):
        from ._audit_cli import run

        return run(args)
    if getattr(args, "public_key", None) is not None:
        from ._audit_cli import verify_with_public_key

        return verify_with_public_key(args)
    import getpass

    from ._appliance import DB_NAME, Appliance
    from ._crypto import MasterKeyError
    from ._lifecycle.keyprovider import has_master_key
    from ._storage.audit import AuditKeyError, AuditReport, verify_audit, verify_database

    host, config, data_dir = resolve_site(args)
    database = data_dir / DB_NAME
    if not database.is_file():
        print(f"no store at {database}", file=sys.stderr)
        return 2

    async def on_box() -> AuditReport:
        store = await Appliance(config=config, plugins=host, data_dir=data_dir).open_store()
        try:
            report = await verify_audit(store)
            # Reading the audit trail is itself audited (CJIS 5.4.1.1).
            await store.record_event(
                "audit.verified",
                getpass.getuser(),
                {"intact": report.intact, "first_broken_id": report.first_broken_id, "via": "cli"},
            )
            return report
        finally:
            await store.close()

    try:
        if has_master_key(config.root.keys, data_dir, config.root.site.name):
            report = asyncio.run(on_box())
        else:
            report = verify_database(database)
    except (MasterKeyError, AuditKeyError) as err:
        print(str(err), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict()))
    elif report.intact:
        print(f"audit trail intact: {report.reason}")
    else:
        where = "" if report.first_broken_id is None else f" at record {report.first_broken_id}"
        print(f"audit trail BROKEN{where}: {report.reason}")
    if report.public_key and not args.json:
        print(f"signing key {report.public_key} (from the {report.key_source})")
    return 0 if report.intact else 1


def cmd_audit_sample(args: argparse.Namespace) -> int:
    """``alprbox audit sample``: the detection-browsing audit memo to the Chief (Vallejo 462.7).

    Draws at least ``--count`` searches from the preceding ``--months`` months, judges each
    against the site policy, writes the memo (``--out`` or stdout) and records its SHA-256 as an
    ``audit.sample`` event.
    """
    import getpass

    from ._appliance import DB_NAME, Appliance
    from ._crypto import MasterKeyError
    from ._search_audit import record_memo, sample_memo
    from ._storage.audit import AuditKeyError

    if args.months < 1 or args.count < 1:
        print("--months and --count must be at least 1", file=sys.stderr)
        return 2
    host, config, data_dir = resolve_site(args)
    if not (data_dir / DB_NAME).is_file():
        print(f"no store at {data_dir / DB_NAME}", file=sys.stderr)
        return 2
    auditor = getpass.getuser()

    async def run() -> tuple[str, int, int, int]:
        store = await Appliance(config=config, plugins=host, data_dir=data_dir).open_store()
        try:
            memo = await sample_memo(
                store,
                config.root.policy,
                months=args.months,
                count=args.count,
                seed=args.seed,
                auditor=auditor,
                site=config.root.site.name,
            )
            if args.out:
                args.out.write_text(memo.text)
            await record_memo(store, memo, auditor, str(args.out) if args.out else None)
            bad = sum(1 for i in memo.sampled if not i.compliant)
            return memo.text, memo.total, len(memo.sampled), bad
        finally:
            await store.close()

    try:
        text, total, sampled, bad = asyncio.run(run())
    except (MasterKeyError, AuditKeyError, OSError) as err:
        print(str(err), file=sys.stderr)
        return 2
    if not args.out:
        print(text)
    if total < args.count:
        print(
            f"only {total} search(es) in the last {args.months} month(s), fewer than "
            f"{args.count}: all were audited",
            file=sys.stderr,
        )
    where = f" written to {args.out}" if args.out else ""
    print(
        f"memo{where}: {sampled} of {total} inquiries audited, {bad} not compliant", file=sys.stderr
    )
    return 0


# -- end audit -----------------------------------------------------------------------------


def cmd_evidence(args: argparse.Namespace) -> int:
    """``alprbox evidence export|verify`` (issue 5 / issue 7): see appliance/_sharing/cli.py."""
    from ._sharing.cli import run_evidence

    return run_evidence(args)


def cmd_policy(args: argparse.Namespace) -> int:
    """``alprbox policy check``: posted vs enforced policy drift; see appliance/_sharing/cli.py."""
    from ._sharing.cli import run_policy

    return run_policy(args)


def cmd_export(args: argparse.Namespace) -> int:
    """``alprbox export``: an approved request's data to an exporter; appliance/_sharing/cli.py."""
    from ._sharing.cli import run_export_command

    return run_export_command(args)


def cmd_restore(args: argparse.Namespace) -> int:
    """``alprbox restore``: a site's replica into a new directory (see _replication/restore)."""
    from ._replication.cli import run_restore

    return run_restore(args)


def cmd_copy(args: argparse.Namespace) -> int:
    """``alprbox copy``: search a restored copy read-only, check its access log (issue 5)."""
    from ._replication.copy_cli import run_copy

    return run_copy(args)


def cmd_keys(args: argparse.Namespace) -> int:
    """``alprbox keys|retention|hold`` (issue 5): see appliance/_lifecycle/cli.py."""
    from ._lifecycle.cli import run_lifecycle

    return run_lifecycle(args)


cmd_retention = cmd_hold = cmd_keys


def cmd_run(args: argparse.Namespace) -> int:
    host = create_plugin_host()
    problems: list[str] = []
    try:
        config = load_config_file(args.config, host)
    except ConfigError as err:
        problems = err.problems
        for problem in problems:
            logger.error("Config: %s", problem)
        logger.error(
            "Starting in SAFE MODE: console and stored data only, no cameras, until "
            "%s is fixed (alprbox check-config %s)",
            args.config,
            args.config,
        )
        config = safe_mode_config(host, str(args.config))
    data_dir = args.data_dir or config.root.data_dir or default_data_dir("site")
    return _serve(config, host, data_dir, args, problems)


def cmd_demo(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args))


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import demo_config, start_demo_feeds
    from ._serve import serve

    host = create_plugin_host()
    feeds = await start_demo_feeds()
    try:
        config = demo_config(host, feeds.base_url if feeds else None)
        return await serve(
            config,
            host,
            args.data_dir or default_data_dir("demo"),
            listen=args.host,
            port=args.port,
        )
    finally:
        if feeds:
            await feeds.close()


def safe_mode_config(host: PluginHost, source: str) -> SiteConfig:
    """A config with no cameras, so a broken site file still leaves the console reachable.

    The site's name, data directory, keys and retention are kept when they are valid on their
    own: without them safe mode would look for the store and its master key in the wrong place.
    """
    from ._lifecycle.keyprovider import safe_mode_sections

    kept = safe_mode_sections(Path(source))
    if kept:
        try:
            return parse_config(kept + "cameras: []\n", f"{source} (safe mode)", host)
        except ConfigError:
            pass
    return parse_config("cameras: []\n", f"{source} (safe mode)", host)


def _serve(
    config: SiteConfig,
    host: PluginHost,
    data_dir: Path,
    args: argparse.Namespace,
    problems: list[str],
) -> int:
    from ._serve import serve

    return asyncio.run(
        serve(config, host, data_dir, listen=args.host, port=args.port, config_problems=problems)
    )


if __name__ == "__main__":
    sys.exit(main())
