"""Host-owned base classes that plugins subclass.

Hooks register these classes; the classes behave. The host creates one instance per configured
camera, list or destination, passing its validated settings and a :class:`PluginContext`, and
drives the async methods itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .models import Frame, Image, PlateDetection
from .settings import CameraSettings, ExporterSettings, HotlistSourceSettings, RecognizerSettings

if TYPE_CHECKING:
    from .hardware.box import BoxHardware


class Clock(Protocol):
    """Where plugins get the time; tests swap in :class:`appliance.testing.FakeClock`."""

    def now(self) -> datetime:
        """Timezone-aware UTC wall-clock time."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class PluginContext:
    """What the host hands a plugin instance, and nothing more.

    ``data_dir`` is private to this instance; anything written there that is sensitive must be
    encrypted by the host's storage, not by the plugin.
    """

    logger: logging.Logger
    data_dir: Path
    clock: Clock
    #: the box's own devices named by its hardware profile (:class:`appliance.hardware.BoxHardware`:
    #: ``gps.current()``, ``illuminator``, ``relay``), or None on a box without any (issue 8)
    hardware: BoxHardware | None = None


class Camera:
    """A source of frames.

    Subclasses set ``settings_model`` (a :class:`CameraSettings` with a ``type`` literal) and
    implement :meth:`frames`. Raise :class:`appliance.errors.DeviceUnavailable` when the device
    cannot be reached (the host reconnects with backoff), :class:`~appliance.errors.AuthFailed`
    when it refuses credentials, :class:`~appliance.errors.PluginConfigError` when the settings
    cannot work.
    """

    settings_model: ClassVar[type[CameraSettings]]
    #: capability flags; the conformance suite tests only what a camera claims
    supports_snapshot: ClassVar[bool] = False
    #: a live camera cannot be rewound; a replay camera can end (loop: false)
    may_end: ClassVar[bool] = False

    def __init__(self, settings: CameraSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context = context

    @property
    def name(self) -> str:
        return self.settings.name

    async def open(self) -> None:
        """Connect to the device. Called before :meth:`frames` and after every reconnect."""

    async def probe(self) -> dict[str, str]:
        """Check the device answers and return what it says about itself.

        Called by the console's "Test connection" button before settings are saved. Raise an
        :mod:`appliance.errors` exception that says exactly what failed.
        """
        return {}

    def frames(self) -> AsyncIterator[Frame]:
        """Yield frames as they arrive, forever for a live camera."""
        raise NotImplementedError

    async def snapshot(self) -> Frame:
        """Return one current frame (only if ``supports_snapshot``)."""
        raise NotImplementedError

    def motion_hint(self) -> bool | None:
        """Whether the camera itself says something moves in view right now (issue 8).

        A camera with its own analytics (ONVIF motion or vehicle events, a trip wire, a radar)
        lets the host skip the plate detector while nothing moves: ``False`` means "nothing
        moves", ``True`` "something moves, look". ``None`` (the default) means the camera has
        no such events or has not said yet, and the host gates on pixel change instead. Called
        on the event loop for every frame: return a remembered state, never do I/O here. While
        a vehicle is being tracked the host keeps looking whatever this says.
        """
        return None

    async def close(self) -> None:
        """Release the device. Called once, also after a failure."""


@dataclass(frozen=True, slots=True)  # slots: a million entries must fit a small box's memory
class HotlistEntry:
    """One plate on a hot list, with what an officer needs to verify a hit against it.

    ``plate`` is as listed (the host normalizes it for matching); in locally entered lists it may
    hold ``*`` for one unknown character. ``category`` is the list's own classification (the NCIC
    file, a DMV status, a BOLO category); ``reference`` its record number (NCIC number, case
    number); ``agency`` the entering agency's ORI. Hot-list data is sensitive: the host stores it
    encrypted and never logs it above debug level.
    """

    plate: str
    state: str | None = None
    plate_type: str | None = None
    category: str = ""
    reason: str = ""
    reference: str = ""
    agency: str = ""
    entered: date | None = None
    expires: date | None = None
    vehicle_year: int | None = None
    vehicle_make: str | None = None
    vehicle_model: str | None = None
    vehicle_colour: str | None = None
    #: hits on covert entries are recorded but shown only to privileged roles
    covert: bool = False


@dataclass(frozen=True)
class HotlistBatch:
    """A whole list as fetched or imported, and what was left out of it and why.

    ``dropped`` counts records excluded by law or policy, by reason (for example Immigration
    Violator records, Gov. Code 7284.6); the host records the counts in the audit trail and the
    transparency figures. ``skipped`` holds messages about records that could not be used (a
    duplicate, a malformed plate), each naming its line; the rest of the list is still good.
    """

    entries: tuple[HotlistEntry, ...]
    dropped: Mapping[str, int] = field(default_factory=dict)
    skipped: tuple[str, ...] = ()


class HotlistSource:
    """A hot list the host refreshes on schedule.

    :meth:`fetch` downloads and returns the whole list; :meth:`parse` turns a file of the list's
    format into a batch (``alprbox hotlist import`` uses it). Raise
    :class:`~appliance.errors.HotlistFormatError` (naming the line) for a file that cannot be
    trusted as a whole, :class:`~appliance.errors.DeviceUnavailable` when the feed cannot be
    reached: the host then keeps the previous list and says why. Plugins contain no sleep loops;
    the host schedules refreshes every ``refresh_every``.
    """

    settings_model: ClassVar[type[HotlistSourceSettings]]
    refresh_every: ClassVar[timedelta] = timedelta(hours=12)

    def __init__(self, settings: HotlistSourceSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context = context

    async def fetch(self) -> HotlistBatch:
        """Return the whole current list. Raise rather than return a partial list."""
        raise NotImplementedError

    def parse(self, data: bytes) -> HotlistBatch:
        """Parse a file in this list's format (for imports and for :meth:`fetch`)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a delivery goes to, as the approved sharing request names them (1798.90.52(a)(3))."""

    agency: str
    ori: str = ""
    organization: str = ""
    person: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One hand-over from the host's outbox to an exporter: data the policy gate let out.

    ``payload`` was built by the host from what ``approval_id``'s scope allows (fields, reads,
    images), is deeply immutable (mappings are read-only, lists are tuples, images are bytes) and
    is all the exporter gets: it never sees the store. ``id`` is stable across retries: use it as
    the idempotency key at the destination. ``channel`` is the kind of way out the approval
    covers (``export``, ``webhook``, ``evidence``, ``partner_query``). ``files`` maps a relative
    path to its bytes for exporters that write packages (the evidence package, already signed
    by the host). Treat all of it as sensitive: never log it above debug level.
    """

    id: str
    exporter: str
    approval_id: str
    channel: str
    recipient: Recipient
    purpose: str
    case_number: str
    created_at: datetime
    payload: Mapping[str, Any]
    files: Mapping[str, bytes] = field(default_factory=dict)
    attempt: int = 1

    def payload_dict(self) -> dict[str, Any]:
        """A plain, mutable deep copy of ``payload`` (dicts and lists), e.g. for ``json.dumps``."""
        return _plain(self.payload)  # type: ignore[no-any-return]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class PartnerQuery:
    """A partner agency's own list of plates, to be answered hit or no-hit (regional sharing).

    ``id`` is the partner's name for this list version (echoed in the answer); ``plates`` are as
    the partner lists them. The host answers only for these plates and never sends a read that
    is not a hit on them.
    """

    id: str
    plates: tuple[str, ...]


class Exporter:
    """A destination for data that passed the policy gate.

    The host owns the outbox: it queues a :class:`Delivery` only after the gate approved it,
    calls :meth:`deliver` from one worker per exporter, retries failures with exponential backoff
    and jitter, and dead-letters a delivery after ``max_attempts``. A failing destination never
    blocks reading plates. The instance receives its settings and a :class:`PluginContext`, and
    nothing else: no store, no keys, no host.
    """

    settings_model: ClassVar[type[ExporterSettings]]
    #: the way out this exporter is, which the approval it rides on must cover: ``export``
    #: (files), ``webhook``, ``evidence`` or ``partner_query``
    channel: ClassVar[str] = "export"

    def __init__(self, settings: ExporterSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context = context

    async def deliver(self, delivery: Delivery) -> None:
        """Deliver one delivery. Must be idempotent on ``delivery.id`` (a retry after a lost
        answer sends the same id again); raise to have the host retry later
        (:class:`~appliance.errors.DeviceUnavailable` for an unreachable destination)."""
        raise NotImplementedError

    async def fetch_query(self) -> PartnerQuery | None:
        """For ``partner_query`` exporters: fetch the partner's current list of plates (or
        None when it has none). The host matches it, asks the gate and queues the hit/no-hit
        answer as a delivery. Other exporters leave this alone."""
        return None

    async def close(self) -> None:
        """Release connections."""


class Recognizer:
    """Finds and reads plates in one frame.

    :meth:`load` and :meth:`recognize` are synchronous and CPU-bound: the host calls them in a
    worker thread, never on the event loop.
    """

    settings_model: ClassVar[type[RecognizerSettings]]

    def __init__(self, settings: RecognizerSettings, context: PluginContext) -> None:
        self.settings = settings
        self.context = context

    def load(self) -> None:
        """Load models. Raise :class:`~appliance.errors.PluginConfigError` if they are missing."""

    def recognize(self, image: Image) -> list[PlateDetection]:
        """Return the plates in a BGR image, boxes in its own pixel coordinates."""
        raise NotImplementedError

    def recognize_still(self, image: Image) -> list[PlateDetection]:
        """The plates in a single photo (``alprbox recognize``), which has no next frame: a
        recognizer may look harder here than in a camera stream, where a plate missed in one
        frame is usually read a few frames later, closer. The default is :meth:`recognize`."""
        return self.recognize(image)

    def stage_seconds(self) -> dict[str, float]:
        """CPU seconds spent per stage so far (e.g. ``{"detect": .., "ocr": ..}``), for metrics."""
        return {}


def plugin_type_name(cls: type[Any]) -> str:
    """The ``type`` literal of a plugin class's settings model."""
    field = cls.settings_model.model_fields["type"]
    annotation = field.annotation
    args = getattr(annotation, "__args__", ())
    if args and isinstance(args[0], str):
        return str(args[0])
    if isinstance(field.default, str):
        return field.default
    raise TypeError(f"{cls.__qualname__}.settings_model must declare type: Literal['name']")
