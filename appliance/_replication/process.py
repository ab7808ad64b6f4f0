"""One supervised ``litestream replicate`` process: start, watch, restart with backoff, report.

The box never waits on replication: litestream is a child process that reads the database
through SQLite like any other reader, and whatever happens to it (killed, crashing, its target
unreachable for hours) the store keeps committing reads. What this class adds is that someone
finds out: it restarts litestream with exponential backoff and jitter, logs once when it fails
and once when it recovers, and scrapes litestream's Prometheus endpoint and control socket for
progress. Litestream's S3 and TLS failures are often silent in its own log (NOTES.md), so
"behind" is decided from the control socket's ``last_sync_at``, the time the target last
acknowledged a sync: it stops moving when the target does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import random
import signal
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from .litestream_config import LitestreamJob, environment, render, write_private

logger = logging.getLogger(__name__)

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
#: a run this long counts as healthy: the next failure starts the backoff from the beginning
STABLE_AFTER = 30.0
STOP_GRACE = 10.0
_SCRAPE_TIMEOUT = aiohttp.ClientTimeout(total=2)


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the box itself is killed (kill -9, power
    # supervisor), litestream gets SIGTERM, pushes what it has and exits, instead of living on
    # beside the box's next start.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def end_stale(pid_file: Path) -> None:
    """Stop a litestream a previous run of the box left behind (its pid file says which)."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if b"litestream" in cmdline and b"replicate" in cmdline:
        logger.warning("Stopping litestream (pid %d) left over from a previous run", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ReplicaStatus:
    """What the console, ``/healthz`` and ``/metrics`` show about one replicated database."""

    database: str
    target: str
    state: str = "starting"  # starting, replicating, behind, restarting, refused, stopped
    reason: str | None = None
    pid: int | None = None
    restarts: int = 0
    last_exit: str | None = None
    last_sync_at: datetime | None = None
    lag_seconds: float | None = None
    local_txid: int | None = None
    sync_count: float = 0.0
    sync_errors: float = 0.0
    last_litestream_error: str | None = None
    #: bytes of litestream's local change files beside the database: what an outage piles up
    local_backlog_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("starting", "replicating")

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "target": self.target,
            "state": self.state,
            "reason": self.reason,
            "pid": self.pid,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "last_sync_at": self.last_sync_at.isoformat() if self.last_sync_at else None,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "local_txid": self.local_txid,
            "sync_count": self.sync_count,
            "sync_errors": self.sync_errors,
            "last_litestream_error": self.last_litestream_error,
            "local_backlog_bytes": self.local_backlog_bytes,
        }


@dataclass
class LitestreamProcess:
    """Keeps one ``litestream replicate`` running for ``job`` until :meth:`stop`."""

    job: LitestreamJob
    binary: Path
    run_dir: Path
    behind_after: float
    #: where the running litestream's pid is kept, so a box restarted after kill -9 ends it
    pid_file: Path | None = None
    poll_interval: float = 1.0
    status: ReplicaStatus = field(init=False)
    _proc: asyncio.subprocess.Process | None = None
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    _failing: bool = False
    _started_at: float = 0.0
    metrics_url: str = ""
    _socket: Path = field(init=False)

    def __post_init__(self) -> None:
        self.status = ReplicaStatus(database=self.job.name, target=self.job.replica_url())
        self._socket = self.run_dir / f"{self.job.name}.sock"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"litestream-{self.job.name}")

    async def sync_now(self, wait_s: float = STOP_GRACE) -> dict[str, Any] | None:
        """Ask litestream to push everything to the target now and wait for it.

        Its answer (``status``, ``txid``, ``replicated_txid``), or None when it could not be
        asked or did not answer."""
        # Just started (a box stopped right after starting): its control socket comes up
        # within a moment.
        for _ in range(100):
            if self._socket.exists() or self._proc is None or self._proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        connector = aiohttp.UnixConnector(path=str(self._socket))
        body = {"path": str(self.job.db_path), "wait": True, "timeout": int(wait_s)}
        try:
            async with (
                aiohttp.ClientSession(connector=connector,
                                      timeout=aiohttp.ClientTimeout(total=wait_s + 2)) as http,
                http.post("http://localhost/sync", json=body) as response,
            ):
                answer: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as err:
            logger.debug("litestream[%s] sync: %s", self.job.name, err)
            return None
        logger.debug("litestream[%s] sync: %s", self.job.name, answer)
        return answer

    async def stop(self) -> None:
        """Push what is left, then SIGTERM; SIGKILL after a grace period.

        Litestream 0.5.17 exits on SIGTERM without a last sync, so the last commits are pushed
        through its control socket first (bounded: an unreachable target must not hold up the
        box's shutdown; what is not pushed stays in the database and goes on the next start).
        """
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            answer = await self.sync_now()
            if answer is None or answer.get("replicated_txid") != answer.get("txid"):
                logger.warning("Replication of %s: the target did not take the last changes "
                               "before shutdown; they are sent at the next start", self.job.name)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except TimeoutError:
                logger.warning("litestream for %s did not stop in %.0f s; killed",
                               self.job.name, STOP_GRACE)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.status.state, self.status.pid = "stopped", None

    # -- supervision ---------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self._spawn()
            except (OSError, LookupError) as err:
                self._failed(f"cannot start litestream: {err}")
            else:
                await self._watch()
                if self._stopping:
                    return
                ran = time.monotonic() - self._started_at
                if ran >= STABLE_AFTER:
                    failures = 0
                assert self._proc is not None
                code = self._proc.returncode
                self.status.last_exit = (
                    f"killed by signal {-code}" if code is not None and code < 0
                    else f"exited with status {code}"
                )
                self._failed(f"litestream {self.status.last_exit}")
            failures += 1
            self.status.restarts += 1
            delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
            delay *= random.uniform(0.5, 1.5)  # jitter: boxes of a city do not retry in step
            self.status.state = "restarting"
            self.status.pid = None
            await asyncio.sleep(delay)

    def _failed(self, why: str) -> None:
        detail = f"{why}; last litestream error: {self.status.last_litestream_error}" if (
            self.status.last_litestream_error
        ) else why
        self.status.reason = detail
        if not self._failing:
            # Once when it goes down, once when it recovers (STYLE.md 7), never per retry.
            logger.error("Replication of %s to %s failed: %s; restarting with backoff",
                         self.job.name, self.status.target, detail)
            self._failing = True

    async def _spawn(self) -> None:
        config = self.run_dir / f"{self.job.name}.yml"
        port = free_port()
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        self._socket.unlink(missing_ok=True)
        write_private(config, render(self.job, metrics_addr=f"127.0.0.1:{port}",
                                     socket_path=self._socket))
        env = environment(self.job.target)
        if self.pid_file is not None:
            await asyncio.to_thread(end_stale, self.pid_file)
        self._proc = await asyncio.create_subprocess_exec(
            str(self.binary), "replicate", "-config", str(config), "-no-expand-env",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,  # a Ctrl-C to the box is the box's to handle, not its own
            preexec_fn=_die_with_parent,
        )
        if self.pid_file is not None:
            self.pid_file.parent.mkdir(mode=0o700, exist_ok=True)
            self.pid_file.write_text(f"{self._proc.pid}\n")
        self._started_at = time.monotonic()
        self.status.pid = self._proc.pid
        self.status.state = "starting"
        self.status.last_sync_at = None

    async def _watch(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        reader = asyncio.create_task(self._read_log(proc.stderr))
        poller = asyncio.create_task(self._poll())
        try:
            await proc.wait()
        finally:
            poller.cancel()
            await asyncio.gather(poller, reader, return_exceptions=True)

    async def _read_log(self, stream: asyncio.StreamReader) -> None:
        # Litestream's log holds paths, txids and errors, never row contents (the rows are
        # ciphertext anyway). Kept at debug; its last warning or error is shown in the console.
        while line := await stream.readline():
            text = line.decode(errors="replace").rstrip()
            logger.debug("litestream[%s]: %s", self.job.name, text)
            if "level=ERROR" in text or "level=WARN" in text or text.startswith("Error:"):
                self.status.last_litestream_error = text.split(" ", 1)[-1][:300]

    async def _poll(self) -> None:
        meta = self.job.db_path.parent / f".{self.job.db_path.name}-litestream"
        polls = 0
        async with aiohttp.ClientSession(timeout=_SCRAPE_TIMEOUT) as http:
            while True:
                await asyncio.sleep(self.poll_interval)
                await self._scrape(http)
                self._judge()
                if polls % 30 == 0:  # a directory walk: not every second
                    self.status.local_backlog_bytes = await asyncio.to_thread(_tree_size, meta)
                polls += 1

    async def _scrape(self, http: aiohttp.ClientSession) -> None:
        try:
            async with http.get(self.metrics_url) as response:
                text = await response.text()
            self._read_metrics(text)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            logger.debug("litestream[%s] metrics: %s", self.job.name, err)
        try:
            connector = aiohttp.UnixConnector(path=str(self._socket))
            async with (
                aiohttp.ClientSession(connector=connector, timeout=_SCRAPE_TIMEOUT) as control,
                control.get("http://localhost/list") as response,
            ):
                listing = await response.json(content_type=None)
            for db in listing.get("databases") or []:
                if db.get("path") == str(self.job.db_path) and db.get("last_sync_at"):
                    self.status.last_sync_at = _parse_time(db["last_sync_at"])
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as err:
            logger.debug("litestream[%s] control socket: %s", self.job.name, err)

    def _read_metrics(self, text: str) -> None:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("db") != str(self.job.db_path):
                    continue
                if sample.name == "litestream_txid":
                    self.status.local_txid = int(sample.value)
                elif sample.name == "litestream_sync_count":
                    self.status.sync_count = sample.value
                elif sample.name == "litestream_sync_error_count":
                    self.status.sync_errors = sample.value

    def _judge(self) -> None:
        status = self.status
        now = datetime.now(UTC)
        if status.last_sync_at is not None:
            status.lag_seconds = max(0.0, (now - status.last_sync_at).total_seconds())
        else:
            status.lag_seconds = time.monotonic() - self._started_at
        if status.lag_seconds > self.behind_after:
            since = (
                f"since {status.last_sync_at.isoformat(timespec='seconds')}"
                if status.last_sync_at else "since litestream started"
            )
            said = status.last_litestream_error or (
                "nothing (its S3 and TLS failures are often silent)"
            )
            status.reason = (
                f"the target has not acknowledged a sync for {status.lag_seconds:.0f} s "
                f"({since}): it is unreachable, refusing, or too slow. Reads are still stored "
                f"on the box and will be sent when it answers. litestream says: {said}"
            )
            if status.state != "behind":
                logger.warning("Replication of %s to %s is behind: %s",
                               self.job.name, status.target, status.reason)
            status.state = "behind"
            return
        if status.last_sync_at is None:
            return  # still starting
        if status.state == "behind" or self._failing:
            logger.info("Replication of %s to %s recovered (lag %.1f s, %d restart(s))",
                        self.job.name, status.target, status.lag_seconds, status.restarts)
            self._failing = False
        status.state, status.reason = "replicating", None


def _tree_size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def _parse_time(text: str) -> datetime:
    # Go writes nanoseconds; Python takes microseconds.
    head, _, rest = text.partition(".")
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
