"""Plugin manager factory, discovery, validation and per-plugin status.

Loading is per plugin: an import error, a misspelled hook or a hook that raises gives that plugin
a recorded ``failed`` status and a log line naming it; every other plugin still loads. The host's
own plugins come through the same entry-point group as a vendor's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Literal

import pluggy

from . import hookspecs
from .base import Camera, Exporter, HotlistSource, Recognizer, plugin_type_name

logger = logging.getLogger(__name__)

Kind = Literal["camera", "hotlist_source", "exporter", "recognizer"]

_TYPE_HOOKS: dict[Kind, tuple[str, type[Any]]] = {
    "camera": ("appliance_camera_types", Camera),
    "hotlist_source": ("appliance_hotlist_source_types", HotlistSource),
    "exporter": ("appliance_exporter_types", Exporter),
    "recognizer": ("appliance_recognizer_types", Recognizer),
}


@dataclass
class PluginStatus:
    """What the host knows about one plugin: where it came from and whether it works."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    entry_point: str | None = None
    status: Literal["ok", "failed", "blocked"] = "ok"
    error: str | None = None
    provides: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "entry_point": self.entry_point,
            "status": self.status,
            "error": self.error,
            "provides": list(self.provides),
        }


@dataclass
class PluginHost:
    """The loaded plugins and the classes they registered, by kind and ``type`` name."""

    manager: pluggy.PluginManager
    statuses: list[PluginStatus]
    types: dict[Kind, dict[str, type[Any]]]

    def type_for(self, kind: Kind, name: str) -> type[Any] | None:
        return self.types[kind].get(name)

    def status_of(self, plugin_name: str) -> PluginStatus | None:
        return next((s for s in self.statuses if s.name == plugin_name), None)


def create_plugin_host(
    *,
    discover: bool = True,
    plugins: Iterable[ModuleType | object] = (),
    blocklist: Iterable[str] = (),
) -> PluginHost:
    """Build a fresh plugin host.

    :param discover: load every plugin registered under the ``appliance.plugins`` entry-point
        group (the host's own and any vendor's installed in the environment).
    :param plugins: extra plugin objects (modules or instances) to register directly, as tests do.
    :param blocklist: ``distribution`` or ``distribution==version`` strings never to load.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("ALPRBOX_TRACE_HOOKS"):
        pm.trace.root.setwriter(logger.debug)
        pm.enable_tracing()
    blocked = set(blocklist)
    statuses: list[PluginStatus] = []

    if discover:
        for ep in sorted(
            metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP), key=lambda e: e.name
        ):
            statuses.append(_load_entry_point(pm, ep, blocked))
    for obj in plugins:
        module_name = getattr(obj, "__name__", type(obj).__qualname__)
        status = PluginStatus(name=module_name, module=module_name)
        _register(pm, obj, status)
        statuses.append(status)

    types: dict[Kind, dict[str, type[Any]]] = {kind: {} for kind in _TYPE_HOOKS}
    by_plugin = {id(pm.get_plugin(s.name)): s for s in statuses if s.status == "ok"}
    for kind, (hook_name, base) in _TYPE_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            owner = by_plugin.get(id(impl.plugin))
            if owner is None:  # pragma: no cover - registered outside this factory
                continue
            _collect_types(kind, hook_name, base, impl, owner, types[kind])
    return PluginHost(manager=pm, statuses=statuses, types=types)


def _load_entry_point(
    pm: pluggy.PluginManager, ep: metadata.EntryPoint, blocked: set[str]
) -> PluginStatus:
    dist = ep.dist
    status = PluginStatus(
        name=ep.name,
        module=ep.value,
        distribution=dist.metadata["Name"] if dist else None,
        version=dist.version if dist else None,
        entry_point=f"{ep.group}: {ep.name} = {ep.value}",
    )
    if status.distribution and (
        status.distribution in blocked or f"{status.distribution}=={status.version}" in blocked
    ):
        status.status = "blocked"
        status.error = "on the blocklist"
        logger.warning("Plugin '%s' (%s) not loaded: on the blocklist", ep.name, ep.value)
        return status
    try:
        obj = ep.load()
    except Exception as err:
        status.status = "failed"
        status.error = f"import failed: {type(err).__name__}: {err}"
        logger.error("Plugin '%s' (%s) failed to import", ep.name, ep.value, exc_info=True)
        return status
    _register(pm, obj, status)
    return status


def _register(pm: pluggy.PluginManager, obj: object, status: PluginStatus) -> None:
    try:
        pm.register(obj, name=status.name)
        # check_pending per plugin, so a misspelled hook names its own plugin and fails loudly.
        pm.check_pending()
    except Exception as err:
        if pm.is_registered(obj):
            pm.unregister(obj)
        status.status = "failed"
        status.error = f"{type(err).__name__}: {err}"
        logger.error("Plugin '%s' (%s) rejected: %s", status.name, status.module, err)


def _collect_types(
    kind: Kind,
    hook_name: str,
    base: type[Any],
    impl: pluggy.HookImpl,
    status: PluginStatus,
    registry: dict[str, type[Any]],
) -> None:
    try:
        classes = impl.function()
        if not isinstance(classes, list | tuple):
            raise TypeError(f"{hook_name}() must return a list of classes, got {classes!r}")
        for cls in classes:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"{hook_name}() returned {cls!r}, not a {base.__name__} subclass")
            type_name = plugin_type_name(cls)
            if type_name in registry:
                raise ValueError(
                    f"{kind} type '{type_name}' is already provided by {registry[type_name]!r}"
                )
            registry[type_name] = cls
            status.provides.append(f"{kind}:{type_name}")
    except Exception as err:
        status.status = "failed"
        status.error = f"{hook_name}: {type(err).__name__}: {err}"
        logger.error(
            "Plugin '%s' (%s) failed in %s", status.name, status.module, hook_name, exc_info=True
        )
