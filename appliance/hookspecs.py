"""Every hook the appliance calls, fully documented.

Hooks are small and synchronous. The ``*_types`` hooks return plugin *classes*; the host creates
instances from validated settings and drives their async methods itself. Past-tense hooks are
notifications: they must return quickly, must not block and must not raise.

A plugin package registers one module under the ``appliance.plugins`` entry-point group::

    [project.entry-points."appliance.plugins"]
    gatecam = "gatecam_alprbox.plugin"

and that module defines functions decorated with :data:`appliance.hookimpl`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .base import Camera, Exporter, HotlistSource, Recognizer
    from .models import PlateRead

PROJECT_NAME = "appliance"
ENTRY_POINT_GROUP = "appliance.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def appliance_camera_types() -> list[type[Camera]]:
    """Return the camera classes this plugin provides.

    Each class subclasses :class:`appliance.Camera` and names its ``settings_model``, whose
    ``type`` literal is the value a site config uses (``type: replay``).

    :return: a list of camera classes (may be empty).

    Called once while the host loads plugins, before the configuration is validated.

    Added in 0.1.
    """


@hookspec
def appliance_hotlist_source_types() -> list[type[HotlistSource]]:
    """Return the hot-list source classes this plugin provides.

    Each class subclasses :class:`appliance.HotlistSource`. The host schedules ``fetch()`` every
    ``refresh_every``, validates, diffs and swaps the list in; plugins contain no sleep loops.

    :return: a list of hot-list source classes (may be empty).

    Called once while the host loads plugins, before the configuration is validated.

    Added in 0.1.
    """


@hookspec
def appliance_exporter_types() -> list[type[Exporter]]:
    """Return the exporter classes this plugin provides.

    Each class subclasses :class:`appliance.Exporter`. Exporters receive data only from the
    host's outbox, after the policy gate approved it: ``deliver(delivery)`` gets an
    :class:`appliance.Delivery` whose payload the host already filtered to what the approval's
    scope allows, and must be idempotent on ``delivery.id``. Exporters never receive the store,
    its keys or the host object.

    :return: a list of exporter classes (may be empty).

    Called once while the host loads plugins, before the configuration is validated.

    Added in 0.1. Changed in 0.2: ``send(read)`` became ``deliver(delivery)`` (one outbox for every
    way out, each delivery riding on an approved sharing request or standing approval).
    """


@hookspec
def appliance_recognizer_types() -> list[type[Recognizer]]:
    """Return the plate recognizer classes this plugin provides.

    A recognizer turns one frame into plate detections (box, text, candidates). The site config
    chooses one with ``recognition: {type: ...}``; an accelerator vendor ships its own here.

    :return: a list of recognizer classes (may be empty).

    Called once while the host loads plugins, before the configuration is validated.

    Added in 0.1.
    """


@hookspec
def appliance_plate_read(read: PlateRead) -> None:
    """Notify that a plate read was stored.

    :param read: the stored read, voted across its frames. Treat it as sensitive: never log its
        text above debug level, never write it to disk.

    Called on the event loop after the read is committed to the store, once per read. Must
    return quickly, must not block and must not raise (an exception is logged and ignored).
    Exporters do not use this hook: they receive reads through the outbox and policy gate.

    Added in 0.1.
    """
