"""Replication with litestream to a real S3 server (moto) and a file target, with faults.

What a city cares about: every acknowledged read reaches the city's replica even when
litestream or the box itself is killed mid-write; a target that is unreachable never stops the
box from storing reads, and the console says replication is behind and why; ``alprbox restore``
gives back every row, intact, readable with the same key.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from console_fixtures import make_read
from replication_rig import (
    BUCKET,
    SSHD,
    CuttableLink,
    file_site,
    moto_s3,
    s3_client,
    s3_env,
    s3_site,
    sftp_server,
)

from appliance.__main__ import main as alprbox
from appliance._appliance import Appliance
from appliance._config import parse_config
from appliance._plugins import create_plugin_host
from appliance._replication.litestream_config import LitestreamJob, environment, render
from appliance._replication.settings import ReplicationSettings
from appliance.testing import FAKES

WRITER = Path(__file__).parent / "replication_writer.py"
LIMIT_S = 60.0  # only to end a hung test; nothing here measures time


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture
def key_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials for the S3 target and a master key file outside the data directory."""
    env = {**s3_env(), "ALPRBOX_KEY_FILE": str(tmp_path / "keys" / "master.key")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "keys").mkdir(mode=0o700)
    return env


async def wait_for(check: Callable[[], Any], what: str, limit: float = LIMIT_S) -> Any:
    for _ in range(int(limit / 0.1)):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def pid_of(data_dir: Path, db: str = "alprbox.db") -> int | None:
    try:
        pid = int((data_dir / ".replication" / f"{db}.pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


def replica_objects(url: str, prefix: str) -> int:
    listing = s3_client(url).list_objects_v2(Bucket=BUCKET, Prefix=prefix)  # type: ignore[attr-defined]
    return int(listing.get("KeyCount", 0))


def table_rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, read-only, in a stable order."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                for t in tables}
    finally:
        conn.close()


class Writer:
    """``replication_writer.py`` as a child process: a box storing reads until told or killed."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.acked: list[str] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, data_dir: Path, site: Path, count: int, env: dict[str, str],
                    *, close: bool = False) -> Writer:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(WRITER), str(data_dir), str(site), str(count),
            *(["close"] if close else []),
            stdout=asyncio.subprocess.PIPE, env={**os.environ, **env},
        )
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.acked.append(line.decode().strip())

    async def finish(self) -> int:
        code = await asyncio.wait_for(self.proc.wait(), LIMIT_S)
        await self._reader
        return code


async def restore_cli(*args: str) -> tuple[int, dict[str, Any]]:
    """``alprbox restore ... --json`` in-process; its JSON report."""
    import contextlib
    import io

    out = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out):
            return alprbox(["restore", *args, "--json"])

    code = await asyncio.to_thread(run)
    text = out.getvalue().strip()
    return code, (json.loads(text.splitlines()[-1]) if text else {})


@asynccontextmanager
async def opened(data_dir: Path, site: str) -> AsyncIterator[Appliance]:
    """A data directory's store opened the way the box opens it (same key), without starting."""
    host = create_plugin_host(discover=False, plugins=[FAKES])
    config = parse_config(site, "test.yaml", host)
    box = Appliance(config=config, plugins=host, data_dir=data_dir)
    store = await box.open_store()
    try:
        yield box
    finally:
        await store.close()


def copy_keys(source: Path, restored: Path) -> None:
    """What city IT holds beside the replica: the master key (and the audit key, which the store
    checks on open). Key files outside the data directory are shared through ALPRBOX_KEY_FILE."""
    for name in ("master.key", "audit-signing.key"):
        if (source / name).exists():
            shutil.copy2(source / name, restored / name)


async def assert_same_reads(source: Path, restored: Path, site: str) -> int:
    """Decrypt every read and its crop in both copies with the same key; they must agree.

    Crops live in segment files shipped once closed; the writers here close them (as midnight
    would) before they stop, so every crop must be in the restored copy too.
    """
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1)
    async with opened(source, site) as box:
        assert box.store is not None
        ours = await box.store.reads_between(start, end)
        our_crops = {r.id: await box.store.get_crop(r.id) for r in ours}
    copy_keys(source, restored)
    async with opened(restored, site) as box:
        assert box.store is not None
        theirs = await box.store.reads_between(start, end)
        their_crops = {r.id: await box.store.get_crop(r.id) for r in theirs}
    assert theirs == ours
    assert their_crops == our_crops and all(our_crops.values())
    return len(ours)


# -- S3: kill -9 litestream, kill -9 the box, restore ------------------------------------------


async def test_s3_replica_survives_killed_litestream_and_killed_box_and_restores_every_row(
    tmp_path: Path, moto_url: str, key_env: dict[str, str]
) -> None:
    data = tmp_path / "data"
    site = tmp_path / "site.yaml"
    site.write_text(s3_site(moto_url, "sites/a") + f"data_dir: {data}\n")

    writer = await Writer.start(data, site, 0, key_env)
    first = await wait_for(lambda: pid_of(data), "litestream to start")
    await wait_for(lambda: len(writer.acked) >= 200, "reads to be stored")
    await wait_for(lambda: replica_objects(moto_url, "sites/a/alprbox.db/") > 0,
                   "the first upload to S3")

    # litestream killed mid-write: the box restarts it, reads keep being stored and replicated.
    os.kill(first, signal.SIGKILL)
    second = await wait_for(lambda: (p := pid_of(data)) not in (None, first) and p,
                            "litestream to be restarted")
    stored = len(writer.acked)
    uploaded = replica_objects(moto_url, "sites/a/alprbox.db/")
    await wait_for(lambda: len(writer.acked) >= stored + 200, "more reads after the restart")
    await wait_for(lambda: replica_objects(moto_url, "sites/a/alprbox.db/") > uploaded,
                   "uploads from the restarted litestream")

    # The box itself killed mid-write (a power cut for the app): its litestream goes with it.
    writer.proc.kill()
    assert await writer.finish() == -signal.SIGKILL
    await wait_for(lambda: not Path(f"/proc/{second}").exists(),
                   "the orphaned litestream to exit")
    acked_before_kill = list(writer.acked)
    assert len(acked_before_kill) >= 400

    # The box comes back, stores more, and shuts down cleanly.
    again = await Writer.start(data, site, 150, key_env, close=True)
    assert await again.finish() == 0
    assert len(again.acked) == 150

    restored = tmp_path / "restored"
    code, report = await restore_cli("--config", str(site), "--to", str(restored))
    assert code == 0, report
    main = next(d for d in report["databases"] if d["name"] == "alprbox.db")
    assert main["integrity"] == "ok"

    source_rows, restored_rows = table_rows(data / "alprbox.db"), table_rows(
        restored / "alprbox.db")
    assert restored_rows == source_rows  # row for row, ciphertext byte for byte
    restored_ids = {row[0] for row in restored_rows["reads"]}
    assert set(acked_before_kill) | set(again.acked) <= restored_ids
    assert main["rows"]["reads"] == len(source_rows["reads"])
    assert await assert_same_reads(data, restored, site.read_text()) == len(restored_ids)


# -- a file target, and a point in time --------------------------------------------------------


async def test_file_target_restores_every_row_and_refuses_a_used_directory(
    tmp_path: Path, key_env: dict[str, str]
) -> None:
    data, replica = tmp_path / "data", tmp_path / "city-share"
    site = tmp_path / "site.yaml"
    site.write_text(file_site(replica) + f"data_dir: {data}\n")
    writer = await Writer.start(data, site, 120, key_env, close=True)
    assert await writer.finish() == 0
    assert any((replica / "alprbox.db").rglob("*.ltx"))
    assert any((replica / "segments").glob("image-*.seg"))

    restored = tmp_path / "restored"
    code, report = await restore_cli("--config", str(site), "--to", str(restored))
    assert code == 0
    assert {d["name"]: d["integrity"] for d in report["databases"]}["alprbox.db"] == "ok"
    assert table_rows(restored / "alprbox.db") == table_rows(data / "alprbox.db")
    assert (restored.stat().st_mode & 0o777) == 0o700
    assert await assert_same_reads(data, restored, site.read_text()) == 120

    # A second restore into the same directory is refused; the first copy is untouched.
    before = table_rows(restored / "alprbox.db")
    code, _ = await restore_cli("--config", str(site), "--to", str(restored))
    assert code == 1
    assert table_rows(restored / "alprbox.db") == before


# -- the target unreachable --------------------------------------------------------------------


async def test_unreachable_target_keeps_storing_reads_says_why_and_catches_up(
    tmp_path: Path, moto_url: str, key_env: dict[str, str]
) -> None:
    link = CuttableLink(int(moto_url.rsplit(":", 1)[1]))
    data = tmp_path / "data"
    text = s3_site(link.url, "sites/b", behind_after="3s")
    host = create_plugin_host(discover=False, plugins=[FAKES])
    box = Appliance(config=parse_config(text, "site.yaml", host), plugins=host, data_dir=data)
    await box.start()
    try:
        assert box.store is not None and box.replication is not None
        main = next(p for p in box.replication.processes if p.job.name == "alprbox.db")
        for _ in range(20):
            await box.store.add_read(make_read(first_seen=datetime.now(UTC)))
        await wait_for(lambda: main.status.state == "replicating", "replication to start")
        assert box.replication.health()["ok"] is True

        link.cut()
        for _ in range(100):
            await box.store.add_read(make_read(first_seen=datetime.now(UTC)))
        assert await box.store.count_reads() == 120  # the box never waits on replication
        await wait_for(lambda: main.status.state == "behind", "replication to be reported behind")
        health = box.replication.health()
        assert health["ok"] is False
        assert "not acknowledged a sync" in health["databases"]["alprbox.db"]["reason"]
        assert "Reads are still stored" in health["databases"]["alprbox.db"]["reason"]
        assert health["databases"]["alprbox.db"]["local_backlog_bytes"] is not None
        metrics = box.metrics.render().decode()
        assert 'alprbox_replication_up{database="alprbox.db",state="behind"} 0.0' in metrics
        assert 'alprbox_replication_local_backlog_bytes{database="alprbox.db"}' in metrics

        link.restore()
        await wait_for(lambda: main.status.state == "replicating", "replication to catch up")
        assert box.replication.health()["ok"] is True
    finally:
        await box.stop()
        link.cut()

    site = tmp_path / "site.yaml"
    site.write_text(s3_site(moto_url, "sites/b") + f"data_dir: {data}\n")
    code, report = await restore_cli("--config", str(site), "--to", str(tmp_path / "restored"))
    assert code == 0
    assert {d["name"]: d["rows"] for d in report["databases"]}["alprbox.db"]["reads"] == 120


# -- config and what litestream is given --------------------------------------------------------


def test_litestream_config_holds_no_secret_and_its_environment_does() -> None:
    settings = ReplicationSettings.model_validate({
        "enabled": True,
        "target": {"type": "s3", "bucket": "city", "path": "sites/a",
                   "endpoint": "https://minio.city.example:9000",
                   "access_key_id": "env:ALPRBOX_TEST_S3_KEY",
                   "secret_access_key": "env:ALPRBOX_TEST_S3_SECRET"},
    })
    assert settings.target is not None
    job = LitestreamJob("alprbox.db", Path("/data/alprbox.db"), settings.target, "1s",
                        settings.snapshot)
    text = render(job, metrics_addr="127.0.0.1:9999", socket_path=Path("/run/x.sock"))
    assert "minio.city.example" in text and "force-path-style: true" in text
    assert "sites/a/alprbox.db" in text
    env_before = dict(os.environ)
    os.environ.update({**s3_env(), "AWS_CA_BUNDLE": "/etc/ssl/bundle.pem"})
    try:
        env = environment(settings.target)
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    assert env["LITESTREAM_SECRET_ACCESS_KEY"] == s3_env()["ALPRBOX_TEST_S3_SECRET"]
    assert "AWS_CA_BUNDLE" not in env  # it breaks every S3 call litestream makes
    for secret in s3_env().values():
        assert secret not in text


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"enabled": True}, "no target"),
        ({"target": {"type": "s3", "bucket": "city", "access_key_id": "AKIAPLAINTEXT",
                     "secret_access_key": "env:X"}}, "never the secret itself"),
        ({"target": {"type": "s3", "bucket": "city", "access_key_id": "env:A"}}, "both"),
        ({"target": {"type": "file", "path": "relative/dir"}}, "absolute"),
        ({"target": {"type": "file", "path": "/srv/$HOME"}}, "'$'"),
        ({"target": {"type": "s3", "bucket": "city", "endpoint": "minio:9000"}}, "URL"),
        ({"sync_interval": "1 day"}, "pattern"),
    ],
)
def test_bad_replication_settings_are_config_errors_naming_the_field(
    section: dict[str, Any], message: str
) -> None:
    import yaml

    from appliance.errors import ConfigError

    host = create_plugin_host(discover=False, plugins=[FAKES])
    text = yaml.safe_dump({"recognition": {"type": "fake"}, "replication": section})
    with pytest.raises(ConfigError) as err:
        parse_config(text, "site.yaml", host)
    problems = " ".join(err.value.problems)
    assert "replication" in problems and message in problems


# -- the console ----------------------------------------------------------------------------------


async def test_console_and_healthz_show_replication_state_to_administrators_and_auditors(
    tmp_path: Path, aiohttp_client: Any, key_env: dict[str, str]
) -> None:
    from console_fixtures import add_user, login_as, running_appliance

    from appliance._web import create_app

    extra = file_site(tmp_path / "share").split("cameras: []\n", 1)[1]
    async with running_appliance(tmp_path / "data", extra) as box:
        assert box.replication is not None
        main = next(p for p in box.replication.processes if p.job.name == "alprbox.db")
        await wait_for(lambda: main.status.state == "replicating", "replication to start")
        client = await aiohttp_client(create_app(box))
        health = await (await client.get("/healthz")).json()
        assert health["replication"]["databases"]["alprbox.db"]["state"] == "replicating"
        assert health["replication"]["ok"] is True

        for role in ("administrator", "auditor"):
            await add_user(box, role, role)
            await login_as(client, role, "correct horse 42")
            response = await client.get("/replication")
            html = await response.text()
            assert response.status == 200
            assert "alprbox.db" in html and "replicating" in html and "Waiting on the box" in html
            assert str(tmp_path / "share") in html
        await add_user(box, "operator", "operator")
        await login_as(client, "operator", "correct horse 42")
        assert (await client.get("/replication", allow_redirects=False)).status == 403

        # litestream gone for good (its binary removed): the page and /healthz say so.
        main.binary = tmp_path / "no-such-litestream"
        os.kill(main.status.pid or 0, signal.SIGKILL)
        await wait_for(lambda: main.status.state == "restarting" and main.status.reason,
                       "the failure to be reported")
        health = await (await client.get("/healthz")).json()
        assert health["status"] == "degraded"
        assert "killed by signal 9" in health["replication"]["databases"]["alprbox.db"]["reason"]


# -- crypto-shredding reaches the replica ------------------------------------------------------


async def test_a_purged_day_is_unreadable_even_in_a_copy_restored_from_before_the_purge(
    tmp_path: Path, key_env: dict[str, str]
) -> None:
    from console_fixtures import running_appliance

    from appliance._lifecycle.keyring import KeyShredded
    from appliance._lifecycle.records import IMAGE, READ
    from appliance._lifecycle.retention import Purger
    from appliance._lifecycle.segments import finish_closing
    from appliance.testing import FakeClock

    data, share, restored = tmp_path / "data", tmp_path / "share", tmp_path / "restored"
    site = tmp_path / "site.yaml"
    site.write_text(file_site(share) + f"data_dir: {data}\n")
    now = datetime.now(UTC).replace(microsecond=0)
    old = now - timedelta(days=10)  # within retention: only the explicit purge below takes it
    extra = site.read_text().split("cameras: []\n", 1)[1]
    async with running_appliance(data, extra, FakeClock(now)) as box:
        assert box.store is not None and box.replication is not None
        for i in range(20):
            for text, day in ((f"OLD{i:03d}", old), (f"NEW{i:03d}", now)):
                await box.store.add_read(make_read(text, first_seen=day + timedelta(seconds=i)))
        main, keys = box.replication.processes
        await wait_for(lambda: main.status.state == keys.status.state == "replicating",
                       "both databases to replicate")
        store, shipper = box.store, box.replication.shipper
        assert shipper is not None
        await store.write(lambda c: store.segments.close_before(c, "9999-12-31"))
        await finish_closing(store)
        assert await shipper.ship_pending() == 2
        old_segment = f"image-{old.date().isoformat()}-000.seg"
        new_segment = f"image-{now.date().isoformat()}-000.seg"
        assert {old_segment, new_segment} <= {p.name for p in (share / "segments").iterdir()}
        before = await main.sync_now()
        assert before is not None and before["replicated_txid"] == before["txid"]

        purger = Purger(box.store, box.config.root.retention)
        for klass in (IMAGE, READ):
            await purger.purge(klass, old.date().isoformat(), now, "test")
        for process in (keys, main):
            answer = await process.sync_now()
            assert answer is not None and answer["replicated_txid"] == answer["txid"]
        await shipper.ship_pending()  # the purged day's images leave the target too
        assert {p.name for p in (share / "segments").iterdir()} == {new_segment}

    # The city restores the main database as it was *before* the purge (its rows still there)
    # with keys.db as it is now: the purged day's key is gone, so are its plates.
    code, report = await restore_cli("--config", str(site), "--to", str(restored),
                                     "--txid", f"{before['txid']:x}")
    assert code == 0, report
    rows = table_rows(restored / "alprbox.db")["reads"]
    assert len(rows) == 40  # the old day's rows are in this older copy...
    copy_keys(data, restored)
    async with opened(restored, site.read_text()) as copy:
        assert copy.store is not None
        fresh = await copy.store.reads_between(now, now + timedelta(minutes=1))
        assert sorted(r.text for r in fresh) == [f"NEW{i:03d}" for i in range(20)]
        with pytest.raises(KeyShredded):  # ...and unreadable
            await copy.store.reads_between(old, old + timedelta(minutes=1))


# -- image segments -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9000/city-replicas/sites/a/segments/image-2026-05-01-000.seg",
    "https://city-replicas.s3.us-west-2.amazonaws.com/?list-type=2&prefix=sites%2Fa%2Fsegments%2F",
])
def test_segment_uploads_are_signed_exactly_as_the_aws_sdk_signs_them(url: str) -> None:
    import hashlib

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from appliance._replication.segment_store import sigv4_headers

    body = b"ciphertext" * 100 if "segments/" in url and "list-type" not in url else b""
    method = "PUT" if body else "GET"
    request = AWSRequest(method=method, url=url, data=body)
    S3SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG"), "s3",
                "us-west-2").add_auth(request)
    when = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    ours = sigv4_headers(method, url, hashlib.sha256(body).hexdigest(),
                         access_key="AKIDEXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG",
                         region="us-west-2", now=when)
    assert ours["Authorization"] == request.headers["Authorization"]


async def test_a_damaged_segment_is_reported_not_shipped(
    tmp_path: Path, key_env: dict[str, str]
) -> None:
    from console_fixtures import running_appliance

    from appliance._lifecycle.segments import finish_closing

    extra = file_site(tmp_path / "share").split("cameras: []\n", 1)[1]
    async with running_appliance(tmp_path / "data", extra) as box:
        assert box.store is not None and box.replication is not None
        shipper = box.replication.shipper
        assert shipper is not None
        await box.store.add_read(make_read(first_seen=datetime.now(UTC)))
        store = box.store
        closed = await store.write(lambda c: store.segments.close_before(c, "9999-12-31"))
        assert await finish_closing(store) == closed
        segment = store.segments.folder / closed[0]
        data = bytearray(segment.read_bytes())
        data[-1] ^= 0xFF  # one flipped bit in the ciphertext on the box's disk
        segment.write_bytes(bytes(data))
        assert await shipper.ship_pending() == 0
        assert shipper.status.state == "behind"
        assert "does not match its recorded SHA-256" in (shipper.status.reason or "")
        assert box.replication.health()["ok"] is False
        assert not (tmp_path / "share" / "segments" / closed[0]).exists()


# -- the policy gate ----------------------------------------------------------------------------


async def test_a_target_the_policy_gate_refuses_gets_no_data_and_the_refusal_is_shown(
    tmp_path: Path, key_env: dict[str, str]
) -> None:
    from console_fixtures import running_appliance

    extra = s3_site("https://objects.ice.dhs.gov", "sites/a").split("cameras: []\n", 1)[1]
    async with running_appliance(tmp_path / "data", extra) as box:
        assert box.replication is not None and box.store is not None
        assert box.replication.processes == [] and box.replication.shipper is None
        refused = {s.database: s for s in box.replication.statuses()}
        assert refused["alprbox.db"].state == refused["keys.db"].state == "refused"
        assert "ICE" in (refused["alprbox.db"].reason or "")
        assert box.replication.health()["ok"] is False
        decisions = await box.store.events(10, kind="share.decision")
        assert any("objects.ice.dhs.gov" in json.dumps(e["detail"]) for e in decisions)
    assert not list((tmp_path / "data").glob(".replication/*.pid"))


# -- SFTP ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not SSHD.exists(), reason="needs OpenSSH's sshd (Debian openssh-server)")
async def test_sftp_target_with_a_pinned_host_key_restores_every_row(
    tmp_path: Path, key_env: dict[str, str]
) -> None:
    import yaml

    with sftp_server(tmp_path / "ssh") as server:
        data, remote = tmp_path / "data", tmp_path / "remote"
        site_data = {"recognition": {"type": "fake"}, "cameras": [], "data_dir": str(data),
                     "replication": {"enabled": True,
                                     "target": {"type": "sftp", **server, "path": str(remote)}}}
        site = tmp_path / "site.yaml"
        site.write_text(yaml.safe_dump(site_data))
        writer = await Writer.start(data, site, 80, key_env)
        assert await writer.finish() == 0
        assert any((remote / "alprbox.db").rglob("*.ltx"))
        restored = tmp_path / "restored"
        code, report = await restore_cli("--config", str(site), "--to", str(restored))
        assert code == 0, report
        assert table_rows(restored / "alprbox.db") == table_rows(data / "alprbox.db")
        assert any("not carried by sftp" in n for n in report["notes"])

        # A server showing another host key (a man in the middle) gets nothing.
        other = " ".join((tmp_path / "ssh" / "client_key.pub").read_text().split()[:2])
        site_data["replication"]["target"] = {**site_data["replication"]["target"],
                                              "host_key": other, "path": str(tmp_path / "mitm")}
        host = create_plugin_host(discover=False, plugins=[FAKES])
        config = parse_config(yaml.safe_dump(site_data), "site.yaml", host)
        box = Appliance(config=config, plugins=host, data_dir=tmp_path / "data2")
        await box.start()
        try:
            assert box.replication is not None
            main = box.replication.processes[0]
            await wait_for(lambda: main.status.restarts >= 1, "litestream to fail and restart")
            assert "host key mismatch" in (main.status.reason or "")
            assert not (tmp_path / "mitm").exists()
        finally:
            await box.stop()


async def test_s3_segment_store_puts_lists_gets_and_deletes_on_a_real_s3_server(
    tmp_path: Path, moto_url: str, key_env: dict[str, str]
) -> None:
    import hashlib

    from appliance._replication.segment_store import S3Segments

    settings = ReplicationSettings.model_validate({"target": {
        "type": "s3", "bucket": BUCKET, "path": "sites/seg", "endpoint": moto_url,
        "access_key_id": "env:ALPRBOX_TEST_S3_KEY",
        "secret_access_key": "env:ALPRBOX_TEST_S3_SECRET"}})
    assert settings.target is not None and settings.target.type == "s3"
    store = S3Segments(settings.target)
    source = tmp_path / "image-2026-05-01-000.seg"
    source.write_bytes(os.urandom(300_000))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    await store.put(source.name, source, source.stat().st_size, digest)
    assert await store.names() == [source.name]
    await store.get(source.name, tmp_path / "back.seg")
    assert (tmp_path / "back.seg").read_bytes() == source.read_bytes()
    await store.delete(source.name)
    assert await store.names() == []
