"""Site configuration: YAML file -> validated models, with errors that name file, line and field.

The root model is fixed; the ``cameras``, ``hotlists``, ``exporters`` and ``recognition``
sections are validated against the settings model of the plugin class their ``type`` names, so
an error names the right fields of the right plugin. A hardware profile from
``firmware_configs/<model>/profile.yaml`` supplies defaults (inference provider and threads,
camera defaults, GPIO pins) that the site file may override.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._hotlist.bolo import DEFAULT_CASE_NUMBER
from ._lifecycle.settings import KeySettings, RetentionSettings
from ._replication.settings import ReplicationSettings
from ._sharing.settings import TransparencySettings
from .errors import ConfigError
from .hardware.box import DeviceSettings
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
        pattern=r"\S",  # never blank: sign-in needs it acknowledged (CJIS 5.5.4)
        description="Text shown on the login page (CJIS login banner); acknowledged at sign-in.",
    )
    training_max_days: int = Field(
        default=365,
        ge=1,
        le=3660,
        description=(
            "Days a user's ALPR training stays valid; after that the console refuses data pages "
            "until an administrator records a refresher (Piedmont 438.7, Oakland 430.9)."
        ),
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
    camera_events: bool = Field(
        default=True,
        description="Skip the detector while a camera's own motion/vehicle events say nothing "
        "moves (cameras without events are gated on pixel change).",
    )


class HardwareProfile(_Strict):
    """One file per hardware model in ``firmware_configs/<model>/profile.yaml``."""

    model: str
    description: str
    inference: dict[str, Any] = Field(default_factory=dict)
    camera_defaults: dict[str, Any] = Field(default_factory=dict)
    gpio: dict[str, Any] = Field(default_factory=dict)
    sensors: dict[str, Any] = Field(default_factory=dict)  # battery/solar files (hardware/)


#: Every purpose a site may allow for searching or viewing ALPR data (Civil Code 1798.90.51(a),
#: 1798.90.52(b); Alameda 462.3(b)(2), Vallejo 426.4(c)). A site's ``policy.purposes`` is chosen
#: from these; there is deliberately no immigration category (Gov. Code 7284.6(a)(1)(D)).
PURPOSE_CATALOGUE: dict[str, str] = {
    "stolen vehicle": "Locate a vehicle reported stolen",
    "stolen plate": "Locate a license plate reported stolen",
    "wanted person": "Locate a person subject to an arrest warrant or otherwise lawfully sought",
    "missing person": "Locate a missing person (child, elder, at-risk adult)",
    "AMBER alert": "Respond to an AMBER alert (abducted child)",
    "Silver alert": "Respond to a Silver alert (missing elder or dependent adult)",
    "major crime canvass": "Canvass plates around a major crime scene for suspect vehicles",
    "homicide": "Investigate a homicide",
    "shooting": "Investigate a shooting or other assault with a deadly weapon",
    "robbery": "Investigate a robbery or carjacking",
    "kidnapping": "Investigate a kidnapping or abduction",
    "sexual assault": "Investigate a sexual assault",
    "witness or victim": "Locate a witness to or victim of a violent crime",
    "officer safety": "Officer safety information about a specific vehicle",
}

#: Words that make a purpose, reason or requesting agency an immigration one. Any of them in a
#: configured purpose is a config error; in a search request, a refusal (Gov. Code 7284.6).
IMMIGRATION_TERMS: tuple[str, ...] = (
    "immigration", "immigrant", "immigrants", "ice", "cbp", "hsi", "ero", "usbp", "uscis",
    "deportation", "deport", "deportable", "deportee", "removal", "removable", "border",
    "border patrol", "customs and border", "homeland security", "dhs", "alien", "aliens",
    "undocumented", "illegal", "visa", "overstay", "287(g)", "detainer", "civil immigration",
    "sanctuary", "enforcement and removal",
)  # fmt: skip
#: The subset that refuses free text (reasons, agency names): words like "border" or "removal"
#: have ordinary meanings in a crime narrative, these do not.
IMMIGRATION_TEXT_TERMS: tuple[str, ...] = (
    "immigration", "immigrant", "immigrants", "ice", "cbp", "hsi", "ero", "usbp", "uscis",
    "deportation", "deport", "deportable", "border patrol", "customs and border",
    "homeland security investigations", "illegal alien", "undocumented", "287(g)",
    "enforcement and removal", "civil immigration",
)  # fmt: skip
IMMIGRATION_STATUTE = "Gov. Code 7284.6"

DEFAULT_VAGUE_REASONS: tuple[str, ...] = (
    "investigation", "investigations", "inv", "invest", "n/a", "na", "none", "test", "testing",
    "other", "general", "misc", "miscellaneous", "follow up", "follow-up", "followup", "f/u",
    "info", "information", "intel", "check", "plate check", "routine", "patrol", "see report",
    "see case", "per sgt", "as directed", "training", "curious", "suspicious", "lookup",
)  # fmt: skip


def immigration_term(text: str, terms: tuple[str, ...] = IMMIGRATION_TERMS) -> str | None:
    """The first immigration word in ``text`` (whole words, any case), or None.

    The text is folded first like the sharing denylist folds it (fullwidth letters, Cyrillic or
    Greek look-alikes, zero-width characters and accents do not hide a word).
    """
    from ._policy.normalize import fold

    lowered = " ".join(re.split(r"[\s_/,;:.-]+", fold(text)))
    for term in terms:
        if re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", lowered):
            return term
    return None


class PolicySettings(_Strict):
    """The site's ALPR use policy as the software enforces it on every search and record view."""

    purposes: tuple[str, ...] = Field(
        default=tuple(PURPOSE_CATALOGUE),
        min_length=1,
        description="Authorized purposes, chosen from the built-in catalogue.",
    )
    case_number_pattern: str = Field(
        default=DEFAULT_CASE_NUMBER,
        description="Regular expression a case or incident number must match (upper-cased).",
    )
    vague_reasons: tuple[str, ...] = Field(
        default=DEFAULT_VAGUE_REASONS,
        description="Reasons refused as too vague to document an inquiry (any case).",
    )
    min_reason_length: int = Field(
        default=15, ge=1, le=200, description="Shorter reasons are refused as too vague."
    )
    search_max_days: int = Field(
        default=30, ge=1, le=3650, description="How far back a search may reach, in days."
    )

    @field_validator("purposes", mode="before")
    @classmethod
    def _purposes(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            return value
        by_lower = {name.lower(): name for name in PURPOSE_CATALOGUE}
        chosen: list[str] = []
        for item in value:
            text = str(item).strip()
            term = immigration_term(text)
            if term is not None:
                raise ValueError(
                    f"{text!r} is immigration enforcement ({term!r}), which California law "
                    f"forbids using ALPR data or staff for ({IMMIGRATION_STATUTE}); "
                    "it cannot be an authorized purpose"
                )
            name = by_lower.get(" ".join(text.lower().split()))
            if name is None:
                raise ValueError(
                    f"unknown purpose {text!r}; choose from: {', '.join(PURPOSE_CATALOGUE)}"
                )
            if name not in chosen:
                chosen.append(name)
        return tuple(chosen)

    @field_validator("case_number_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as err:
            raise ValueError(f"not a valid regular expression: {err}") from err
        return value

    @field_validator("vague_reasons", mode="before")
    @classmethod
    def _vague(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(" ".join(str(v).lower().split()) for v in value)
        return value

    def version(self) -> str:
        """A short hash of this policy, recorded with every search it allowed or refused."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]


class ApprovedAgency(_Strict):
    """One California public agency the city approved for sharing (issue 7; Civil Code
    1798.90.55). Refused at load time when it is not a California public agency or hits the
    built-in ICE/CBP denylist, which no entry here can weaken (Gov. Code 7284.6)."""

    name: str = Field(min_length=3, max_length=200, description="The agency's name.")
    ori: str = Field(description="Its NCIC ORI: CA followed by 7 letters or digits (CA0010000).")
    kind: str = Field(description="What kind of California public agency it is.")
    primary_purpose: str | None = Field(
        default=None,
        validate_default=True,
        description=(
            "For a task force: its primary purpose, from the purpose catalogue; it receives data "
            "only for that purpose (Gov. Code 7284.6(b)(3): never immigration enforcement)."
        ),
    )
    aliases: tuple[str, ...] = Field(default=(), description="Other names it signs with.")
    email_domains: tuple[str, ...] = Field(
        default=(), description="E-mail domains its staff write from (e.g. oaklandca.gov)."
    )
    network_domains: tuple[str, ...] = Field(
        default=(), description="Hosts or domains its systems receive data on."
    )
    approved_by: str = Field(min_length=2, description="Who approved it (name and title).")
    approved_on: date = Field(description="When the approval was given.")
    expires: date = Field(description="Last day the approval counts; renew it after.")

    @field_validator("name", "aliases")
    @classmethod
    def _name(cls, value: Any) -> Any:
        from ._policy.agencies import name_problems

        for name in (value,) if isinstance(value, str) else value:
            if problems := name_problems(name):
                raise ValueError("; ".join(problems))
        return value

    @field_validator("ori")
    @classmethod
    def _ori(cls, value: str) -> str:
        from ._policy.agencies import ori_problems
        from ._policy.denylist import normalize_ori

        if problems := ori_problems(value):
            raise ValueError("; ".join(problems))
        return normalize_ori(value)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        from ._policy.agencies import AGENCY_KINDS

        kind = " ".join(value.lower().split())
        if kind not in AGENCY_KINDS:
            raise ValueError(
                f"{value!r} is not a kind of California public agency; choose from: "
                + ", ".join(AGENCY_KINDS)
            )
        return kind

    @field_validator("primary_purpose")
    @classmethod
    def _primary_purpose(cls, value: str | None, info: Any) -> str | None:
        from ._policy.agencies import TASK_FORCE

        is_task_force = info.data.get("kind") == TASK_FORCE
        if value is None:
            if is_task_force:
                raise ValueError(
                    "a task force needs its primary purpose (Gov. Code 7284.6(b)(3)); choose "
                    "from: " + ", ".join(PURPOSE_CATALOGUE)
                )
            return None
        if not is_task_force:
            raise ValueError("only a task force has a primary purpose here")
        term = immigration_term(value)
        if term is not None:
            raise ValueError(
                f"{value!r} is immigration enforcement ({term!r}); a task force whose primary "
                "purpose is immigration enforcement cannot receive ALPR data "
                f"({IMMIGRATION_STATUTE})"
            )
        by_lower = {name.lower(): name for name in PURPOSE_CATALOGUE}
        name = by_lower.get(" ".join(value.lower().split()))
        if name is None:
            raise ValueError(
                f"unknown purpose {value!r}; choose from: {', '.join(PURPOSE_CATALOGUE)}"
            )
        return name

    @field_validator("email_domains", "network_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from ._policy.agencies import domain_problems

        for domain in value:
            if problems := domain_problems(domain):
                raise ValueError("; ".join(problems))
        return tuple(d.strip().lower().strip(".") for d in value)

    @field_validator("expires")
    @classmethod
    def _expires(cls, value: date, info: Any) -> date:
        approved = info.data.get("approved_on")
        if isinstance(approved, date) and value < approved:
            raise ValueError(f"expires ({value}) is before approved_on ({approved})")
        return value


class SharingSettings(_Strict):
    """Sharing with other agencies (issue 7). Off by default (the SB 274 profile): with
    ``enabled: false`` the policy gate refuses every request to share."""

    enabled: bool = Field(default=False, description="Allow sharing with approved agencies.")
    agencies: tuple[ApprovedAgency, ...] = Field(
        default=(), description="The California public agencies the city approved."
    )
    approval_days: int = Field(
        default=30, ge=1, le=365, description="Days an approved sharing request stays valid."
    )
    standing_max_days: int = Field(
        default=365, ge=1, le=730, description="Longest a standing approval may run, in days."
    )
    storage_domains: tuple[str, ...] = Field(
        default=(),
        description=(
            "The city's own storage hosts for replication (hosting is not sharing); when set, "
            "replication to any other host is refused."
        ),
    )

    @field_validator("agencies")
    @classmethod
    def _unique(cls, value: tuple[ApprovedAgency, ...]) -> tuple[ApprovedAgency, ...]:
        seen: set[str] = set()
        for agency in value:
            if agency.ori in seen:
                raise ValueError(f"ORI {agency.ori} is listed twice")
            seen.add(agency.ori)
        return value

    @field_validator("storage_domains")
    @classmethod
    def _storage(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from ._policy.denylist import match_domain

        for domain in value:
            if hits := match_domain(domain, "storage domain"):
                raise ValueError(hits[0].reason())
        return tuple(d.strip().lower().strip(".") for d in value)


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
    policy: PolicySettings = PolicySettings()
    keys: KeySettings = KeySettings()  # master key file or passphrase (issue 5)
    retention: RetentionSettings = RetentionSettings()  # per-class retention (issue 5)
    replication: ReplicationSettings = ReplicationSettings()  # litestream (_replication/)
    sharing: SharingSettings = SharingSettings()
    devices: DeviceSettings = DeviceSettings()  # GPS source, sensors, uplink (hardware/box.py)
    transparency: TransparencySettings = TransparencySettings()  # public pages (issue 7)


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
