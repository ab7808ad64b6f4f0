"""Test rig for replication: a real moto S3 server on loopback and a cuttable TCP link to it.

``moto_server`` (from ``moto[server]``) speaks the S3 protocol litestream uses; the
:class:`CuttableLink` sits between litestream and moto so a test can make the target
unreachable (connections refused, open ones dropped) and bring it back without losing what moto
holds, as a city network outage would.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3

ACCESS_KEY = "alprbox-test-key"
SECRET_KEY = "alprbox-test-secret-value"
BUCKET = "city-replicas"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def venv_tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free loopback port with the test bucket; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [venv_tool("moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        s3_client(url).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def s3_client(url: str) -> object:
    return boto3.client(
        "s3", endpoint_url=url, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, region_name="us-east-1",
    )


class CuttableLink:
    """A loopback TCP forwarder to ``upstream_port`` that can be cut and restored."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = upstream_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), 5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)


def s3_site(endpoint: str, path: str, *, behind_after: str = "60s") -> str:
    """A site config replicating to the test bucket, credentials from the environment."""
    return (
        "recognition: {type: fake}\ncameras: []\n"
        "replication:\n"
        "  enabled: true\n"
        f"  behind_after: {behind_after}\n"
        "  target:\n"
        "    type: s3\n"
        f"    bucket: {BUCKET}\n"
        f"    path: {path}\n"
        f"    endpoint: {endpoint}\n"
        "    access_key_id: env:ALPRBOX_TEST_S3_KEY\n"
        "    secret_access_key: env:ALPRBOX_TEST_S3_SECRET\n"
    )


def s3_env() -> dict[str, str]:
    return {"ALPRBOX_TEST_S3_KEY": ACCESS_KEY, "ALPRBOX_TEST_S3_SECRET": SECRET_KEY}


def file_site(path: Path) -> str:
    return (
        "recognition: {type: fake}\ncameras: []\n"
        "replication:\n  enabled: true\n"
        f"  target: {{type: file, path: {path}}}\n"
    )


def with_env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}


SSHD = Path("/usr/sbin/sshd")


@contextlib.contextmanager
def sftp_server(root: Path) -> Iterator[dict[str, str]]:
    """OpenSSH's sshd on a free loopback port, accepting one client key, serving SFTP.

    Yields the host, user, client key path and the server's host key line for a site config.
    """
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
                       check=True)
    authorized = root / "authorized_keys"
    authorized.write_text((root / "client_key.pub").read_text())
    authorized.chmod(0o600)
    port = free_port()
    config = root / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {root / 'host_key'}",
        f"PidFile {root / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes", "UsePAM no", "PermitRootLogin prohibit-password",
        "StrictModes no", "Subsystem sftp internal-sftp", "",
    ]))
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.05)
        host_key = " ".join((root / "host_key.pub").read_text().split()[:2])
        yield {"host": f"127.0.0.1:{port}", "user": os.environ.get("USER", "root"),
               "key_path": str(root / "client_key"), "host_key": host_key}
    finally:
        proc.terminate()
        proc.wait(10)
