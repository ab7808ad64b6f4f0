"""ONVIF events through a pull-point subscription: motion and vehicle events as values.

The camera's own analytics (cell motion, vehicle or object detection) are cheaper and often
better than decoding every frame to look for change; these events let the pipeline skip the
plate detector while nothing moves. :class:`EventPuller` keeps a subscription alive, pulls in a
background task and hands :class:`CameraEvent` values to every listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .device import OnvifSession

logger = logging.getLogger(__name__)

PULLPOINT_NS = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"
#: how long the camera may hold a PullMessages call open waiting for an event
PULL_TIMEOUT = timedelta(seconds=5)
SUBSCRIPTION_TIME = timedelta(minutes=2)
#: first wait before subscribing again after losing the events, doubling up to the maximum
RESUBSCRIBE_INITIAL = timedelta(seconds=10)
RESUBSCRIBE_MAX = timedelta(minutes=5)
_BOOLEAN_ITEMS = ("IsMotion", "IsVehicle", "IsInside", "State", "Active", "Detected")
EventKind = Literal["motion", "vehicle", "other"]


@dataclass(frozen=True)
class CameraEvent:
    """One event from the camera: what (``kind``, ``topic``), on or off, and when (UTC)."""

    kind: EventKind
    topic: str
    active: bool
    time: datetime


def classify(topic: str) -> EventKind:
    lowered = topic.lower()
    if any(word in lowered for word in ("vehicle", "licenseplate", "lpr", "car")):
        return "vehicle"
    if "motion" in lowered:
        return "motion"
    return "other"


def parse_notification(message: Any) -> CameraEvent | None:
    """A CameraEvent from one zeep-parsed ``wsnt:NotificationMessage``, or None if it has no
    on/off state we understand."""
    topic = getattr(getattr(message, "Topic", None), "_value_1", None)
    body = getattr(getattr(message, "Message", None), "_value_1", None)
    if not isinstance(topic, str) or body is None:
        return None
    data = getattr(body, "Data", None)
    items = getattr(data, "SimpleItem", None) or []
    state: bool | None = None
    for item in items:
        if item.Name in _BOOLEAN_ITEMS and str(item.Value).lower() in ("true", "false", "1", "0"):
            state = str(item.Value).lower() in ("true", "1")
            break
    if state is None:
        return None
    when = getattr(body, "UtcTime", None)
    if not isinstance(when, datetime):
        when = datetime.now(UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return CameraEvent(classify(topic.strip()), topic.strip(), state, when.astimezone(UTC))


class EventPuller:
    """Pulls events from one camera until stopped. Failures stop the events, never the video."""

    def __init__(self, session: OnvifSession, label: str) -> None:
        self._session = session
        self._label = label
        self._listeners: list[asyncio.Queue[CameraEvent]] = []
        self._task: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self.active: dict[EventKind, bool] = {}
        self.received = 0
        self.error: str | None = None

    async def start(self) -> None:
        pullpoint = await self._subscribe()
        self._task = asyncio.create_task(self._run(pullpoint), name=f"{self._label} events")

    async def _subscribe(self) -> Any:
        """Create a pull-point subscription; returns the service to pull from."""
        client = self._session.client
        events = await self._session.call("events service", client.create_events_service())
        result = await self._session.call(
            "CreatePullPointSubscription",
            events.CreatePullPointSubscription(
                {"InitialTerminationTime": f"PT{int(SUBSCRIPTION_TIME.total_seconds())}S"}
            ),
        )
        client.xaddrs[PULLPOINT_NS] = str(result.SubscriptionReference.Address._value_1)
        self._subscription = await self._session.call(
            "subscription service", client.create_subscription_service("PullPointSubscription")
        )
        return await self._session.call("pull point", client.create_pullpoint_service())

    async def _run(self, pullpoint: Any) -> None:
        while True:
            try:
                await self._pull(pullpoint)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                # Events are an optimisation: without them the pipeline gates on pixels instead.
                self.error = str(err)
                self.active.clear()
                logger.warning("%s: events stopped: %s", self._label, err)
            pullpoint = await self._resubscribe()
            self.error = None
            logger.info("%s: events are back", self._label)

    async def _resubscribe(self) -> Any:
        """Subscribe again with backoff and jitter (a camera whose event service restarted, a
        subscription that lapsed during a network blip), without a log line per attempt."""
        delay = RESUBSCRIBE_INITIAL.total_seconds()
        while True:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            try:
                return await self._subscribe()
            except asyncio.CancelledError:
                raise
            except Exception as err:
                logger.debug("%s: resubscribing failed: %s", self._label, err)
                delay = min(delay * 2, RESUBSCRIBE_MAX.total_seconds())

    async def _pull(self, pullpoint: Any) -> None:
        """Pull until the subscription fails (it raises; it never returns)."""
        renew_at = asyncio.get_running_loop().time() + SUBSCRIPTION_TIME.total_seconds() / 2
        while True:
            # The call itself waits up to PULL_TIMEOUT for news; the session's own timeout
            # covers a camera that never answers.
            result = await self._session.call(
                "PullMessages",
                pullpoint.PullMessages({"Timeout": PULL_TIMEOUT, "MessageLimit": 20}),
            )
            for message in getattr(result, "NotificationMessage", None) or []:
                event = parse_notification(message)
                if event is not None:
                    self._publish(event)
            if asyncio.get_running_loop().time() >= renew_at:
                await self._session.call(
                    "Renew",
                    self._subscription.Renew(
                        {"TerminationTime": f"PT{int(SUBSCRIPTION_TIME.total_seconds())}S"}
                    ),
                )
                renew_at += SUBSCRIPTION_TIME.total_seconds() / 2

    def _publish(self, event: CameraEvent) -> None:
        self.received += 1
        self.active[event.kind] = event.active
        for queue in self._listeners:
            if queue.full():
                queue.get_nowait()  # a slow listener loses the oldest, not the newest
            queue.put_nowait(event)

    async def listen(self) -> AsyncIterator[CameraEvent]:
        queue: asyncio.Queue[CameraEvent] = asyncio.Queue(maxsize=100)
        self._listeners.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.remove(queue)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        subscription, self._subscription = self._subscription, None
        if subscription is not None and self._session.client is not None:
            with contextlib.suppress(Exception):  # the camera forgets it at termination anyway
                await self._session.call("Unsubscribe", subscription.Unsubscribe())
