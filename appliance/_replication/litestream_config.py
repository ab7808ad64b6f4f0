"""Litestream's config file and environment, written from the site's ``replication:`` settings.

One file per litestream process (one database each), 0600 in a private runtime directory. It
holds no secret: S3 credentials go to the process's environment as ``LITESTREAM_ACCESS_KEY_ID``
and ``LITESTREAM_SECRET_ACCESS_KEY``, which litestream reads by itself, and litestream runs with
``-no-expand-env`` so nothing in the file is ever substituted. ``AWS_CA_BUNDLE`` is removed from
its environment: set for other tools, it breaks every S3 call litestream makes (NOTES.md); a
private CA is passed as ``SSL_CERT_FILE`` instead.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .settings import FileTarget, S3Target, SftpTarget, SnapshotSettings

#: environment variables never passed to litestream
_DROPPED_ENV = ("AWS_CA_BUNDLE", "LITESTREAM_ACCESS_KEY_ID", "LITESTREAM_SECRET_ACCESS_KEY")
#: the app's own busy timeout (appliance/_storage _connect) is 5 s; litestream waits as long
BUSY_TIMEOUT = "5s"


@dataclass(frozen=True)
class LitestreamJob:
    """What one litestream process replicates: a database, where to, and how."""

    name: str  # the database's file name, e.g. alprbox.db; also its folder on the target
    db_path: Path
    target: S3Target | FileTarget | SftpTarget
    sync_interval: str
    snapshot: SnapshotSettings

    def replica_url(self) -> str:
        """Where this database's replica lives (for people, the gate and logs; no secrets)."""
        if isinstance(self.target, FileTarget):
            return f"file://{self.target.path / self.name}"
        if isinstance(self.target, S3Target):
            base = f"s3://{self.target.bucket}/{_join(self.target.path, self.name)}"
            return f"{base} at {self.target.endpoint}" if self.target.endpoint else base
        remote = _remote_path(self.target.path, self.name)
        return f"sftp://{self.target.user}@{self.target.host_name}/{remote.lstrip('/')}"


    def gate_url(self) -> str:
        """The same place as a URL naming the host data really goes to, for the policy gate."""
        target = self.target
        if isinstance(target, S3Target):
            key = _join(target.path, self.name)
            if target.endpoint:
                return f"{target.endpoint}/{target.bucket}/{key}"
            return f"https://{target.bucket}.s3.{target.region}.amazonaws.com/{key}"
        return self.replica_url()


def _remote_path(folder: str, name: str) -> str:
    # An SFTP path keeps its leading slash (absolute) or lack of it (relative to the home dir).
    return f"{folder.rstrip('/')}/{name}" if folder.strip("/") else name


def _join(prefix: str, name: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{name}" if prefix else name


def replica_section(job: LitestreamJob) -> dict[str, Any]:
    target = job.target
    replica: dict[str, Any]
    if isinstance(target, FileTarget):
        replica = {"type": "file", "path": str(target.path / job.name)}
    elif isinstance(target, S3Target):
        replica = {
            "type": "s3",
            "bucket": target.bucket,
            "path": _join(target.path, job.name),
            "region": target.region,
            "force-path-style": target.force_path_style,
        }
        if target.endpoint:
            replica["endpoint"] = target.endpoint
    else:
        replica = {
            "type": "sftp",
            "host": target.host_name,
            "user": target.user,
            "key-path": str(target.key_path),
            "host-key": target.host_key,
            "path": _remote_path(target.path, job.name),
        }
    replica["sync-interval"] = job.sync_interval
    return replica


def render(job: LitestreamJob, *, metrics_addr: str | None, socket_path: Path | None) -> str:
    """The YAML litestream reads, for ``replicate`` (with metrics and control socket) or
    ``restore`` (without)."""
    config: dict[str, Any] = {
        "logging": {"level": "info", "type": "text", "stderr": True},
        "snapshot": {"interval": job.snapshot.interval, "retention": job.snapshot.retention},
        "dbs": [
            {
                "path": str(job.db_path),
                "busy-timeout": BUSY_TIMEOUT,
                "replica": replica_section(job),
            }
        ],
    }
    if metrics_addr is not None:
        config["addr"] = metrics_addr
    if socket_path is not None:
        config["socket"] = {"enabled": True, "path": str(socket_path)}
    return yaml.safe_dump(config, sort_keys=False)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (never briefly world-readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def runtime_dir() -> Path:
    """A fresh private (0700) directory for config files and control sockets.

    Under ``$XDG_RUNTIME_DIR`` when set, else the system temp dir: a Unix socket path must stay
    under ~100 bytes, which a deep data directory would exceed.
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(tempfile.mkdtemp(prefix="alprbox-ls-", dir=base if base else None))


def environment(target: S3Target | FileTarget | SftpTarget) -> dict[str, str]:
    """The litestream process's environment: ours, minus what breaks it, plus credentials.

    Raises ``LookupError`` naming the secret reference that cannot be read.
    """
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    if isinstance(target, S3Target):
        if target.access_key_id is not None and target.secret_access_key is not None:
            env["LITESTREAM_ACCESS_KEY_ID"] = target.access_key_id.get()
            env["LITESTREAM_SECRET_ACCESS_KEY"] = target.secret_access_key.get()
        if target.ca_file is not None:
            env["SSL_CERT_FILE"] = str(target.ca_file)
    return env
