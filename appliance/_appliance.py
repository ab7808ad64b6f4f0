"""The running appliance: store, recognizer, one supervisor and worker per camera, the read bus.

Start-up order and shutdown order are the contract that makes "no acknowledged read is lost"
true: on stop, cameras stop first (their queues close), workers drain their queues and flush
open tracks into the store, and only then is the store closed (which commits all it accepted).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._auth import FirstAdmin, ensure_first_admin
from ._config import SiteConfig
from ._crypto import FieldCipher
from ._hardware import AlertSignal, start_alert_signal
from ._hotlist.alerts import Alert
from ._hotlist.bolo_service import BoloService
from ._hotlist.manager import HotlistManager
from ._lifecycle.keyprovider import load_master_key
from ._lifecycle.service import LifecycleService
from ._metrics import Metrics
from ._pipeline.bus import Bus
from ._pipeline.camera_supervisor import CameraStatus, CameraSupervisor
from ._pipeline.frame_queue import FrameQueue
from ._pipeline.gate import FrameGate
from ._pipeline.recognition_worker import RecognitionWorker
from ._pipeline.tracker import PlateTracker
from ._plugins import PluginHost
from ._replication import ReplicationSupervisor
from ._sharing.service import SharingRuntime, start_sharing
from ._storage import Store
from ._storage.audit import load_signing_key, signing_key_path
from .base import Camera, Clock, PluginContext, Recognizer, SystemClock
from .hardware.box import BoxHardware
from .hardware.metrics import HardwareCollector
from .models import PlateRead

logger = logging.getLogger(__name__)

DB_NAME = "alprbox.db"
KEY_NAME = "master.key"
# How long a stop waits for each camera's plugin to let go before leaving it behind: a plugin
# that ignores cancellation must not keep the box (and every read still in memory) from stopping.
CAMERA_STOP_TIMEOUT_S = 15.0


@dataclass
class Appliance:
    """Everything one box runs. Build it with :func:`build_appliance`, then ``start``/``stop``."""

    config: SiteConfig
    plugins: PluginHost
    data_dir: Path
    clock: Clock = field(default_factory=SystemClock)
    recognizer: Recognizer | None = None
    store: Store | None = None
    cipher: FieldCipher | None = None
    metrics: Metrics = field(default_factory=Metrics)
    bus: Bus[PlateRead] = field(default_factory=Bus)
    alert_bus: Bus[Alert] = field(default_factory=Bus)
    hotlists: HotlistManager | None = None
    #: refresh hot lists on their schedule (tests drive refreshes themselves)
    schedule_hotlists: bool = True
    bolos: BoloService | None = None
    alert_signal: AlertSignal | None = None
    #: litestream processes replicating the databases to the city (issue 5)
    replication: ReplicationSupervisor | None = None
    #: the enclosure's devices (tamper switch, GPS, IR lamp and relay, sensors, uplink)
    hardware: BoxHardware | None = None
    _signal_task: asyncio.Task[None] | None = None
    cameras: dict[str, CameraStatus] = field(default_factory=dict)
    first_admin: FirstAdmin | None = None
    recognizer_error: str | None = None
    #: errors of a site config that could not be used; the box then runs in safe mode
    config_problems: list[str] = field(default_factory=list)
    _camera_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _worker_tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _camera_objects: dict[str, Camera] = field(default_factory=dict)
    _camera_queues: dict[str, FrameQueue] = field(default_factory=dict)
    _inference: ThreadPoolExecutor | None = None
    started: bool = False
    lifecycle: LifecycleService | None = None
    #: exporters and their outbox, the only way data leaves for a partner (issue 7)
    sharing: SharingRuntime | None = None

    def context(self, kind: str, name: str) -> PluginContext:
        plugin_dir = self.data_dir / "plugins" / kind / name
        return PluginContext(
            logger=logging.getLogger(f"appliance.plugins.{kind}.{name}"),
            data_dir=plugin_dir,
            clock=self.clock,
            # Only cameras get the box's devices (GPS fix, IR lamp): nothing else needs them.
            hardware=self.hardware if kind == "cameras" else None,
        )

    async def start(self) -> None:
        store = await self.open_store()
        self.first_admin = await ensure_first_admin(
            store, self.config.root.site.name, self.clock.now().date(),
            self.config.root.console.training_max_days,
        )
        self.replication = ReplicationSupervisor(self.config.root.replication)
        await self.replication.start(self)
        await self.start_hotlists(schedule=self.schedule_hotlists)
        # Retention purges and segment closing on schedule (issue 5).
        self.lifecycle = LifecycleService(
            store, self.config.root.retention, self.clock, self.metrics
        )
        self.lifecycle.start(schedule=self.schedule_hotlists)
        # Exporter workers run with the schedules; tests drive deliveries themselves.
        self.sharing = await start_sharing(self, workers=self.schedule_hotlists)
        signal = start_alert_signal(self.config.hardware.gpio, self.alert_bus)
        await self._start_hardware()
        if signal is not None:
            self.alert_signal, self._signal_task = signal
        self.metrics.plugins_failed.set(
            sum(1 for s in self.plugins.statuses if s.status == "failed")
        )
        self._inference = ThreadPoolExecutor(1, thread_name_prefix="inference")
        await self._load_recognizer()
        for settings in self.config.cameras:
            self._start_camera(settings)
        self.started = True

    async def open_store(self) -> Store:
        """Open (creating if needed) the encrypted store; ``alprbox`` subcommands use this too."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        root = self.config.root
        # The master key lives outside the data directory (issue 5, keyprovider.py).
        self.cipher = FieldCipher(
            load_master_key(root.keys, self.data_dir, root.site.name),
            root.keys.city_public_bytes(),
        )
        # Refuse a missing-permission or wrong signing key now, not at the first login.
        load_signing_key(signing_key_path(self.data_dir / DB_NAME), create=True)
        self.store = await Store.open(self.data_dir / DB_NAME, self.cipher)
        self.store.clock = self.clock  # audit event times follow the appliance clock (issue 6)
        return self.store

    async def _start_hardware(self) -> None:
        """Tamper switch (audited), GPS, lamp outputs, sensors, uplink: before the cameras,
        which reach the GPS and lamp through their PluginContext (issue 8)."""
        store = self.store
        assert store is not None

        async def audit(kind: str, detail: dict[str, Any]) -> None:
            await store.record_event(kind, "hardware", detail)

        hardware = BoxHardware(
            self.config.hardware.gpio,
            self.config.hardware.sensors,
            self.config.root.devices,
            self.clock,
            audit,
        )
        if not hardware.fitted:
            return
        self.hardware = hardware
        self.metrics.registry.register(HardwareCollector(hardware))
        try:
            await hardware.start()
        except Exception as err:  # a bug in a device driver must not keep the box down
            logger.exception("Box hardware failed to start")
            hardware.problems.append(f"hardware start failed: {type(err).__name__}: {err}")

    async def start_hotlists(self, *, schedule: bool = True) -> HotlistManager:
        """Load the last good lists and, with ``schedule``, keep them refreshed."""
        assert self.store is not None and self.cipher is not None
        sources = {}
        for settings in self.config.hotlists:
            cls = self.plugins.type_for("hotlist_source", settings.type)
            assert cls is not None  # config validation guarantees it
            sources[settings.name] = (
                cls(settings, self.context("hotlists", settings.name)),
                settings,
            )
        self.hotlists = HotlistManager(
            store=self.store,
            cipher=self.cipher,
            data_dir=self.data_dir,
            clock=self.clock,
            sources=sources,
        )
        await self.hotlists.start(schedule=schedule)
        self.bolos = BoloService(self.store, self.hotlists, self.clock)
        return self.hotlists

    async def _load_recognizer(self) -> None:
        settings = self.config.recognition
        cls = self.plugins.type_for("recognizer", settings.type)
        assert cls is not None  # config validation guarantees it
        recognizer: Recognizer = cls(settings, self.context("recognizer", settings.type))
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._inference, recognizer.load)
        except Exception as err:
            # Without a recognizer the box still serves its console and stored data.
            self.recognizer_error = f"{type(err).__name__}: {err}"
            logger.error("Recognizer '%s' failed to load: %s", settings.type, err)
            return
        self.recognizer = recognizer

    def _start_camera(self, settings: Any) -> None:
        status = CameraStatus(name=settings.name, type=settings.type)
        self.cameras[settings.name] = status
        cls = self.plugins.type_for("camera", settings.type)
        assert cls is not None
        try:
            camera: Camera = cls(settings, self.context("cameras", settings.name))
        except Exception as err:
            status.state, status.error = "failed", f"{type(err).__name__}: {err}"
            logger.exception("Camera '%s' (%s) could not be created", settings.name, cls.__name__)
            return
        self._camera_objects[settings.name] = camera
        queue = FrameQueue(settings.queue_size)
        self._camera_queues[settings.name] = queue
        supervisor = CameraSupervisor(camera, queue, status, self.metrics, self.clock)
        self._camera_tasks.append(
            asyncio.create_task(supervisor.run(), name=f"camera-{settings.name}")
        )
        if self.recognizer is None:
            status.error = f"not reading plates: recognizer unavailable ({self.recognizer_error})"
            return
        assert self._inference is not None
        pipeline = self.config.root.pipeline
        worker = RecognitionWorker(
            camera=settings.name,
            queue=queue,
            gate=FrameGate(pipeline),
            tracker=PlateTracker(
                settings.name, pipeline.track_timeout_seconds, pipeline.min_read_confidence
            ),
            recognizer=self.recognizer,
            executor=self._inference,
            sink=self._on_read,
            metrics=self.metrics,
            clock=self.clock,
            # The camera's own motion events gate the detector (issue 8), unless turned off.
            motion_hint=camera.motion_hint if pipeline.camera_events else None,
        )
        self._worker_tasks.append(asyncio.create_task(worker.run(), name=f"worker-{settings.name}"))

    async def _on_read(self, read: PlateRead) -> None:
        assert self.store is not None
        try:
            await self.store.add_read(read)
        except Exception as err:
            self.metrics.store_errors.inc()
            logger.error(
                "Read %s from camera '%s' could not be stored: %s", read.id, read.camera, err
            )
            return
        self.metrics.reads.labels(read.camera).inc()
        # The plate text stays out of the log at every level: logs reach the disk in clear.
        logger.debug("Read %s on '%s' stored (confidence %.2f)", read.id, read.camera,
                     read.confidence)
        self.bus.publish(read)
        await self._check_hotlists(read)
        try:
            self.plugins.manager.hook.appliance_plate_read(read=read)
        except Exception:
            logger.exception("A plugin's appliance_plate_read hook raised; ignored")

    async def _check_hotlists(self, read: PlateRead) -> None:
        """Match a stored read once against every list; each hit becomes an alert."""
        if self.hotlists is None or self.store is None:
            return
        for matched in self.hotlists.match(read.text, read.state):
            listed = matched.hit.listed
            try:
                alert_id = await self.store.alerts.add(
                    read.id,
                    read.first_seen,
                    listed.list_name,
                    listed.entry.covert,
                    matched.payload(),
                )
            except Exception as err:
                self.metrics.store_errors.inc()
                logger.error(
                    "Alert for read %s on list '%s' could not be stored: %s",
                    read.id,
                    listed.list_name,
                    err,
                )
                continue
            self.metrics.alerts.labels(listed.list_name).inc()
            await self._keep_as_hit(read)
            logger.info(
                "Alert %s: camera '%s' read matched list '%s' (%s)",
                alert_id,
                read.camera,
                listed.list_name,
                matched.hit.kind,
            )
            alert = await self.store.alerts.get(alert_id, include_covert=True)
            if alert is not None:
                self.alert_bus.publish(alert)

    async def _keep_as_hit(self, read: PlateRead) -> None:
        """A hit is kept under its day's hit key, so purging non-hits never takes it."""
        assert self.store is not None
        try:
            await self.store.promote_to_hit(read.id)
        except Exception as err:
            # The purge promotes any read with an alert before destroying a day: not lost.
            self.metrics.store_errors.inc()
            logger.error("Read %s could not be kept as a hit: %s", read.id, err)

    async def stop(self) -> None:
        """Stop cameras, drain and flush every worker into the store, then close the store."""
        await self._stop_cameras()
        # Workers end on their own once their (now closed) queues are drained.
        await asyncio.gather(*self._worker_tasks, return_exceptions=True)
        if self.hotlists is not None:
            await self.hotlists.stop()
        if self.lifecycle is not None:
            await self.lifecycle.stop()
        if self.sharing is not None:
            await self.sharing.stop()  # before the store closes: attempts in flight finish
        if self.hardware is not None:
            await self.hardware.stop()  # after the cameras: a pending tamper event is recorded
        if self._signal_task is not None and self.alert_signal is not None:
            self._signal_task.cancel()
            await asyncio.gather(self._signal_task, return_exceptions=True)
            self.alert_signal.close()
        if self.replication is not None:
            await self.replication.stop_shipping()  # while the store is open: last segments
        if self.store is not None:
            await self.store.close()
        if self.replication is not None:
            await self.replication.stop()  # after the store: litestream pushes the last commits
        if self._inference is not None:
            self._inference.shutdown(wait=True)
        self.started = False
        logger.info("Appliance stopped; every accepted read is stored")

    async def _stop_cameras(self) -> None:
        for task in self._camera_tasks:
            task.cancel()
        if not self._camera_tasks:
            return
        _, stuck = await asyncio.wait(self._camera_tasks, timeout=CAMERA_STOP_TIMEOUT_S)
        for task in stuck:
            name = task.get_name().removeprefix("camera-")
            logger.error(
                "Camera '%s' did not stop within %g s of being asked (its plugin ignores "
                "cancellation); leaving it behind so the box can stop",
                name,
                CAMERA_STOP_TIMEOUT_S,
            )
            if name in self._camera_queues:
                self._camera_queues[name].close()  # its worker drains what arrived, then ends

    async def wait_cameras_done(self) -> None:
        """Wait until every camera has ended (replay cameras with loop: false) and is drained."""
        await asyncio.gather(*self._camera_tasks, return_exceptions=True)
        await asyncio.gather(*self._worker_tasks, return_exceptions=True)

    def camera(self, name: str) -> Camera | None:
        return self._camera_objects.get(name)
