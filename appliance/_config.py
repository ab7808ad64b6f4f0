"""Site configuration: YAML file -> validated models, with errors that name file, line and field.

The root model is fixed; the ``cameras``, ``hotlists``, ``exporters`` and ``recognition``
sections are validated against the settings model of the plugin class their ``type`` names, so
an error names the right fields of the right plugin. A hardware profile from
``firmware_configs/<model>/profile.yaml`` supplies defaults (inference provider and threads,
camera defaults, GPIO pins) that the site file may override.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .settings import CameraSettings, ExporterSettings, HotlistSourceSettings, RecognizerSettings

CONFIG_VERSION = 1
_PLUGIN_SECTIONS = ("recognition", "cameras", "hotlists", "exporters")
DEMO_CONFIG = "demo.yaml"
REPO_ROOT = Path(__file__).resolve().parent.parent

Loc = tuple[str | int, ...]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteInfo(_Strict):
    name: str = Field(default="alprbox", title="Site name", description="Shown in the console.")
    timezone: str = Field(default="UTC", title="Time zone", description="IANA name for display.")


class ConsoleSettings(_Strict):
    host: str = Field(default="127.0.0.1", description="Address the web console listens on.")
    port: int = Field(default=8080, ge=0, le=65535, description="Port of the web console.")
    banner: str = Field(
        default=(
            "This system is for authorized law enforcement use only. Use is logged and audited; "
            "unauthorized access or use for immigration enforcement is prohibited by law."
        ),
        description="Text shown on the login page (CJIS login banner).",
    )


class PipelineSettings(_Strict):
    gate_threshold: float = Field(
        default=0.004,
        ge=0,
        le=1,
        description="Fraction of a downscaled frame that must change to run the detector.",
    )
    max_detect_fps: float = Field(
        default=4.0, gt=0, le=60, description="Most detector runs per second per camera."
    )
    recheck_seconds: float = Field(
        default=0.5,
        ge=0,
        description="While a plate is being tracked, run the detector at least this often.",
    )
    track_timeout_seconds: float = Field(
        default=1.5, gt=0, description="A track closes when its plate is unseen this long."
    )
    min_read_confidence: float = Field(
        default=0.3, ge=0, le=1, description="Voted reads below this confidence are discarded."
    )


class HardwareProfile(_Strict):
    """One file per hardware model in ``firmware_configs/<model>/profile.yaml``."""

    model: str
    description: str
    inference: dict[str, Any] = Field(default_factory=dict)
    camera_defaults: dict[str, Any] = Field(default_factory=dict)
    gpio: dict[str, Any] = Field(default_factory=dict)


class RootConfig(_Strict):
    version: int = Field(default=CONFIG_VERSION, description="Config format version.")
    site: SiteInfo = SiteInfo()
    hardware: str = Field(default="x86-generic", description="A firmware_configs/ model name.")
    data_dir: Path | None = Field(default=None, description="Where the store lives.")
    console: ConsoleSettings = ConsoleSettings()
    pipeline: PipelineSettings = PipelineSettings()
    recognition: dict[str, Any] = Field(default_factory=lambda: {"type": "platedet"})
    cameras: list[dict[str, Any]] = Field(default_factory=list)
    hotlists: list[dict[str, Any]] = Field(default_factory=list)
    exporters: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class SiteConfig:
    """A validated configuration, ready for the host."""

    source: str
    root: RootConfig
    hardware: HardwareProfile
    recognition: RecognizerSettings
    cameras: tuple[CameraSettings, ...]
    hotlists: tuple[HotlistSourceSettings, ...]
    exporters: tuple[ExporterSettings, ...]


def firmware_dir() -> Path:
    """Where hardware profiles live: ``$ALPRBOX_FIRMWARE_DIR`` or the repository's folder."""
    return Path(os.environ.get("ALPRBOX_FIRMWARE_DIR", REPO_ROOT / "firmware_configs"))


def load_hardware_profile(model: str) -> HardwareProfile:
    path = firmware_dir() / model / "profile.yaml"
    if not path.is_file():
        known = sorted(p.parent.name for p in firmware_dir().glob("*/profile.yaml"))
        raise ConfigError(str(path), [f"unknown hardware '{model}'; known: {', '.join(known)}"])
    text = path.read_text()
    profile: HardwareProfile = _validate(
        HardwareProfile, yaml.safe_load(text), str(path), _line_map(text)
    )
    return profile


def demo_config_text() -> str:
    return resources.files("appliance").joinpath("defaults", DEMO_CONFIG).read_text()


def load_config_file(path: Path, host: Any) -> SiteConfig:
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(str(path), [f"cannot read: {err.strerror}"]) from err
    return parse_config(text, str(path), host)


def parse_config(text: str, source: str, host: Any) -> SiteConfig:
    """Validate a config's text against the plugin types ``host`` (a PluginHost) knows."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "?"
        raise ConfigError(source, [f"{source}:{where}: not valid YAML: {err}"]) from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [f"{source}:1: the top level must be a mapping of sections"])
    lines = _line_map(text)
    problems: list[str] = []
    # Report the root's errors and every plugin section's errors in one go: an installer fixing
    # a file wants the whole list, not one error per run.
    try:
        root = _validate(RootConfig, data, source, lines)
    except ConfigError as err:
        problems.extend(err.problems)
        root = RootConfig.model_validate(
            {k: v for k, v in data.items() if k in _PLUGIN_SECTIONS and isinstance(v, list | dict)}
        )
    if root.version != CONFIG_VERSION:
        problems.append(
            f"{source}:{lines.get(('version',), 1)}: version: config version "
            f"{root.version} is not supported (want {CONFIG_VERSION})"
        )
    try:
        hardware = load_hardware_profile(root.hardware)
    except ConfigError as err:
        line = lines.get(("hardware",), 1)
        raise ConfigError(
            source, [*problems, *(f"{source}:{line}: hardware: {p}" for p in err.problems)]
        ) from err

    recognition_data = {**hardware.inference, **root.recognition}
    recognition = _validate_plugin(
        "recognizer", recognition_data, ("recognition",), host, source, lines, problems
    )
    cameras = [
        _validate_plugin(
            "camera",
            _with_defaults(item, hardware.camera_defaults, host),
            ("cameras", i),
            host,
            source,
            lines,
            problems,
        )
        for i, item in enumerate(root.cameras)
    ]
    hotlists = [
        _validate_plugin("hotlist_source", item, ("hotlists", i), host, source, lines, problems)
        for i, item in enumerate(root.hotlists)
    ]
    exporters = [
        _validate_plugin("exporter", item, ("exporters", i), host, source, lines, problems)
        for i, item in enumerate(root.exporters)
    ]
    for section, items in (("cameras", cameras), ("hotlists", hotlists), ("exporters", exporters)):
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item is None:
                continue
            name = getattr(item, "name", "")
            if name in seen:
                line = lines.get((section, i, "name"), 0)
                problems.append(f"{source}:{line}: {section}[{i}].name: '{name}' is used twice")
            seen.add(name)
    if problems:
        raise ConfigError(source, problems)
    assert recognition is not None
    return SiteConfig(
        source=source,
        root=root,
        hardware=hardware,
        recognition=recognition,
        cameras=tuple(c for c in cameras if c is not None),
        hotlists=tuple(h for h in hotlists if h is not None),
        exporters=tuple(e for e in exporters if e is not None),
    )


def _with_defaults(item: dict[str, Any], defaults: dict[str, Any], host: Any) -> dict[str, Any]:
    """Fill camera defaults from the hardware profile for fields that camera type has."""
    cls = host.type_for("camera", item.get("type", "")) if isinstance(item, dict) else None
    if cls is None:
        return item
    fields = cls.settings_model.model_fields
    return {**{k: v for k, v in defaults.items() if k in fields}, **item}


def _validate_plugin(
    kind: str,
    item: Any,
    loc: Loc,
    host: Any,
    source: str,
    lines: dict[Loc, int],
    problems: list[str],
) -> Any:
    where = _fmt_loc(loc)
    line = lines.get(loc, 0)
    if not isinstance(item, dict):
        problems.append(f"{source}:{line}: {where}: must be a mapping with a 'type'")
        return None
    type_name = item.get("type")
    cls = host.type_for(kind, type_name) if isinstance(type_name, str) else None
    if cls is None:
        known = ", ".join(sorted(host.types[kind])) or "none installed"
        line = lines.get((*loc, "type"), line)
        problems.append(
            f"{source}:{line}: {where}.type: unknown {kind.replace('_', ' ')} type "
            f"{type_name!r} (known: {known})"
        )
        return None
    try:
        return cls.settings_model.model_validate(item)
    except ValidationError as err:
        problems.extend(_format_errors(err, source, lines, loc))
        return None


def _validate(model: type[Any], data: Any, source: str, lines: dict[Loc, int]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, _format_errors(err, source, lines, ())) from err


def _format_errors(
    err: ValidationError, source: str, lines: dict[Loc, int], prefix: Loc
) -> list[str]:
    out = []
    for e in err.errors():
        loc: Loc = (*prefix, *e["loc"])
        # The line of the deepest part of the path that exists in the file (a missing key
        # reports its parent's line).
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), 1)
        message = e["msg"]
        if e["type"] == "extra_forbidden":
            message = "unknown key (not a setting here; check the spelling)"
        out.append(f"{source}:{line}: {_fmt_loc(loc)}: {message}")
    return out


def _fmt_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _line_map(text: str) -> dict[Loc, int]:
    """Map each key path in a YAML document to its 1-based line number."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[Loc, int] = {}

    def walk(n: yaml.Node, loc: Loc) -> None:
        lines[loc] = n.start_mark.line + 1
        if isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                child = (*loc, key.value)
                walk(value, child)
                lines[child] = key.start_mark.line + 1
        elif isinstance(n, yaml.SequenceNode):
            for i, value in enumerate(n.value):
                walk(value, (*loc, i))

    if node is not None:
        walk(node, ())
    return lines
