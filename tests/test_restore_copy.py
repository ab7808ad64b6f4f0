"""City IT searches a restored copy read-only (``alprbox copy search``): nothing in the copy
changes, a purpose and case number are required, a day purged on the box stays unreadable, and
every restore, search and refused attempt is in the copy's signed access log, which an auditor
checks with the log key's public key."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from replication_rig import file_site
from test_replication import Writer, restore_cli

from appliance import PlateRead
from appliance._lifecycle.records import IMAGE, READ
from appliance._lifecycle.retention import Purger
from appliance._replication.copy_log import LOG_NAME
from appliance.testing import FakeClock, make_appliance, plate_read

NOW = datetime(2026, 6, 20, 9, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=40)


def a_read(text: str, at: datetime) -> PlateRead:
    return plate_read(text, at)


def alprbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args], capture_output=True, text=True, timeout=120
    )


def fingerprint(folder: Path) -> dict[str, tuple[str, float]]:
    """Every file of the copy (but its access log): content hash and modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LOG_NAME
    }


def backup(src: Path, dst: Path) -> None:
    a, b = sqlite3.connect(src), sqlite3.connect(dst)
    a.backup(b)
    a.close()
    b.close()


@pytest.fixture
def copy(tmp_path: Path) -> dict[str, Any]:
    """A box with reads of two days; a copy of its database from *before* the old day's purge,
    with keys.db from after it (what ``alprbox restore --txid`` gives the city)."""
    import asyncio

    data = tmp_path / "box"
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir(mode=0o700)
    policy = {"retention": {"read_days": 30, "hit_days": 365, "image_days": 0}}

    async def build() -> dict[str, str]:
        async with make_appliance(data, config=policy, clock=FakeClock(NOW)) as box:
            store = box.store
            assert store is not None
            old, new = a_read("OLD1234", OLD), a_read("NEW5678", NOW)
            other = a_read("NEW5699", NOW + timedelta(minutes=1))
            for read in (old, new, other):
                await store.add_read(read)
            await store.write(lambda c: store.segments.close_before(c, "9999-12-31"))
            backup(data / "alprbox.db", copy_dir / "alprbox.db")
            shutil.copytree(data / "segments", copy_dir / "segments")
            purger = Purger(store, box.config.root.retention)
            for klass in (IMAGE, READ):
                await purger.purge(klass, OLD.date().isoformat(), NOW, "test")
            backup(data / "keys.db", copy_dir / "keys.db")
            return {"old": old.id, "new": new.id, "other": other.id}

    ids = asyncio.run(build())
    return {
        "dir": copy_dir,
        "key": tmp_path / "box.key",
        "log_key": tmp_path / "city" / "copy-log.key",
        "ids": ids,
    }


def search(c: dict[str, Any], *args: str, key: Path | None = None) -> Any:
    return alprbox(
        "copy", "search", str(c["dir"]), *args, "--key-file", str(key or c["key"]),
        "--log-key", str(c["log_key"]), "--json",
    )


def test_search_reads_the_copy_without_changing_it_and_logs_every_access(
    copy: dict[str, Any],
) -> None:
    folder = copy["dir"]
    before = fingerprint(folder)

    done = search(copy, "--plate", "new 5678", "--purpose", "stolen vehicle", "--case", "C-17")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert [(r["id"], r["plate"], r["images"]) for r in found["reads"]] == [
        (copy["ids"]["new"], "NEW5678", ["crop"])
    ]

    # A pattern over a window decrypts that window only.
    done = search(copy, "--pattern", "NEW56*", "--start", NOW.isoformat(),
                  "--end", (NOW + timedelta(hours=1)).isoformat(),
                  "--purpose", "pattern check", "--case", "C-17")
    assert done.returncode == 0, done.stderr
    assert sorted(r["plate"] for r in json.loads(done.stdout)["reads"]) == ["NEW5678", "NEW5699"]

    # The purged day's rows are in this older copy, but its key is gone: counted, never shown.
    done = search(copy, "--plate", "OLD1234", "--purpose", "old case", "--case", "C-3")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "reads": [], "unreadable": 1, "copy": json.loads(done.stdout)["copy"]
    }

    # Without a purpose and a case number nothing is searched (and nothing logged).
    assert alprbox("copy", "search", str(folder), "--plate", "NEW5678",
                   "--key-file", str(copy["key"])).returncode == 2
    done = search(copy, "--plate", "NEW5678", "--purpose", "  ", "--case", "C-1")
    assert done.returncode == 2 and "purpose" in done.stderr

    # A wrong key opens nothing, and the attempt is logged.
    wrong = copy["key"].parent / "wrong.key"
    wrong.write_bytes(b"\x01" * 32)
    wrong.chmod(0o600)
    done = search(copy, "--plate", "NEW5678", "--purpose", "trying", "--case", "C-9", key=wrong)
    assert done.returncode == 1 and "wrong key" in done.stderr

    # Nothing in the copy was written: same bytes, same times, no -wal/-shm files appeared.
    assert fingerprint(folder) == before

    # The auditor: the log verifies with the public key alone...
    public = alprbox("copy", "log-key", "--log-key", str(copy["log_key"])).stdout.strip()
    done = alprbox("copy", "log", str(folder), "--public-key", public, "--json",
                   "--log-key", str(folder.parent / "absent.key"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["intact"] and report["records"] == 4
    assert [e["kind"] for e in report["entries"]] == [
        "copy.searched", "copy.searched", "copy.searched", "copy.search_refused"
    ]
    # ...and with the log key, says who searched what, why, and which reads were shown.
    done = alprbox("copy", "log", str(folder), "--details", "--json",
                   "--log-key", str(copy["log_key"]))
    details = [e["detail"] for e in json.loads(done.stdout)["entries"]]
    assert details[0]["purpose"] == "stolen vehicle" and details[0]["case_number"] == "C-17"
    assert details[0]["plate"] == "new 5678" and details[0]["shown"] == [copy["ids"]["new"]]
    assert details[2]["unreadable"] == 1 and details[2]["shown"] == []
    assert "wrong key" in details[3]["why"]
    # The details are not in the log file in clear. The plate is looked for as typed and as
    # normalized, not as bare digits: those turn up by chance in the records' hex signatures.
    raw = (folder / LOG_NAME).read_text()
    for secret in ("new 5678", "NEW5678", "stolen vehicle", "C-17", copy["ids"]["new"]):
        assert secret not in raw


def test_a_changed_or_removed_log_record_is_named(copy: dict[str, Any]) -> None:
    for case in ("C-1", "C-2", "C-3"):
        done = search(copy, "--plate", "NEW5678", "--purpose", "patrol check", "--case", case)
        assert done.returncode == 0, done.stderr
    log = copy["dir"] / LOG_NAME
    lines = log.read_text().splitlines()
    check = ("copy", "log", str(copy["dir"]), "--log-key", str(copy["log_key"]))
    assert alprbox(*check).returncode == 0

    edited = json.loads(lines[1])
    edited["actor"] = "someone-else"
    log.write_text("\n".join([lines[0], json.dumps(edited), lines[2]]) + "\n")
    done = alprbox(*check)
    assert done.returncode == 1 and "record 2: altered" in done.stdout

    log.write_text("\n".join([lines[0], lines[2]]) + "\n")
    done = alprbox(*check)
    assert done.returncode == 1 and "record 2" in done.stdout

    # A log key inside the copy is refused (whoever rewrites the copy could re-sign the log).
    done = alprbox("copy", "search", str(copy["dir"]), "--plate", "NEW5678", "--purpose",
                   "check", "--case", "C-4", "--key-file", str(copy["key"]),
                   "--log-key", str(copy["dir"] / "log.key"))
    assert done.returncode == 2 and "inside the copy" in done.stderr
    # Nothing is chained onto a broken log: the search is refused, the evidence kept.
    done = search(copy, "--plate", "NEW5678", "--purpose", "patrol check", "--case", "C-5")
    assert done.returncode == 2 and "broken log" in done.stderr


async def test_restore_is_logged_and_the_restored_copy_searched_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "keys" / "master.key"
    (tmp_path / "keys").mkdir(mode=0o700)
    env = {"ALPRBOX_KEY_FILE": str(key_file)}
    monkeypatch.setenv("ALPRBOX_KEY_FILE", str(key_file))
    data, share, restored = tmp_path / "data", tmp_path / "share", tmp_path / "restored"
    log_key = tmp_path / "city" / "copy-log.key"
    site = tmp_path / "site.yaml"
    site.write_text(file_site(share) + f"data_dir: {data}\n")
    writer = await Writer.start(data, site, 30, env, close=True)
    assert await writer.finish() == 0

    code, report = await restore_cli("--config", str(site), "--to", str(restored),
                                     "--purpose", "quarterly audit", "--case", "A-2026-2",
                                     "--log-key", str(log_key))
    assert code == 0, report
    before = fingerprint(restored)

    wanted = writer.acked[:3]
    done = alprbox("copy", "search", str(restored), *(a for i in wanted for a in ("--read", i)),
                   "--purpose", "audit sample", "--case", "A-2026-2", "--key-file",
                   str(key_file), "--log-key", str(log_key), "--json")
    assert done.returncode == 0, done.stderr
    assert sorted(r["id"] for r in json.loads(done.stdout)["reads"]) == sorted(wanted)
    assert fingerprint(restored) == before

    done = alprbox("copy", "log", str(restored), "--details", "--json", "--log-key", str(log_key))
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)["entries"]
    assert [e["kind"] for e in entries] == ["copy.restored", "copy.searched"]
    restored_detail = entries[0]["detail"]
    assert restored_detail["purpose"] == "quarterly audit"
    assert restored_detail["case_number"] == "A-2026-2"
    assert {d["name"]: d["integrity"] for d in restored_detail["databases"]} == {
        "alprbox.db": "ok", "keys.db": "ok"
    }
    assert sorted(entries[1]["detail"]["shown"]) == sorted(wanted)


def test_a_passphrase_copy_opens_with_the_passphrase_or_the_config_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.setenv("NORTH_GATE_PASSPHRASE", "correct horse battery staple")
    data, folder = tmp_path / "box", tmp_path / "copy"
    folder.mkdir(mode=0o700)
    keys = {"keys": {"passphrase": "env:NORTH_GATE_PASSPHRASE"}}

    async def build() -> str:
        async with make_appliance(data, config=keys, clock=FakeClock(NOW)) as box:
            assert box.store is not None
            read = a_read("PASS123", NOW)
            await box.store.add_read(read)
            for name in ("alprbox.db", "keys.db"):
                backup(data / name, folder / name)
            return read.id

    read_id = asyncio.run(build())
    log_key = str(tmp_path / "city" / "log.key")
    common = ("--plate", "PASS123", "--purpose", "passphrase copy", "--case", "C-8",
              "--log-key", log_key, "--json")
    done = alprbox("copy", "search", str(folder), "--passphrase", "env:NORTH_GATE_PASSPHRASE",
                   *common)
    assert done.returncode == 0, done.stderr
    assert [r["id"] for r in json.loads(done.stdout)["reads"]] == [read_id]

    config = tmp_path / "city-copy.yaml"
    config.write_text("keys: {passphrase: env:NORTH_GATE_PASSPHRASE}\n")
    done = alprbox("copy", "search", str(folder), "--config", str(config), *common)
    assert done.returncode == 0, done.stderr

    monkeypatch.setenv("NORTH_GATE_PASSPHRASE", "wrong")
    done = alprbox("copy", "search", str(folder), "--config", str(config), *common)
    assert done.returncode == 1 and "wrong key file or passphrase" in done.stderr
