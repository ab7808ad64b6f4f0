"""Base settings models plugins extend, and the secret reference type.

Every settings model forbids unknown keys, so a typo in a site config is an error naming the key,
not a silently ignored option. Every field should carry a title and description: they feed
``check-config``, the console forms and the JSON schema.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler
from pydantic_core import core_schema


class PluginSettings(BaseModel):
    """Base of every plugin's settings: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraSettings(PluginSettings):
    """Settings every camera has. Subclasses add ``type: Literal["..."]`` and their own fields."""

    type: str = Field(title="Camera type", description="Which camera plugin drives this camera.")
    name: Annotated[
        str,
        Field(
            title="Name",
            description="Short unique name shown in the console and logs (e.g. north-gate).",
            pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        ),
    ]
    queue_size: int = Field(
        default=4,
        ge=1,
        le=256,
        title="Frame queue",
        description="Frames buffered between camera and recognizer; the oldest is dropped.",
    )


class HotlistSourceSettings(PluginSettings):
    """Settings every hot-list source has."""

    type: str = Field(title="Source type", description="Which hot-list plugin fetches this list.")
    name: str = Field(
        title="Name",
        description="Short unique name of this list.",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
    )
    refresh_hours: float | None = Field(
        default=None,
        gt=0,
        le=24,
        title="Refresh every (hours)",
        description="How often the host fetches the list; default the plugin's own. General "
        "lists must refresh at least daily (Vallejo 426.4(f)(4)).",
    )
    max_age_hours: float = Field(
        default=24,
        gt=0,
        title="Maximum age (hours)",
        description="Hits from a list not refreshed for this long are marked stale.",
    )


class ExporterSettings(PluginSettings):
    """Settings every exporter has."""

    type: str = Field(title="Exporter type", description="Which exporter plugin delivers data.")
    name: str = Field(
        title="Name",
        description="Short unique name of this destination.",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
    )
    approval: str | None = Field(
        default=None,
        title="Standing approval",
        description="Id of the approved sharing request (standing approval) this destination "
        "receives data under; without one it receives only explicitly approved exports.",
    )
    stream: Literal["none", "hits", "reads"] = Field(
        default="none",
        title="Stream",
        description="What the host queues on its own under the standing approval: nothing, "
        "each hot-list hit, or every read. The approval's scope must allow it.",
    )
    max_attempts: int = Field(
        default=8,
        ge=1,
        le=100,
        title="Attempts",
        description="Tries before a delivery is dead-lettered (shown in the console and metrics).",
    )
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        title="Timeout (seconds)",
        description="Longest one delivery attempt may take before it counts as failed.",
    )
    max_pending: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        title="Outbox size",
        description="Deliveries queued for this destination at most; past it new ones are "
        "refused and counted, so a dead destination never fills the disk.",
    )


class RecognizerSettings(PluginSettings):
    """Settings every recognizer has. The hardware profile supplies the defaults."""

    type: str = Field(title="Recognizer type", description="Which recognizer reads plates.")
    provider: str = Field(
        default="CPUExecutionProvider",
        title="Inference provider",
        description="onnxruntime execution provider, from the hardware profile.",
    )
    threads: int = Field(
        default=2, ge=1, le=64, title="Threads", description="Inference threads per model."
    )


class SecretRef:
    """A reference to a secret: ``env:NAME`` or ``file:/path``. Literal secrets are refused.

    The value is read only when :meth:`get` is called, so a config can be checked on a machine
    that lacks the secret, and the secret never appears in a dumped or exported config.
    """

    __slots__ = ("ref",)

    def __init__(self, ref: str) -> None:
        scheme, sep, rest = ref.partition(":")
        if not sep or scheme not in ("env", "file") or not rest:
            raise ValueError(
                "secrets must be references, 'env:VARIABLE' or 'file:/path/to/secret', "
                "never the secret itself"
            )
        self.ref = ref

    def get(self) -> str:
        """Return the secret's value. Raises ``LookupError`` naming the reference if it is unset."""
        scheme, _, rest = self.ref.partition(":")
        if scheme == "env":
            try:
                return os.environ[rest]
            except KeyError:
                raise LookupError(f"secret {self.ref}: environment variable is not set") from None
        try:
            return Path(rest).read_text().rstrip("\n")
        except OSError as err:
            raise LookupError(f"secret {self.ref}: {err.strerror}") from err

    def __repr__(self) -> str:
        return f"SecretRef({self.ref!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other.ref == self.ref

    def __hash__(self) -> int:
        return hash(self.ref)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            lambda value: value if isinstance(value, SecretRef) else cls(value),
            core_schema.union_schema(
                [core_schema.is_instance_schema(SecretRef), core_schema.str_schema()]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda s: s.ref),
        )


Secret = SecretRef
