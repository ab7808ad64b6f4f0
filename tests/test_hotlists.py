"""Hot lists in the host: refresh, keep-previous-on-failure, snapshots, staleness, alerts."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest

from appliance import (
    DeviceUnavailable,
    HotlistBatch,
    HotlistEntry,
    HotlistFormatError,
    HotlistSource,
    HotlistSourceSettings,
    PlateRead,
    hookimpl,
)
from appliance.testing import FakeClock


class ScriptedSettings(HotlistSourceSettings):
    type: Literal["scripted"] = "scripted"


class ScriptedSource(HotlistSource):
    """Returns whatever the test put in ``next``: a batch, or an exception to raise."""

    settings_model = ScriptedSettings
    next: ClassVar[list[Any]] = []

    async def fetch(self) -> HotlistBatch:
        item = ScriptedSource.next.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    def parse(self, data: bytes) -> HotlistBatch:
        lines = data.decode().split()
        if not lines or lines[0] != "PLATES":
            raise HotlistFormatError("line 1: not a plate list")
        return batch(*lines[1:])


class ScriptedPlugin:
    __name__ = "scripted"

    @hookimpl
    def appliance_hotlist_source_types(self) -> list[type[HotlistSource]]:
        return [ScriptedSource]


def batch(*plates: str, **kw: Any) -> HotlistBatch:
    return HotlistBatch(
        tuple(
            HotlistEntry(plate=p, state="CA", category="Stolen Vehicle", reference=f"NIC-{p}")
            for p in plates
        ),
        **kw,
    )


CONFIG = {"hotlists": [{"name": "ncic", "type": "scripted", "max_age_hours": 24}]}


@pytest.fixture(autouse=True)
def _reset() -> None:
    ScriptedSource.next = []


async def test_refresh_swaps_in_the_new_list_and_counts_the_diff(appliance_host: Any) -> None:
    async with appliance_host(plugins=[ScriptedPlugin()], config=CONFIG) as box:
        manager = box.hotlists
        ScriptedSource.next = [batch("7ABC123", "8DEF456"), batch("8DEF456", "9GHI789")]
        assert await manager.refresh("ncic")
        assert [m.hit.listed.entry.plate for m in manager.match("7ABC123", "CA")] == ["7ABC123"]
        assert await manager.refresh("ncic")
        assert manager.match("7ABC123", "CA") == []
        assert len(manager.match("9GHI789", "CA")) == 1
        [latest, first] = await box.store.hotlists.history("ncic")
        assert (first.added, first.removed) == (2, 0)
        assert (latest.added, latest.removed, latest.entries) == (1, 1, 2)


@pytest.mark.parametrize(
    "failure",
    [DeviceUnavailable("connection refused"), HotlistFormatError("line 3: truncated file")],
)
async def test_a_failed_refresh_keeps_the_previous_list(
    appliance_host: Any, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    async with appliance_host(plugins=[ScriptedPlugin()], config=CONFIG) as box:
        manager = box.hotlists
        ScriptedSource.next = [batch("7ABC123"), failure, failure]
        assert await manager.refresh("ncic")
        assert not await manager.refresh("ncic")
        assert not await manager.refresh("ncic")
        status = manager.status["ncic"]
        assert status.entries == 1 and str(failure) in (status.error or "")
        assert len(manager.match("7ABC123")) == 1  # still matching on the old list
        history = await box.store.hotlists.history("ncic")
        assert [h.outcome for h in history] == ["failed", "failed", "ok"]
        assert str(failure) in history[0].detail["error"]
    warnings = [r for r in caplog.records if "not refreshed" in r.getMessage()]
    assert len(warnings) == 1, "one log line per distinct failure, not per retry"


async def test_lists_survive_a_restart_encrypted(tmp_path: Path) -> None:
    from appliance.testing import make_appliance

    ScriptedSource.next = [batch("ZZTOP42", dropped={"Immigration Violator File": 3})]
    async with make_appliance(tmp_path, plugins=[ScriptedPlugin()], config=CONFIG) as box:
        assert await box.hotlists.refresh("ncic")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert b"ZZTOP42" not in path.read_bytes(), f"hot list in clear in {path}"
    async with make_appliance(tmp_path, plugins=[ScriptedPlugin()], config=CONFIG) as box:
        # No fetch yet (nothing scripted): the saved list is active at start.
        assert len(box.hotlists.match("ZZTOP42")) == 1
        assert box.hotlists.status["ncic"].dropped == {"Immigration Violator File": 3}


async def test_hits_from_an_old_list_are_marked_stale(appliance_host: Any) -> None:
    clock = FakeClock()
    async with appliance_host(plugins=[ScriptedPlugin()], config=CONFIG, clock=clock) as box:
        ScriptedSource.next = [batch("7ABC123")]
        await box.hotlists.refresh("ncic")
        assert not box.hotlists.match("7ABC123")[0].stale
        clock.advance(25 * 3600)
        assert box.hotlists.match("7ABC123")[0].stale
        assert box.hotlists.status["ncic"].as_dict(clock.now())["stale"] is True


async def test_matching_never_misses_during_swaps(appliance_host: Any) -> None:
    async with appliance_host(plugins=[ScriptedPlugin()], config=CONFIG) as box:
        manager = box.hotlists
        filler = [f"{i:07d}" for i in range(20000)]
        ScriptedSource.next = [batch("7ABC123", *filler) for _ in range(6)]
        await manager.refresh("ncic")
        counts: list[int] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                counts.append(len(manager.match("7ABC123", "CA")))

        thread = threading.Thread(target=reader)
        thread.start()
        for _ in range(5):
            assert await manager.refresh("ncic")
        stop.set()
        thread.join()
        assert len(counts) > 100
        assert set(counts) == {1}, "a read matched during a swap saw no list or two lists"


async def test_a_read_on_a_list_becomes_an_alert(tmp_path: Path) -> None:
    from appliance.testing import make_appliance

    camera = {
        "recognition": {"type": "fake", "plate": "7ABC123"},
        "cameras": [{"name": "gate", "type": "fake", "frames": 10}],
    }

    async def run_camera_with_list(plates: str, data: Path) -> Any:
        # The list is in place (saved from an earlier run) before the camera's first frame.
        ScriptedSource.next = [batch(plates)]
        async with make_appliance(data, plugins=[ScriptedPlugin()], config=CONFIG) as box:
            assert await box.hotlists.refresh("ncic")
        return make_appliance(data, plugins=[ScriptedPlugin()], config={**CONFIG, **camera})

    # Listed with an 8 where the camera reads a 3: not an OCR confusion pair, no alert.
    async with await run_camera_with_list("7ABC128", tmp_path / "a") as box:
        await box.wait_cameras_done()
        assert await box.store.alerts.recent() == []
    async with await run_camera_with_list("7A8C123", tmp_path / "b") as box:
        await box.wait_cameras_done()
        [alert] = await box.store.alerts.recent()
        assert alert.state == "alert" and alert.list_name == "ncic"
        assert alert.kind == "confusion"
        assert "position 3" in alert.explanation
        assert alert.entry.plate == "7A8C123" and alert.entry.reference == "NIC-7A8C123"
        full = await box.store.alerts.get(alert.id)
        assert full is not None and full.read is not None and full.read.text == "7ABC123"
        assert box.metrics.registry.get_sample_value("alprbox_alerts_total", {"list": "ncic"}) == 1


async def test_alerts_are_published_live(appliance_host: Any) -> None:
    async with appliance_host(plugins=[ScriptedPlugin()], config=CONFIG) as box:
        ScriptedSource.next = [batch("7ABC123")]
        await box.hotlists.refresh("ncic")
        listener = box.alert_bus.subscribe()
        now = box.clock.now()
        await box._on_read(PlateRead("gate", "7ABC123", 0.9, now, now, (0, 0, 1, 1)))
        alert = await asyncio.wait_for(listener.get(), 1)
        assert alert.kind == "exact" and alert.read_id
