"""``alprbox restore``: a site's replica, restored into a new directory, checked and counted.

City IT runs this on a city machine with the site's config (for the target and credentials) to
get a copy they can search read-only with the keys they hold. Each database is restored with
``litestream restore -integrity-check full`` (open upstream reports of restore corruption exist,
so every restore is checked), to a point with ``-txid`` (the main database's transaction id;
exact) or ``-timestamp`` (rounds down after litestream's l0-retention, so it can miss the last
rows), then opened read-only for ``PRAGMA integrity_check`` and row counts. ``keys.db`` is
always restored at its latest state: a day key destroyed on the box must stay destroyed in the
copy. The restored directory is 0700; nothing in it is clear text.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .binary import find_litestream
from .litestream_config import LitestreamJob, environment, render, runtime_dir, write_private
from .segment_store import SEGMENTS as SEGMENT_DIR
from .segment_store import SegmentStore, segment_store
from .settings import ReplicationSettings
from .supervisor import KEYS_DB, MAIN_DB, jobs_for

RESTORE_TIMEOUT = 3600
_TXID = re.compile(r"^[0-9a-fA-F]{1,16}$")


class RestoreError(Exception):
    """A restore that failed or produced a database that does not check out; says which."""


@dataclass
class RestoredDatabase:
    name: str
    path: Path
    replica: str
    integrity: str
    rows: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "replica": self.replica,
                "integrity": self.integrity, "rows": self.rows}


@dataclass
class RestoreReport:
    to: Path
    databases: list[RestoredDatabase]
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"to": str(self.to), "databases": [d.as_dict() for d in self.databases],
                "notes": self.notes}


def restore(
    settings: ReplicationSettings,
    box_data_dir: Path,
    to: Path,
    *,
    txid: str | None = None,
    timestamp: str | None = None,
) -> RestoreReport:
    """Restore the site's databases from its replica target into ``to`` (new or empty).

    ``box_data_dir`` is the box's data directory as its config names it: litestream finds a
    replica by the database path it was replicated from. Raises :class:`RestoreError`.
    """
    if settings.target is None:
        raise RestoreError("the config names no replication target to restore from")
    if txid is not None and timestamp is not None:
        raise RestoreError("give --txid or --timestamp, not both")
    if txid is not None and not _TXID.match(txid):
        raise RestoreError(f"--txid {txid!r} is not a hexadecimal litestream transaction id")
    if to.exists() and any(to.iterdir()):
        raise RestoreError(f"{to} is not empty: restore into a new directory")
    binary = find_litestream(settings.litestream)
    to.mkdir(parents=True, exist_ok=True, mode=0o700)
    to.chmod(0o700)
    run = runtime_dir()
    databases: list[RestoredDatabase] = []
    notes: list[str] = []
    jobs = jobs_for(settings, box_data_dir)
    try:
        for job in jobs:
            point: list[str] = []
            if job.name == MAIN_DB and txid is not None:
                point = ["-txid", txid.lower().rjust(16, "0")]
            elif job.name == MAIN_DB and timestamp is not None:
                point = ["-timestamp", timestamp]
            output = to / job.name
            if job.name == KEYS_DB:
                # A box whose keys.db has never been replicated (older layout) has no replica.
                point = ["-if-replica-exists"]
            _litestream_restore(binary, run, job, output, point)
            if job.name == KEYS_DB and not output.exists():
                notes.append(f"no replica of {KEYS_DB} was found at {job.replica_url()}")
                continue
            databases.append(_inspect(job, output))
    finally:
        for leftover in run.iterdir():
            leftover.unlink()
        run.rmdir()
    if settings.keys.mode == "escrow":
        notes.append(f"{KEYS_DB} is escrowed, not replicated: copy the escrowed keys.db into "
                     f"{to} before searching")
    main = next((d for d in databases if d.name == MAIN_DB), None)
    destination = segment_store(settings.target)
    if destination is None:
        notes.append(f"image segments are not carried by {settings.target.type} targets")
    elif main is not None:
        notes += _restore_segments(destination, main.path, to / SEGMENT_DIR)
    return RestoreReport(to, databases, notes)


def _restore_segments(source: SegmentStore, database: Path, folder: Path) -> list[str]:
    """Fetch every shipped segment the restored database refers to, checked by SHA-256."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'segments'").fetchone()
        rows = conn.execute(
            "SELECT name, state, sha256, shipped_at FROM segments").fetchall() if has_table else []
    finally:
        conn.close()
    folder.mkdir(mode=0o700, exist_ok=True)
    wanted = {name: sha for name, state, sha, shipped in rows
              if state == "closed" and shipped is not None}
    still_open = sum(1 for _, state, _, shipped in rows
                     if state in ("open", "closing") or (state == "closed" and shipped is None))

    async def fetch() -> list[str]:
        on_target = set(await source.names())
        for name in sorted(set(wanted) & on_target):
            await source.get(name, folder / name)
        return sorted(set(wanted) - on_target)

    missing = asyncio.run(fetch())
    fetched = 0
    for name, sha256 in wanted.items():
        path = folder / name
        if not path.exists():
            continue
        path.chmod(0o600)
        if hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
            raise RestoreError(f"segment {name} from {source.url} does not match its SHA-256")
        fetched += 1
    notes = [f"{fetched} image segment file(s) restored from {source.url}, each SHA-256 checked"]
    if still_open:
        notes.append(f"{still_open} segment(s) were still open on the box (their day not over): "
                     "their images are not in this copy yet")
    if missing:
        notes.append(f"{len(missing)} shipped segment(s) are missing on the target: "
                     + ", ".join(missing[:5]))
    return notes


def _litestream_restore(
    binary: Path, run: Path, job: LitestreamJob, output: Path, point: list[str]
) -> None:
    config = run / f"{job.name}.yml"
    write_private(config, render(job, metrics_addr=None, socket_path=None))
    try:
        env = environment(job.target)
    except LookupError as err:
        raise RestoreError(str(err)) from err
    command = [str(binary), "restore", "-config", str(config), "-no-expand-env",
               "-integrity-check", "full", "-o", str(output), *point, str(job.db_path)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True,
                              timeout=RESTORE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as err:
        raise RestoreError(f"restoring {job.name} from {job.replica_url()} timed out") from err
    if done.returncode != 0 or not (output.exists() or "-if-replica-exists" in point):
        said = (done.stderr or done.stdout).strip().splitlines()
        raise RestoreError(
            f"restoring {job.name} from {job.replica_url()} failed (litestream exit "
            f"{done.returncode}): {said[-1] if said else 'no message'}"
        )


def _inspect(job: LitestreamJob, path: Path) -> RestoredDatabase:
    """Open the restored file read-only: integrity check and the row count of every table."""
    path.chmod(0o600)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        integrity = ", ".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name NOT LIKE '\\_litestream%' ESCAPE '\\' ORDER BY name")]
        rows = {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
                for t in tables}
    finally:
        conn.close()
    if integrity != "ok":
        raise RestoreError(f"restored {job.name} fails PRAGMA integrity_check: {integrity}")
    return RestoredDatabase(job.name, path, job.replica_url(), integrity, rows)


def format_report(report: RestoreReport, as_json: bool) -> str:
    if as_json:
        return json.dumps(report.as_dict())
    lines = [f"restored into {report.to}"]
    for db in report.databases:
        lines.append(f"  {db.name} from {db.replica}: integrity {db.integrity}")
        lines.extend(f"    {table:28} {count:>10}" for table, count in db.rows.items())
    lines.extend(f"note: {n}" for n in report.notes)
    return "\n".join(lines)


def site_replication(text: str) -> tuple[ReplicationSettings, Path | None]:
    """The ``replication:`` section and ``data_dir`` of a site config, validated alone: a city
    machine has none of the box's camera plugins to validate the rest against."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict) or not isinstance(data.get("replication"), dict):
        raise RestoreError("the config has no replication: section")
    try:
        settings = ReplicationSettings.model_validate(data["replication"])
    except ValidationError as err:
        problems = "; ".join(
            f"replication.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise RestoreError(problems) from err
    data_dir = data.get("data_dir")
    return settings, Path(data_dir) if isinstance(data_dir, str) else None


__all__ = ["RestoreError", "RestoreReport", "format_report", "restore", "site_replication"]
