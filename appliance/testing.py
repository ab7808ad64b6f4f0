"""The host's test kit for plugin authors: an opt-in pytest plugin.

Enable it in your ``conftest.py``::

    pytest_plugins = ["appliance.testing"]

It provides:

* ``appliance_host`` — an async context-manager factory that runs an isolated appliance (no
  entry-point discovery, temporary store, fake clock unless you pass one)::

      async with appliance_host(plugins=[my_plugin], config={"cameras": [...]}) as box:
          ...

* ``fake_clock`` — a :class:`FakeClock`; ``mock_pins`` — gpiozero's own mock pin factory (a Pi 5).
* Fakes: :class:`FakeCamera`, :class:`FakeRecognizer`, :class:`RecordingExporter`,
  :class:`FakeHotlist`, registered by the ``fakes`` plugin module (:data:`FAKES`).
* :class:`CameraConformance` — subclass it in your tests and give it ``camera_plugin`` and
  ``camera_settings`` fixtures; it checks your camera behaves as the host expects.
  :class:`ExporterConformance` does the same for exporters (``exporter_plugin``,
  ``exporter_settings``).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar, Literal

import numpy as np
import pytest
import yaml
from pydantic import Field

from . import hookimpl
from ._appliance import Appliance
from ._config import parse_config
from ._plugins import create_plugin_host
from .base import (
    Camera,
    Delivery,
    Exporter,
    HotlistBatch,
    HotlistEntry,
    HotlistSource,
    PluginContext,
    Recognizer,
)
from .errors import DeviceUnavailable
from .models import Frame, Image, PlateCandidate, PlateDetection, PlateRead
from .settings import CameraSettings, ExporterSettings, HotlistSourceSettings, RecognizerSettings

__all__ = [
    "FAKES",
    "CameraConformance",
    "ExporterConformance",
    "FakeCamera",
    "FakeClock",
    "FakeHotlist",
    "FakeRecognizer",
    "RecordingExporter",
    "make_appliance",
    "plate_read",
]


def plate_read(text: str, at: datetime, **fields: Any) -> PlateRead:
    """A stored-read-shaped :class:`PlateRead` of ``text`` seen at ``at`` for a second, on camera
    ``gate``, with crop bytes that name the plate (``b"\\xff\\xd8crop-" + text``); ``fields``
    override any of it."""
    values: dict[str, Any] = {
        "camera": "gate",
        "text": text,
        "confidence": 0.9,
        "first_seen": at,
        "last_seen": at + timedelta(seconds=1),
        "box": (1, 2, 3, 4),
        "crop_jpeg": b"\xff\xd8crop-" + text.encode(),
        **fields,
    }
    return PlateRead(**values)


class FakeClock:
    """A clock that only moves when told to (or when something sleeps on it)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)  # let the loop run, as a real sleep would


# -- fakes ---------------------------------------------------------------------------------


class FakeCameraSettings(CameraSettings):
    type: Literal["fake"] = "fake"
    frames: int = Field(default=10, ge=0, description="Frames to deliver, then end.")
    width: int = Field(default=320, ge=16)
    height: int = Field(default=240, ge=16)
    fps: float = Field(default=10.0, gt=0)
    fail_after: int | None = Field(default=None, description="Raise a bug after this many.")


class FakeCamera(Camera):
    """Delivers synthetic frames with a moving bright block, then ends."""

    settings_model = FakeCameraSettings
    may_end = True
    settings: FakeCameraSettings

    async def frames(self) -> AsyncIterator[Frame]:
        s = self.settings
        for i in range(s.frames):
            if s.fail_after is not None and i >= s.fail_after:
                raise RuntimeError("fake camera bug")
            image = np.zeros((s.height, s.width, 3), np.uint8)
            x = (i * 7) % max(1, s.width - 40)
            image[s.height // 3 : s.height // 3 + 20, x : x + 40] = 255
            await self.context.clock.sleep(1.0 / s.fps)
            yield Frame(image=image, timestamp=self.context.clock.now())


class FakeRecognizerSettings(RecognizerSettings):
    type: Literal["fake"] = "fake"
    plate: str = Field(default="", description="Plate reported for every non-blank frame.")
    confidence: float = Field(default=0.9, ge=0, le=1)


class FakeRecognizer(Recognizer):
    """Reports ``plate`` (a box at the brightest column) on every frame that is not blank."""

    settings_model = FakeRecognizerSettings
    settings: FakeRecognizerSettings

    def recognize(self, image: Image) -> list[PlateDetection]:
        array = np.asarray(image)
        if not self.settings.plate or array.ndim != 3 or int(array.max()) == 0:
            return []
        h, w = array.shape[:2]
        c = self.settings.confidence
        text = self.settings.plate
        return [
            PlateDetection(
                box=(w // 4, h // 3, w // 2, h // 6),
                detector_confidence=c,
                text=text,
                confidence=c,
                candidates=(PlateCandidate(text, c),),
                char_confidences=(c,) * len(text),
            )
        ]


class RecordingExporterSettings(ExporterSettings):
    type: Literal["recording"] = "recording"


class RecordingExporter(Exporter):
    """Keeps every delivery it is given, by exporter name, in :attr:`delivered`.

    Set :attr:`fail_next` to make the next N attempts raise (a flapping destination).
    """

    settings_model = RecordingExporterSettings
    delivered: ClassVar[dict[str, list[Delivery]]] = {}
    fail_next: ClassVar[dict[str, int]] = {}

    async def deliver(self, delivery: Delivery) -> None:
        name = self.settings.name
        if self.fail_next.get(name, 0) > 0:
            self.fail_next[name] -= 1
            raise DeviceUnavailable(f"recording exporter {name!r}: told to fail")
        got = self.delivered.setdefault(name, [])
        if all(d.id != delivery.id for d in got):  # idempotent on delivery.id
            got.append(delivery)


class FakeHotlistSettings(HotlistSourceSettings):
    type: Literal["fake"] = "fake"
    plates: list[str] = Field(default_factory=list)


class FakeHotlist(HotlistSource):
    settings_model = FakeHotlistSettings
    settings: FakeHotlistSettings

    async def fetch(self) -> HotlistBatch:
        return HotlistBatch(
            tuple(
                HotlistEntry(plate=p, category="test", reason="test") for p in self.settings.plates
            )
        )


class _Fakes:
    """The fakes as a plugin object (register it with ``plugins=[FAKES]``)."""

    __name__ = "appliance.testing.fakes"

    @hookimpl
    def appliance_camera_types(self) -> list[type[Camera]]:
        return [FakeCamera]

    @hookimpl
    def appliance_recognizer_types(self) -> list[type[Recognizer]]:
        return [FakeRecognizer]

    @hookimpl
    def appliance_exporter_types(self) -> list[type[Exporter]]:
        return [RecordingExporter]

    @hookimpl
    def appliance_hotlist_source_types(self) -> list[type[HotlistSource]]:
        return [FakeHotlist]


FAKES = _Fakes()


@contextlib.asynccontextmanager
async def make_appliance(
    data_dir: Path,
    *,
    plugins: Iterable[ModuleType | object] = (),
    config: dict[str, Any] | None = None,
    clock: Any = None,
    discover: bool = False,
    schedule_hotlists: bool = False,
) -> AsyncIterator[Appliance]:
    """Run an isolated appliance for a test; stops it (gracefully) on exit.

    The fakes are always registered; ``config`` defaults to the fake recognizer and no cameras.
    Hot lists load their saved copies but refresh only when the test calls
    ``box.hotlists.refresh(name)``, unless ``schedule_hotlists`` is set.
    """
    host = create_plugin_host(discover=discover, plugins=[FAKES, *plugins])
    data = {"recognition": {"type": "fake"}, **(config or {})}
    # Each test box has its own master key, beside (never inside) its data directory.
    data.setdefault("keys", {"master_key_file": str(data_dir.parent / f"{data_dir.name}.key")})
    site = parse_config(yaml.safe_dump(data), "<test config>", host)
    box = Appliance(
        config=site,
        plugins=host,
        data_dir=data_dir,
        clock=clock or FakeClock(),
        schedule_hotlists=schedule_hotlists,
    )
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_recording_exporter() -> Iterable[None]:
    """:class:`RecordingExporter` keeps what it got on the class: every test starts clean."""
    RecordingExporter.delivered.clear()
    RecordingExporter.fail_next.clear()
    yield
    RecordingExporter.delivered.clear()
    RecordingExporter.fail_next.clear()


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def appliance_host(
    tmp_path: Path,
) -> Callable[..., contextlib.AbstractAsyncContextManager[Appliance]]:
    counter = iter(range(sys.maxsize))

    def factory(**kwargs: Any) -> contextlib.AbstractAsyncContextManager[Appliance]:
        return make_appliance(tmp_path / f"box{next(counter)}", **kwargs)

    return factory


@pytest.fixture
def mock_pins() -> Iterable[Any]:
    """gpiozero's MockFactory for a Raspberry Pi 5, installed as the default pin factory."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory

    previous = Device.pin_factory
    factory = MockFactory(revision="d04170")
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


# -- conformance -----------------------------------------------------------------------------


async def _first_frames(camera: Camera, count: int, limit_s: float) -> list[Frame]:
    frames: list[Frame] = []

    async def collect() -> None:
        async for frame in camera.frames():
            frames.append(frame)
            if len(frames) >= count:
                break

    await asyncio.wait_for(collect(), limit_s)
    return frames


class CameraConformance:
    """What every camera plugin must do. Subclass it and provide two fixtures:

    * ``camera_plugin``: the plugin module (or object) whose hook registers the camera;
    * ``camera_settings``: a settings dict for a camera that works in the test environment.

    Set ``frame_timeout`` for slow devices. Capability flags on the camera class
    (``supports_snapshot``) switch the matching tests on.
    """

    frame_timeout: ClassVar[float] = 10.0
    frames_to_check: ClassVar[int] = 3

    @pytest.fixture
    def camera_class(self, camera_plugin: Any, camera_settings: dict[str, Any]) -> type[Camera]:
        host = create_plugin_host(discover=False, plugins=[camera_plugin])
        failed = [s for s in host.statuses if s.status != "ok"]
        assert not failed, f"plugin did not load: {failed[0].error}"
        cls = host.type_for("camera", camera_settings["type"])
        assert cls is not None, f"no camera type {camera_settings['type']!r} registered"
        return cls

    @pytest.fixture
    def camera(
        self, camera_class: type[Camera], camera_settings: dict[str, Any], tmp_path: Path
    ) -> Camera:
        settings = camera_class.settings_model.model_validate(camera_settings)
        import logging

        context = PluginContext(logging.getLogger("conformance"), tmp_path, FakeClock())
        return camera_class(settings, context)

    def test_settings_reject_unknown_keys(
        self, camera_class: type[Camera], camera_settings: dict[str, Any]
    ) -> None:
        from pydantic import ValidationError

        with pytest.raises(ValidationError):
            camera_class.settings_model.model_validate({**camera_settings, "no_such_key": 1})

    def test_settings_fields_are_documented(self, camera_class: type[Camera]) -> None:
        model = camera_class.settings_model
        own = set(model.model_fields) - set(CameraSettings.model_fields)
        undocumented = [n for n in own if not model.model_fields[n].description]
        assert not undocumented, f"settings without a description: {undocumented}"

    async def test_delivers_bgr_frames_with_utc_timestamps(self, camera: Camera) -> None:
        await camera.open()
        try:
            frames = await _first_frames(camera, self.frames_to_check, self.frame_timeout)
        finally:
            await camera.close()
        assert len(frames) == self.frames_to_check
        for frame in frames:
            image = np.asarray(frame.image)
            assert image.ndim == 3 and image.shape[2] == 3, "frames must be H×W×3 (BGR)"
            assert image.dtype == np.uint8
            assert frame.timestamp.tzinfo is not None, "timestamps must be timezone-aware"
            assert frame.timestamp.utcoffset() == timedelta(0), "timestamps must be UTC"

    async def test_reopens_after_close(self, camera: Camera) -> None:
        for _ in range(2):  # the host reconnects by close() then open() on the same instance
            await camera.open()
            try:
                frames = await _first_frames(camera, 1, self.frame_timeout)
            finally:
                await camera.close()
            assert len(frames) == 1

    async def test_close_is_safe_twice(self, camera: Camera) -> None:
        await camera.open()
        await camera.close()
        await camera.close()

    async def test_probe_describes_device(self, camera: Camera) -> None:
        info = await asyncio.wait_for(camera.probe(), self.frame_timeout)
        assert isinstance(info, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in info.items())

    async def test_motion_hint_is_a_remembered_state(self, camera: Camera) -> None:
        # The host calls it for every frame on the event loop: it must answer at once, before
        # open, while streaming and after close, with True, False or None (no events).
        assert camera.motion_hint() in (True, False, None)
        await camera.open()
        try:
            await _first_frames(camera, 1, self.frame_timeout)
            assert camera.motion_hint() in (True, False, None)
        finally:
            await camera.close()
        assert camera.motion_hint() in (True, False, None)

    async def test_snapshot(self, camera: Camera) -> None:
        if not camera.supports_snapshot:
            pytest.skip("camera does not claim supports_snapshot")
        await camera.open()
        try:
            frame = await asyncio.wait_for(camera.snapshot(), self.frame_timeout)
        finally:
            await camera.close()
        assert np.asarray(frame.image).ndim == 3

    async def test_runs_in_the_host(
        self, camera_plugin: Any, camera_settings: dict[str, Any], tmp_path: Path
    ) -> None:
        config = {"cameras": [{**camera_settings, "name": "conformance"}]}
        async with make_appliance(tmp_path / "box", plugins=[camera_plugin], config=config) as box:
            status = box.cameras["conformance"]
            for _ in range(int(self.frame_timeout * 20)):
                if status.frames >= self.frames_to_check:
                    break
                await asyncio.sleep(0.05)
            assert status.frames >= self.frames_to_check, (
                f"host saw {status.frames} frames; camera state {status.state}: {status.error}"
            )


class ExporterConformance:
    """What every exporter plugin must do. Subclass it and provide two fixtures:

    * ``exporter_plugin``: the plugin module (or object) whose hook registers the exporter;
    * ``exporter_settings``: a settings dict for a destination that works in the test (a
      temporary directory, a receiver on loopback).

    It checks the settings contract, that the exporter declares a known channel, takes a
    :class:`~appliance.base.Delivery` twice without harm (idempotent on ``delivery.id``), closes
    twice safely, receives no store, and delivers through a real host's outbox.
    """

    @pytest.fixture
    def exporter_class(
        self, exporter_plugin: Any, exporter_settings: dict[str, Any]
    ) -> type[Exporter]:
        host = create_plugin_host(discover=False, plugins=[exporter_plugin])
        failed = [s for s in host.statuses if s.status != "ok"]
        assert not failed, f"plugin did not load: {failed[0].error}"
        cls = host.type_for("exporter", exporter_settings["type"])
        assert cls is not None, f"no exporter type {exporter_settings['type']!r} registered"
        return cls

    @pytest.fixture
    def exporter(
        self, exporter_class: type[Exporter], exporter_settings: dict[str, Any], tmp_path: Path
    ) -> Exporter:
        import logging

        settings = exporter_class.settings_model.model_validate(exporter_settings)
        return exporter_class(
            settings, PluginContext(logging.getLogger("conformance"), tmp_path, FakeClock())
        )

    @staticmethod
    def sample_delivery(channel: str, name: str = "conformance") -> Delivery:
        import uuid

        from ._sharing.payload import freeze
        from .base import Recipient

        at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        return Delivery(
            id=uuid.uuid4().hex, exporter=name, approval_id="conformance", channel=channel,
            recipient=Recipient("Conformance Test Agency", "CA0000000"),
            purpose="stolen vehicle", case_number="26-000001", created_at=at,
            payload=freeze({"kind": "reads", "reads": [
                {"read_id": "r1", "plate": "TEST123", "seen_at": at.isoformat()}]}),
            files=freeze({"records/r1.json": b"{}"}),
        )

    def test_settings_reject_unknown_keys(
        self, exporter_class: type[Exporter], exporter_settings: dict[str, Any]
    ) -> None:
        from pydantic import ValidationError

        with pytest.raises(ValidationError):
            exporter_class.settings_model.model_validate({**exporter_settings, "no_such_key": 1})

    def test_settings_fields_are_documented(self, exporter_class: type[Exporter]) -> None:
        model = exporter_class.settings_model
        own = set(model.model_fields) - set(ExporterSettings.model_fields)
        undocumented = [n for n in own if not model.model_fields[n].description]
        assert not undocumented, f"settings without a description: {undocumented}"

    def test_channel_is_one_the_gate_knows(self, exporter_class: type[Exporter]) -> None:
        from ._policy.gate import CHANNELS

        assert exporter_class.channel in CHANNELS and exporter_class.channel != "replication"

    async def test_delivers_and_is_idempotent(self, exporter: Exporter) -> None:
        delivery = self.sample_delivery(exporter.channel, exporter.settings.name)
        try:
            await exporter.deliver(delivery)
            await exporter.deliver(delivery)  # a retry after a lost answer
        finally:
            await exporter.close()

    async def test_close_is_safe_twice(self, exporter: Exporter) -> None:
        await exporter.close()
        await exporter.close()

    def test_gets_no_store(self, exporter: Exporter) -> None:
        import dataclasses

        names = {f.name for f in dataclasses.fields(exporter.context)}
        assert not names & {"store", "cipher", "appliance", "gate", "outbox"}
        assert not any(type(v).__name__ in ("Store", "FieldCipher", "Appliance")
                       for v in vars(exporter).values())

    async def test_delivers_through_the_host_outbox(
        self, exporter_plugin: Any, exporter_settings: dict[str, Any], tmp_path: Path
    ) -> None:
        from ._sharing.authority import Authorization

        settings = {**exporter_settings, "name": "conformance"}
        extra = [] if exporter_plugin is FAKES else [exporter_plugin]  # the fakes are in
        async with make_appliance(tmp_path / "box", plugins=extra,
                                  config={"exporters": [settings]}) as box:
            assert box.sharing is not None
            outbox = box.sharing.outbox
            channel = outbox.exporters["conformance"][0].channel
            sample = self.sample_delivery(channel)
            auth = Authorization("conformance", channel, sample.recipient, sample.purpose,
                                 sample.case_number, "conformance test")

            class Approves:
                async def authorize_delivery(self, approval_id: str, *, exporter: str,
                                             channel: str, actor: str) -> Authorization:
                    return auth

            outbox.authority = Approves()
            delivery_id = await outbox.enqueue(auth, "conformance", sample.payload,
                                               files=sample.files, actor="conformance")
            await outbox.deliver_due("conformance")
            row = await outbox.records.get(delivery_id)
            assert row is not None
            assert row.status == "delivered", f"not delivered: {row.last_error}"
